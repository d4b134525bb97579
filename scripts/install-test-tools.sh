#!/usr/bin/env bash
# Installs the tools the tests need beyond the Rust toolchain, into a cached
# tools directory, and does nothing when they are already there:
# - tansu, a Kafka-API broker written in Rust, with the memory storage
#   engine (the `dynostore` feature); the real-broker tests start it. The
#   first build takes about 17 minutes.
# - a Python venv with componentize-py and pytest, for the Python SDK and
#   its examples (runtime/tests/all/authors.rs);
# - Debian's chromium and chromium-driver, for the web console's browser
#   test (runtime/tests/all/console.rs), when they are not installed.
# The directory is $PROJECTOR_TOOLS, default ~/.cache/projector-tools; the
# tests find tansu at $PROJECTOR_TOOLS/bin/tansu.
set -euo pipefail
tools="${PROJECTOR_TOOLS:-$HOME/.cache/projector-tools}"

# Python authors' toolchain: a venv with componentize-py (builds Python
# projections into components) and pytest (runs their mock-host tests), at
# pinned versions; the tests find it at $PROJECTOR_TOOLS/python.
python_tools="$tools/python"
if ! "$python_tools/bin/componentize-py" --version 2>/dev/null | grep -q "0.25.1" \
  || ! "$python_tools/bin/python" -m pytest --version 2>/dev/null | grep -q "9.0.3"; then
  echo "install-test-tools: installing componentize-py 0.25.1 and pytest 9.0.3 into $python_tools" >&2
  python3 -m venv "$python_tools"
  "$python_tools/bin/pip" install --quiet --disable-pip-version-check \
    componentize-py==0.25.1 pytest==9.0.3
  "$python_tools/bin/componentize-py" --version >/dev/null
fi

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
