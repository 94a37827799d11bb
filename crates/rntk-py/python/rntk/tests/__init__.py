"""``cntk.tests``: the helpers CNTK's tutorials import."""
