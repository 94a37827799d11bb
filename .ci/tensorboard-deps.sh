#!/usr/bin/env bash
# Installs the `tensorboard` Python package that tests/tensorboard/check_events.py uses
# to read rntk's event files (crates/rntk/tests/train/tensorboard.rs runs it; with CI set it
# fails rather than skips when the package is missing).
set -euo pipefail
if python3 -c "import tensorboard" >/dev/null 2>&1; then
    exit 0
fi
PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet tensorboard
