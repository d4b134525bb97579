#!/usr/bin/env bash
# Installs what building and testing projector needs, and does nothing when
# it is already there:
# - the Rust toolchain pinned in rust-toolchain.toml, with the wasm32-wasip2
#   target that projections compile to (rustup reads both from that file);
# - a C compiler, which wasmtime's build needs (gcc; checked, not installed).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v rustup >/dev/null 2>&1; then
  echo "setup: rustup is required (https://rustup.rs); it installs the pinned toolchain" >&2
  exit 1
fi
# With no argument, rustup installs the toolchain rust-toolchain.toml names,
# with its components and targets.
rustup toolchain install
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup target list --installed --toolchain "$toolchain" | grep -qx wasm32-wasip2; then
  rustup target add --toolchain "$toolchain" wasm32-wasip2
fi
if ! command -v cc >/dev/null 2>&1; then
  echo "setup: a C compiler (cc) is required to build wasmtime; on Debian: apt-get install build-essential" >&2
  exit 1
fi
