#!/usr/bin/env bash
# Runs the end-to-end suites with Node 22 from tests/e2e/node_modules against
# the airlock binary given as $1 (ctest passes the build's binary).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:?usage: run.sh AIRLOCK_BINARY [test files...]}")
shift
node="$here/node_modules/.bin/node"
[ -x "$node" ] || { echo "e2e: $node missing; run scripts/deps.sh" >&2; exit 1; }
cd "$here"
if [ "$#" -eq 0 ]; then set -- *.test.mjs; fi
export AIRLOCK_BIN="$bin"
exec "$node" --test --test-concurrency="${E2E_CONCURRENCY:-2}" --test-timeout=180000 "$@"
