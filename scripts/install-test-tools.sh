#!/usr/bin/env bash
# Installs the tools the tests need beyond the Rust toolchain, into a cached
# tools directory, and does nothing when they are already there:
# - tansu, a Kafka-API broker written in Rust, with the memory storage
#   engine (the `dynostore` feature); the real-broker tests start it. The
#   first build takes about 17 minutes.
# - a Python venv with componentize-py and pytest, for the Python SDK and
#   its examples (runtime/tests/all/authors/python.rs);
# - Node.js 20 or later (Debian's nodejs and npm, when missing) and the
#   repository's npm workspace (package.json, package-lock.json): TypeScript,
#   esbuild and componentize-js, for the JavaScript SDK and its examples
#   (runtime/tests/all/authors/js.rs), into ./node_modules with `npm ci`;
# - Debian's chromium and chromium-driver, for the web console's browser
#   test (runtime/tests/all/console.rs), when they are not installed.
# The directory is $PROJECTOR_TOOLS, default ~/.cache/projector-tools; the
# tests find tansu at $PROJECTOR_TOOLS/bin/tansu.
set -euo pipefail
cd "$(dirname "$0")/.."
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

as_root=()
if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
apt_install() {
  local install=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@")
  if ! "${install[@]}"; then
    "${as_root[@]}" apt-get update
    "${install[@]}"
  fi
}

# JavaScript/TypeScript authors' toolchain: the packages package-lock.json
# pins, installed again only when the lock file changes.
node_major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p')
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
  echo "install-test-tools: installing Debian's nodejs and npm (Node.js 20 or later is needed)" >&2
  apt_install nodejs npm
  node_major=$(node --version | sed -n 's/^v\([0-9]*\)\..*/\1/p')
  if [ "$node_major" -lt 20 ]; then
    echo "install-test-tools: Node.js $(node --version) is too old: the JavaScript SDK needs 20 or later" >&2
    exit 1
  fi
fi
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.projector-lock-sum 2>/dev/null)" != "$lock_sum" ]; then
  echo "install-test-tools: installing the npm workspace's packages (npm ci)" >&2
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.projector-lock-sum
fi
node_modules/.bin/tsc --version >/dev/null

if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
  echo "install-test-tools: installing Debian's chromium and chromium-driver" >&2
  apt_install chromium chromium-driver
  /usr/bin/chromedriver --version >/dev/null
fi
tansu_version="0.6.0"
if "$tools/bin/tansu" --version 2>/dev/null | grep -q "$tansu_version"; then
  exit 0
fi
echo "install-test-tools: building tansu $tansu_version into $tools (about 17 minutes the first time)" >&2
cargo install tansu --version "$tansu_version" --locked --features dynostore --root "$tools"
"$tools/bin/tansu" --version >/dev/null
