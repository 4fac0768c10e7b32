#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/) for a bounded time, one after another:
#   scripts/fuzz.sh [SECONDS_PER_TARGET=600] [TARGET...]
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). Each target starts from fuzz/corpus/NAME (seeds kept in git) and its
# kept crash inputs fuzz/regressions/NAME; new corpus entries go to target/fuzz-corpus/NAME, crashes to
# target/fuzz-artifacts/NAME. A crash stops the script: fix it, copy the input to fuzz/regressions/NAME
# (the stable test suite replays that folder) and run again. Logs: target/fuzz-logs/NAME.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(raw_mosaic mask_png label_files config)
venv=$("$root/scripts/libtorch.sh")
export LIBTORCH_USE_PYTORCH=1 PATH="$venv/bin:$PATH"
export CARGO_TARGET_DIR="$root/target/fuzz-build"
cd "$root/fuzz"
cargo +nightly fuzz build
for target in "${targets[@]}"; do
  corpus="$root/target/fuzz-corpus/$target"
  artifacts="$root/target/fuzz-artifacts/$target"
  mkdir -p "$corpus" "$artifacts" "$root/target/fuzz-logs" "$root/fuzz/corpus/$target" "$root/fuzz/regressions/$target"
  echo "fuzzing $target for ${seconds}s (log: target/fuzz-logs/$target.log)"
  # -rss_limit_mb: a file that makes a decoder allocate more than 2 GiB is a crash too.
  cargo +nightly fuzz run "$target" "$corpus" "$root/fuzz/corpus/$target" "$root/fuzz/regressions/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -artifact_prefix="$artifacts/" -print_final_stats=1 \
    >"$root/target/fuzz-logs/$target.log" 2>&1 || { echo "$target: crash or error, see target/fuzz-logs/$target.log"; tail -30 "$root/target/fuzz-logs/$target.log"; exit 1; }
  grep -E "^stat::number_of_executed_units|^Done" "$root/target/fuzz-logs/$target.log" | tr '\n' ' '; echo
done
