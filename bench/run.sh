#!/usr/bin/env bash
# The one command of bench/README.md: builds the benchmark targets in build/ (preset `default`, RelWithDebInfo)
# and runs the benchmarks with their defaults (bench_word_count and bench_windowed_count last). Extra arguments go
# to bench_passthrough, e.g.
#   bench/run.sh --events 200000 --runs 3
# BENCH_WORD_COUNT_ARGS, BENCH_WINDOWED_COUNT_ARGS, BENCH_SUPERVISED_ARGS and BENCH_FAILOVER_ARGS hold arguments for
# bench_word_count, bench_windowed_count, bench_supervised and bench_failover.
# Results go to stdout as markdown (progress on stderr); paste them into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then cmake --preset default >/dev/null; fi
cmake --build --preset default --target passthrough bench_passthrough bench_abi_call word_count bench_word_count window_count bench_windowed_count bench_swap bench_supervised bench_failover >/dev/null
echo "# Mephisto benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- runtime sdk 2>/dev/null || echo ' (runtime/sdk modified)')"
echo
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
echo "command: bench/run.sh $*"
build/bench/bench_passthrough "$@"
build/bench/bench_abi_call
build/bench/bench_swap
build/bench/bench_supervised ${BENCH_SUPERVISED_ARGS:-}
build/bench/bench_failover ${BENCH_FAILOVER_ARGS:-}
build/bench/bench_word_count ${BENCH_WORD_COUNT_ARGS:-}
build/bench/bench_windowed_count ${BENCH_WINDOWED_COUNT_ARGS:-}
