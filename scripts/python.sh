#!/usr/bin/env bash
# The `l2l` Python package (python/): `install` builds it (release, maturin) against the cached
# libtorch venv and installs it there; `test` runs its pytest suite in that venv. The workspace's
# plugins (`make build`) are what the package loads by default.
#   scripts/python.sh install
#   scripts/python.sh test [PYTEST ARGS...]
#   scripts/python.sh bench [--rounds N]    (a stage called from Python against the same op in PyTorch)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$("$root/scripts/libtorch.sh")
# safetensors (with numpy, which its torch writer uses): the tests write weights files in both
# formats a task model reads; torchvision: the network `predict`'s logits are compared with
tools="maturin==1.16.0 pytest==9.2.0 safetensors==0.8.0 numpy==2.4.6 torchvision==0.28.0"
if ! "$venv/bin/python" -c "import maturin, pytest, safetensors, numpy, torchvision" 2>/dev/null; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check $tools >&2
fi
case "${1:-}" in
  install)
    wheels="$root/target/wheels/l2l"
    rm -rf "$wheels"
    # torch-sys's build finds libtorch (and Python's headers) through the venv's python
    VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1 \
      "$venv/bin/maturin" build --release --auditwheel skip --manifest-path "$root/python/Cargo.toml" \
      --target-dir "$root/target" --interpreter "$venv/bin/python" --out "$wheels"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheels"/l2l-*.whl
    echo "installed l2l into $venv" >&2
    ;;
  test)
    shift
    # from the checkout's root, so that `l2l` is the installed package, not python/l2l without its
    # native module
    cd "$root"
    exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" python/tests
    ;;
  bench)
    shift
    exec "$venv/bin/python" -W ignore "$root/python/bench/stage_overhead.py" "$@"
    ;;
  *)
    echo "usage: scripts/python.sh install | test [PYTEST ARGS...] | bench [--rounds N]" >&2
    exit 2
    ;;
esac
