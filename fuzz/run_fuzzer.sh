#!/usr/bin/env bash
# Runs one fuzz target for a bounded time on a scratch copy of its committed corpus: the hand-written seeds in
# CORPUS_DIR and, when there is one, CORPUS_DIR.tar.gz (inputs earlier runs found, minimized with -merge=1);
# what the run adds stays out of the tree. A crash, a leak, a timeout or an out-of-memory fails the run; the
# input that did it is saved in build/fuzz/findings/ and printed. Files given after SECONDS are seeds as well
# (the pipeline files of conf/ and examples/, which stay the way they are written there).
# Usage: run_fuzzer.sh BINARY CORPUS_DIR SECONDS [SEED_FILE...]
set -euo pipefail
binary=$1 corpus=$2 seconds=$3
shift 3
name=$(basename "$binary")
findings="$(dirname "$binary")/findings/$name"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$findings"
if [ -d "$corpus" ]; then cp -r "$corpus"/. "$scratch"/; fi
if [ -f "$corpus.tar.gz" ]; then tar -xzf "$corpus.tar.gz" -C "$scratch"; fi
n=0
for seed in "$@"; do cp "$seed" "$scratch/seed-$((n++))"; done
# Not exec: the trap removes the scratch copy when the target is done.
"$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -artifact_prefix="$findings/" -print_final_stats=1 "$scratch"
