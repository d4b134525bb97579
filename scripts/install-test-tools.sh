#!/usr/bin/env bash
# Installs the tools the tests need beyond the Rust toolchain, into a cached
# tools directory, and does nothing when they are already there:
# - tansu, a Kafka-API broker written in Rust, with the memory storage
#   engine (the `dynostore` feature); the real-broker tests start it. The
#   first build takes about 17 minutes.
# - Debian's chromium and chromium-driver, for the web console's browser
#   test (runtime/tests/all/console.rs), when they are not installed.
# The directory is $PROJECTOR_TOOLS, default ~/.cache/projector-tools; the
# tests find tansu at $PROJECTOR_TOOLS/bin/tansu.
set -euo pipefail
tools="${PROJECTOR_TOOLS:-$HOME/.cache/projector-tools}"

if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
  echo "install-test-tools: installing Debian's chromium and chromium-driver" >&2
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
  install=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver)
  if ! "${install[@]}"; then
    "${as_root[@]}" apt-get update
    "${install[@]}"
  fi
  /usr/bin/chromedriver --version >/dev/null
fi
tansu_version="0.6.0"
if "$tools/bin/tansu" --version 2>/dev/null | grep -q "$tansu_version"; then
  exit 0
fi
echo "install-test-tools: building tansu $tansu_version into $tools (about 17 minutes the first time)" >&2
cargo install tansu --version "$tansu_version" --locked --features dynostore --root "$tools"
"$tools/bin/tansu" --version >/dev/null
