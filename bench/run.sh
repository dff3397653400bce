#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmarks the hub and the environment worker (`make bench` runs this with the
# release build dir). Each stage starts BUILD_DIR/airlock hub on 127.0.0.1:0
# with a fresh data dir, runs its load against it, prints its results table,
# and stops the hub (which must exit 0):
#   hub     compiles bench/*.c into BUILD_DIR/airlock-bench and runs it;
#   worker  runs bench/worker.mjs (Node 22 from tests/e2e/node_modules): the C
#           worker (`airlock worker`) against the SDK's, one after the other.
#   sandbox (no hub) compiles bench/sandbox/sandbox.c into
#           BUILD_DIR/airlock-sandbox-bench and runs it: `airlock sandbox-runner
#           --isolation B` (and A with a cgroup v1 per session when root can
#           write one) against `unshare` (7 namespaces) and bwrap, side by side.
#           Needs unshare, bwrap (scripts/deps.sh) and user namespaces; as root
#           the sandboxes run as uid BENCH_SANDBOX_UID (1073746066).
#   tunnel  (its own hub) runs bench/tunnel/run.sh: `airlock relay` + `airlock
#           gateway` against direct HTTP/TLS, an OpenSSH reverse tunnel and
#           stunnel with the kit in shared/baselines/tunnel (TUNNEL_KIT), plus
#           idle memory, memory per idle stream and reconnect time
#           (bench/tunnel/tunnelbench.c). Installs the kit's Debian packages
#           (stunnel4, openssh-server, ...; bench only). About 6 minutes; the
#           kit's knobs pass through (ROUNDS=1 LAT_SECS=1 ... for a quick run).
#
# usage: bench/run.sh BUILD_DIR [airlock-bench options, e.g. --quick]
# HUB_ARGS adds hub flags (e.g. HUB_ARGS="--log-level warn").
# BENCH_STAGES picks stages (default "hub worker sandbox tunnel"); BENCH_WORKER_CALLS (200),
# BENCH_WORKER_SESSIONS (50), BENCH_WORKER_STARTS (5) size the worker stage;
# BENCH_SANDBOX_ARGS adds airlock-sandbox-bench options (e.g. "--quick").
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: bench/run.sh BUILD_DIR [bench options]}" && pwd)
shift
airlock="$build/airlock"
bench="$build/airlock-bench"
[ -x "$airlock" ] || { echo "bench: $airlock missing; build first (make build)" >&2; exit 1; }

stages=${BENCH_STAGES:-hub worker sandbox tunnel}
node=${BENCH_NODE:-$top/tests/e2e/node_modules/.bin/node}

