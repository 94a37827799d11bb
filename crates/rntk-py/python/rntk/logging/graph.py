"""Graph helpers (CNTK's ``cntk.logging.graph``)."""

__all__ = ['find_by_name', 'find_all_with_name', 'get_node_outputs', 'depth_first_search', 'plot']


def find_by_name(node, node_name, depth=0):
    return node.find_by_name(node_name, depth)


def find_all_with_name(node, node_name, depth=0):
    return node.find_all_with_name(node_name, depth)


def depth_first_search(node, visitor, depth=0):
    """Every Function (blocks included) reachable from ``node`` for which ``visitor`` is true."""
    from ..ops.functions import Function
    f = node if isinstance(node, Function) else node.owner
    return [Function(g) for g in f._f.functions() if visitor(Function(g))]


def get_node_outputs(node, depth=0):
    """The outputs of every function in the graph."""
    out = []
    for f in depth_first_search(node, lambda f: True, depth):
        out.extend(f.outputs)
    return out


def plot(root, filename=None):
    raise NotImplementedError('plot: rendering graphs (graphviz) is not in rntk')
