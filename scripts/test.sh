#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test (unit, abi, integration,
# reliability, tables, admin, reload) through ctest on all cores. Pass ctest options to narrow it, e.g. scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 300 "$@"
