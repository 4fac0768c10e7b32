#!/usr/bin/env bash
# Makes sure the MLflow client the run-store test reads l2l's store with (MLflow 3.17.2, from PyPI) is
# installed in a venv, then prints the venv's path. Cached like the libtorch venv: the user's cache
# directory unless L2L_MLFLOW_VENV names another place.
set -euo pipefail
mlflow_version=3.17.2
venv=${L2L_MLFLOW_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/l2l/mlflow-$mlflow_version}
if ! "$venv/bin/python" -c "import mlflow, sys; sys.exit(0 if mlflow.__version__ == '$mlflow_version' else 1)" 2>/dev/null; then
  echo "mlflow: installing mlflow==$mlflow_version into $venv (once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "mlflow==$mlflow_version" >&2
fi
echo "$venv"
