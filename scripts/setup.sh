#!/usr/bin/env bash
# Installs what building and testing projector needs, and does nothing when
# it is already there:
# - the Rust toolchain pinned in rust-toolchain.toml, with the wasm32-wasip2
#   target that projections compile to (rustup reads both from that file);
# - a C toolchain, make, pkg-config and OpenSSL's headers, which the
#   bundled librdkafka build needs (installed with apt-get when missing).
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
missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "setup: please install ${missing[*]} (Debian package names); the librdkafka build needs them" >&2
    exit 1
  fi
fi
