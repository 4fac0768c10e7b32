#!/usr/bin/env bash
# Makes sure the libtorch that tch 0.26.0 needs (PyTorch 2.13.0, from PyPI) is installed in a venv,
# then prints the venv's path. Reused across clones: the venv lives in the user's cache directory
# unless L2L_TORCH_VENV names another place.
set -euo pipefail
torch_version=2.13.0
venv=${L2L_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/l2l/torch-$torch_version}
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$torch_version' else 1)" 2>/dev/null; then
  echo "libtorch: installing torch==$torch_version into $venv (about 4.7 GB, once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "torch==$torch_version" >&2
fi
echo "$venv"
