#!/usr/bin/env bash
# Runs the end-to-end benchmark (bench/, `projector-bench`) in release mode
# against a real tansu broker on loopback, prints its table and writes its
# JSON result (default target/bench/result.json). Arguments go to
# projector-bench, e.g. `scripts/bench.sh --events 50000 --scales 1000`.
# Separate from the tests: it takes several minutes and measures, while the
# tests only check that it runs (bench/tests/tiny.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/install-test-tools.sh
cargo build --release --locked -p projector -p projector-bench
exec target/release/projector-bench "$@"
