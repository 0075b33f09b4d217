#!/usr/bin/env bash
# Installs the Debian 12 packages Mephisto builds and tests with, skipping what is already there.
# Runs apt-get as root (directly, or through sudo when available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev librocksdb-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libcli11-dev nlohmann-json3-dev doctest-dev
  libboost-dev prometheus-cpp-dev   # Asio and Beast for the admin HTTP API; the /metrics text format
  prometheus                        # promtool: the tests check /metrics with it
  libicu-dev                        # time zones of cron timers
  libjemalloc-dev                   # the allocator of the mephisto executable (runtime/src/cli/jemalloc_options.c)
  kcat            # a real Kafka client, for looking at topics by hand
  clang libclang-rt-14-dev  # libFuzzer: the fuzz targets (fuzz/)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
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