# The load generator is not part of the CMake build: one compile, no install.
if [[ " $stages " == *" hub "* ]]; then
    srcs=("$top"/bench/*.c "$top/src/lib/base/alloc.c")
    if [ ! -x "$bench" ] || [ -n "$(find "${srcs[@]}" "$top/bench/bench.h" -newer "$bench" 2>/dev/null)" ]; then
        ${CC:-cc} -std=gnu17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes \
            -Wstrict-prototypes -Wvla -Wno-unused-parameter -D_GNU_SOURCE \
            "${srcs[@]}" -o "$bench" \
            $(pkg-config --cflags --libs libevent_core libevent_extra jansson) -lm
    fi
fi

if [[ " $stages " == *" sandbox "* ]]; then
    sbench="$build/airlock-sandbox-bench"
    if [ ! -x "$sbench" ] || [ "$top/bench/sandbox/sandbox.c" -nt "$sbench" ] ||
        [ "$top/src/sandbox/zygote.c" -nt "$sbench" ]; then
        ${CC:-cc} -std=gnu17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter -D_GNU_SOURCE \
            "$top/bench/sandbox/sandbox.c" "$top/src/sandbox/zygote.c" -o "$sbench"
    fi
fi

# Each held connection is a descriptor in both processes.
ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench.XXXXXX")
hub_pid=""
cleanup() {
    if [ -n "$hub_pid" ] && kill -0 "$hub_pid" 2>/dev/null; then
        kill -KILL "$hub_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# start_hub NAME: a fresh hub with its data in $tmp/NAME; sets hub_pid and url.
start_hub() {
    rm -f "$tmp/ready"
    mkfifo "$tmp/ready"
    # shellcheck disable=SC2086
    "$airlock" hub --listen 127.0.0.1:0 --data-dir "$tmp/$1" --ready-fd 3 ${HUB_ARGS:-} \
        3>"$tmp/ready" 2>"$tmp/$1.log" &
    hub_pid=$!
    url=$(timeout 30 head -n 1 "$tmp/ready" || true)
    if [ -z "$url" ]; then
        echo "bench: the hub did not become ready; its log:" >&2
        tail -n 20 "$tmp/$1.log" >&2
        exit 1
    fi
}

# stop_hub NAME STATUS: SIGTERM; fails the run if the stage (STATUS) or the hub failed.
stop_hub() {
    kill -TERM "$hub_pid"
    local hub_status=0
    wait "$hub_pid" || hub_status=$?
    hub_pid=""
    if [ "$2" -ne 0 ] || [ "$hub_status" -ne 0 ]; then
        echo "bench: $1 stage failed (exit $2, hub exit $hub_status); the hub's last log lines:" >&2
        grep -v '"lvl":"info"' "$tmp/$1.log" | tail -n 20 >&2 || true
        exit 1
    fi
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
machine="machine: $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r)"
commit="commit: $(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"

for stage in $stages; do
    case "$stage" in
    hub)
        start_hub hub
        echo "airlock hub benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "$machine"
        echo "hub: $airlock hub ${HUB_ARGS:-}at $url (pid $hub_pid), RLIMIT_NOFILE $(ulimit -n)"
        echo "$commit"
        echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo

        status=0
        "$bench" --url "$url" --api-key-file "$tmp/hub/api.key" --hub-pid "$hub_pid" "$@" || status=$?

        echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
        stop_hub hub "$status"
        ;;
    worker)
        if [ ! -x "$node" ] || [ ! -d "$top/tests/e2e/node_modules/@anthropic-ai/sdk" ]; then
            echo "bench: worker stage skipped: $node or the SDK is missing (install tests/e2e's packages)" >&2
            continue
        fi
        start_hub worker
        echo
        echo "airlock worker benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "$machine"
        echo "hub: $airlock hub ${HUB_ARGS:-}at $url (pid $hub_pid)"
        echo "$commit"
        echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

        status=0
        # shellcheck disable=SC2086
        "$node" "$top/bench/worker.mjs" --url "$url" --api-key-file "$tmp/worker/api.key" --hub-pid "$hub_pid" \
            --airlock "$airlock" ${BENCH_WORKER_ARGS:-} || status=$?

        echo
        echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
        stop_hub worker "$status"
        ;;
    sandbox)
        echo
        echo "airlock sandbox benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "$machine"
        echo "$commit"
        echo "unshare: $(unshare --version 2>&1 | head -n 1); bwrap: $(bwrap --version 2>/dev/null || echo missing)"
        echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
        mkdir -p "$tmp/sandbox"
        status=0
        # shellcheck disable=SC2086
        # The worker starts the small runner beside `airlock` when it is there.
        runner="$airlock"
        [ -x "$build/airlock-sandbox-runner" ] && runner="$build/airlock-sandbox-runner"
        echo "runner binary: $runner"
        "$sbench" --airlock "$runner" --dir "$tmp/sandbox" \
            ${BENCH_SANDBOX_UID:+--uid "$BENCH_SANDBOX_UID"} ${BENCH_SANDBOX_ARGS:-} \
            2>"$tmp/sandbox.log" || status=$?
        echo
        echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
        if [ "$status" -ne 0 ]; then
            echo "bench: sandbox stage failed (exit $status); its log:" >&2
            tail -n 20 "$tmp/sandbox.log" >&2
            exit 1
        fi
        ;;
    tunnel)
        echo
        echo "airlock tunnel benchmark (relay + gateway against the baselines), $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "$machine"
        echo "$commit"
        echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
        status=0
        "$top/bench/tunnel/run.sh" "$build" || status=$?
        echo
        echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
        if [ "$status" -ne 0 ]; then
            echo "bench: tunnel stage failed (exit $status); logs in $build/tunnel-bench/logs" >&2
            exit 1
        fi
        ;;
    *)
        echo "bench: unknown stage $stage (stages: hub worker sandbox tunnel)" >&2
        exit 2
        ;;
    esac
done
