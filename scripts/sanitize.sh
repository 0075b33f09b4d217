#!/usr/bin/env bash
# The whole test suite under a sanitizer: scripts/sanitize.sh tsan|asan [ctest arguments...]
# Builds the preset (CMakePresets.json), runs every test, and fails when any process wrote a report: the tests
# and every host, worker or broker they start write theirs to one fresh directory (log_path), so a report from
# a child process whose exit status no test looks at still fails the run. Prints the reports and their count.
set -euo pipefail
preset="${1:?usage: scripts/sanitize.sh tsan|asan [ctest arguments...]}"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

reports="$(mktemp -d "/tmp/mephisto-$preset-reports.XXXXXX")"
case "$preset" in
  tsan)
    # exitcode 66: a test process with a report fails; halt_on_error=0: it still runs to its end.
    export TSAN_OPTIONS="suppressions=$root/scripts/tsan.supp second_deadlock_stack=1 halt_on_error=0 exitcode=66 log_path=$reports/tsan"
    timeout=900 ;;
  asan)
    # Leak checking is off: a host that fails on purpose exits without freeing what it holds.
    export ASAN_OPTIONS="detect_leaks=0 log_path=$reports/asan"
    timeout=600 ;;
  *) echo "unknown preset '$preset' (tsan or asan)" >&2; exit 2 ;;
esac

scripts/install-deps.sh  # as scripts/test.sh: the browser test's playwright-core among them
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
status=0
ctest --test-dir "build-$preset" --output-on-failure -j2 --timeout "$timeout" "$@" || status=$?

count=$(find "$reports" -type f | wc -l)
if (( count > 0 )); then
  for f in "$reports"/*; do
    echo "=== $f"
    cat "$f"
  done
  echo "$preset: $count process(es) wrote a report (in $reports)" >&2
  exit 1
fi
rmdir "$reports"
echo "$preset: no reports"
exit "$status"
