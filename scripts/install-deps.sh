#!/usr/bin/env bash
# Installs the Debian 12 packages Mephisto builds and tests with, skipping what is already there, and the browser
# test's playwright-core from the npm registry (pinned in tests/ui/package-lock.json).
# Runs apt-get as root (directly, or through sudo when available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev librocksdb-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libcli11-dev nlohmann-json3-dev doctest-dev
  libboost-dev prometheus-cpp-dev   # Asio and Beast for the admin HTTP API; the /metrics text format
  prometheus                        # promtool: the tests check /metrics with it
  libicu-dev                        # time zones of cron timers
  libsodium-dev                     # deployments: Ed25519 signatures and SHA-256 (runtime/src/deploy/)
  libsystemd-dev                    # sd_notify: the service's Type=notify (packaging/mephisto.service)
  libjemalloc-dev                   # the allocator of the mephisto executable (runtime/src/cli/jemalloc_options.c)
  kcat            # a real Kafka client, for looking at topics by hand
  clang libclang-rt-14-dev  # libFuzzer: the fuzz targets (fuzz/)
  libjs-dygraphs  # the status page's plots, built into the binary (runtime/ui/)
  chromium        # the status page's browser test (tests/ui/), driven by playwright-core
  tmux            # `mephisto top`'s test runs it in a terminal (tests/admin/top_test.cpp)
)

# playwright-core at the version tests/ui/package-lock.json pins (npm ci: exactly that, or fail). It drives the
# Debian chromium above and never downloads a browser of its own.
install_node_packages() {
  local ui
  ui="$(cd "$(dirname "$0")/.." && pwd)/tests/ui"
  if [ -f "$ui/node_modules/playwright-core/package.json" ] &&
     grep -q "\"version\": \"$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' "$ui/package.json")\"" \
       "$ui/node_modules/playwright-core/package.json"; then
    return
  fi
  command -v npm >/dev/null || { echo "install-deps: npm is needed for the browser test (Node.js 20 or later)" >&2; exit 1; }
  echo "install-deps: installing playwright-core in tests/ui"
  (cd "$ui" && npm ci --no-audit --no-fund --loglevel=error)
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  install_node_packages
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_node_packages
