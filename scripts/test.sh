#!/usr/bin/env bash
# Runs every test of the workspace, after installing what the tests need
# (the toolchain and build tools, then tansu for the real-broker tests).
# The example projections are compiled to wasm32-wasip2 by a build script
# (guest-examples/artifacts), so the tests always run the real components.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/install-test-tools.sh
cargo test --workspace --all-features --locked "$@"
