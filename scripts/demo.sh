#!/usr/bin/env bash
# The demo: installs what is missing, builds, and runs examples/hello_world on the embedded broker
# (127.0.0.1:9092). A few greetings are sent as soon as the broker is up; send more from a second shell with
#   build/runtime/mephisto send greetings "your text"
# Stop with Ctrl-C (the host finishes in-flight events, commits and exits).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh

(
  # The consumer reads from the earliest offset, so greetings sent before it joined are not missed.
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null && break; sleep 0.1; done
  printf 'hello\nhello, world\nHallo, Welt\n' | build/runtime/mephisto send greetings
  echo ">>> running: send more with  build/runtime/mephisto send greetings \"your text\"   (Ctrl-C stops)" >&2
) &
exec build/runtime/mephisto run examples/hello_world/hello_world.yaml
