#!/usr/bin/env bash
# Fuzz the CloudEvent decoder and the config parser with cargo-fuzz
# (libFuzzer, nightly). Not part of the test command: run it on purpose.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     # default 60
#
# Installs what it needs first: the nightly toolchain's wasm32-wasip2 target
# (the runtime crate builds the example guests) and cargo-fuzz. Findings go
# to fuzz/artifacts/<target>/; docs/reliability.md records what was run.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/../fuzz"
rustup toolchain install nightly --profile minimal >/dev/null
rustup target add wasm32-wasip2 --toolchain nightly >/dev/null
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi
for target in decode config; do
  mkdir -p "corpus/$target"
  seeds=()
  if [ -d "seeds/$target" ]; then seeds=("seeds/$target"); fi
  echo "fuzz: $target for ${seconds}s"
  cargo +nightly fuzz run -O "$target" "corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1
done
