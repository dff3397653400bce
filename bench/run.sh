#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmarks the hub (`make bench` runs this with the release build dir).
# Compiles bench/*.c into BUILD_DIR/airlock-bench, starts BUILD_DIR/airlock hub
# on 127.0.0.1:0 with a fresh data dir, runs the load generator against it,
# prints the results table, and stops the hub (which must exit 0).
#
# usage: bench/run.sh BUILD_DIR [airlock-bench options, e.g. --quick]
# HUB_ARGS adds hub flags (e.g. HUB_ARGS="--log-level warn").
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: bench/run.sh BUILD_DIR [bench options]}" && pwd)
shift
airlock="$build/airlock"
bench="$build/airlock-bench"
[ -x "$airlock" ] || { echo "bench: $airlock missing; build first (make build)" >&2; exit 1; }

# The load generator is not part of the CMake build: one compile, no install.
srcs=("$top"/bench/*.c "$top/src/lib/base/alloc.c")
if [ ! -x "$bench" ] || [ -n "$(find "${srcs[@]}" "$top/bench/bench.h" -newer "$bench" 2>/dev/null)" ]; then
    ${CC:-cc} -std=gnu17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes \
        -Wstrict-prototypes -Wvla -Wno-unused-parameter -D_GNU_SOURCE \
        "${srcs[@]}" -o "$bench" \
        $(pkg-config --cflags --libs libevent_core libevent_extra jansson) -lm
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

mkfifo "$tmp/ready"
# shellcheck disable=SC2086
"$airlock" hub --listen 127.0.0.1:0 --data-dir "$tmp/hub" --ready-fd 3 ${HUB_ARGS:-} \
    3>"$tmp/ready" 2>"$tmp/hub.log" &
hub_pid=$!
url=$(timeout 30 head -n 1 "$tmp/ready" || true)
if [ -z "$url" ]; then
    echo "bench: the hub did not become ready; its log:" >&2
    tail -n 20 "$tmp/hub.log" >&2
    exit 1
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
echo "airlock hub benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r)"
echo "hub: $airlock hub ${HUB_ARGS:-}at $url (pid $hub_pid), RLIMIT_NOFILE $(ulimit -n)"
echo "commit: $(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

status=0
"$bench" --url "$url" --api-key-file "$tmp/hub/api.key" --hub-pid "$hub_pid" "$@" || status=$?

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
kill -TERM "$hub_pid"
hub_status=0
wait "$hub_pid" || hub_status=$?
hub_pid=""
if [ "$status" -ne 0 ] || [ "$hub_status" -ne 0 ]; then
    echo "bench: failed (bench exit $status, hub exit $hub_status); the hub's last log lines:" >&2
    grep -v '"lvl":"info"' "$tmp/hub.log" | tail -n 20 >&2 || true
    exit 1
fi
