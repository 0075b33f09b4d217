#!/usr/bin/env bash
# The runtime's layers, and the only directions their #includes may take (runtime/CMakeLists.txt builds one
# library per layer in the same order). An include of a layer above, or of one beside that is not listed, is
# refused with its file and line: with each layer seeing only those below it, no include cycle can form.
# Usage: scripts/check_layers.sh [SOURCE_ROOT]   (default: the checkout holding this script)
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
src="$root/runtime/src"

# layer: the layers it may include (itself always).
declare -A may=(
  [common]=""
  [config]="common"
  [plugin]="common"
  [kafka]="common"
  [tables]="common config plugin"
  [engine]="common config plugin kafka tables"
  [admin]="common"
  [cluster]="common kafka"
  [deploy]="common kafka"
  [host]="common config plugin kafka tables engine admin cluster"
  [supervisor]="common config plugin kafka tables engine admin cluster host"
  [cli]="common config plugin kafka tables engine admin cluster deploy host supervisor"
)

status=0
for dir in "$src"/*/; do
  layer=$(basename "$dir")
  if [[ -z "${may[$layer]+set}" ]]; then
    echo "runtime/src/$layer: a directory that is no layer; add it to scripts/check_layers.sh and runtime/CMakeLists.txt"
    status=1
    continue
  fi
  allowed=" $layer ${may[$layer]} "
  while IFS=: read -r file line text; do
    target=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<<"$text")
    [[ -n "${may[$target]+set}" ]] || continue  # not a layer (mephisto/, a system header)
    if [[ "$allowed" != *" $target "* ]]; then
      echo "${file#"$root"/}:$line: $layer includes $target, a layer it may not see (it may include $layer${may[$layer]:+ and ${may[$layer]}})"
      status=1
    fi
  done < <(grep -Hn '^#include "[a-z_]*/' "$dir"*.hpp "$dir"*.cpp 2>/dev/null || true)
done
if [[ $status -eq 0 ]]; then echo "layers: every include goes downwards"; fi
exit $status
