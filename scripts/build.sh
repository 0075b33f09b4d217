#!/usr/bin/env bash
# Configures and builds everything (host, SDK, plugins, examples, tests, benchmarks) into build/ on all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)"
