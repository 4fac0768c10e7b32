#!/usr/bin/env bash
# Runs cargo against the libtorch that tch 0.26.0 needs, installing it first if it is missing
# (see libtorch.sh). Every make target goes through here; use it directly for other cargo commands:
#   scripts/cargo.sh bench -p l2l-system-tests
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$("$here/libtorch.sh")
export LIBTORCH_USE_PYTORCH=1
export PATH="$venv/bin:$PATH"
exec cargo "$@"
