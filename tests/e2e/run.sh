#!/usr/bin/env bash
# Runs the end-to-end suites with Node 22 from tests/e2e/node_modules against
# the airlock binary given as $1 (ctest passes the build's binary).
#
# The suites run in a process group of their own, and whatever is left of it
# when they end (a daemon a timed-out test never stopped) is killed, so no
# test leaves a hub or worker running on the machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:?usage: run.sh AIRLOCK_BINARY [test files...]}")
shift
node="$here/node_modules/.bin/node"
[ -x "$node" ] || { echo "e2e: $node missing; run scripts/deps.sh" >&2; exit 1; }
cd "$here"
if [ "$#" -eq 0 ]; then set -- *.test.mjs; fi
export AIRLOCK_BIN="$bin"

setsid "$node" --test --test-concurrency="${E2E_CONCURRENCY:-2}" --test-timeout=180000 "$@" &
group=$!
cleanup() {
    kill -TERM -- "-$group" 2>/dev/null || return 0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 -- "-$group" 2>/dev/null || return 0
        sleep 0.5
    done
    kill -KILL -- "-$group" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
status=0
wait "$group" || status=$?
exit "$status"
