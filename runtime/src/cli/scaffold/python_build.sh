#!/bin/sh
# Build {name}.wasm, the component the runtime loads (componentize-py 0.25.1).
set -eu
cd "$(dirname "$0")"
exec componentize-py -d wit -w projection componentize app -p . -p vendor --stub-wasi -o {name}.wasm
