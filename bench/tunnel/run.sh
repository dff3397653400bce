#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/tunnel/run.sh BUILD_DIR - the `tunnel` stage of `make bench` (issue 5, MCP tunnels):
# airlock's relay + gateway against direct HTTP, direct TLS, an OpenSSH reverse tunnel and stunnel,
# all on this machine, side by side in one run, with the benchmark kit in shared/baselines/tunnel
# (called, not copied: TUNNEL_KIT overrides where it is).
#
#   1. the kit: upstream, test PKI, the baselines D0 D1 SSH SSH_NODELAY STUNNEL;
#   2. a hub (fresh data dir, --tunnel-domain tunnel.test), a tunnel made through its API, an operator
#      CA made here (openssl) registered for it, and an inner certificate for *.<tunnel hostname>;
#   3. `airlock relay` and `airlock gateway` (4 relay connections), pinned to TUNNEL_CPU like the
#      baselines, registered as the kit path AIRLOCK; a second gateway with only --listen-tls (no
#      relay) as the path GW_D1: the gateway's own code path as a TLS terminator, the D1 of the notes;
#   4. `m_run` over every path (interleaved rounds), one JSON line each, the kit's tables, and a
#      table against GW_D1;
#   5. what the kit does not measure (BUILD_DIR/airlock-tunnel-bench, from tunnelbench.c here):
#      idle memory of the relay and the gateway, memory per idle open stream (TUNNEL_STREAMS
#      inner-TLS connections through the relay, handshaken and then silent, to an upstream that
#      accepts and holds), and the time from a restarted relay's ready line to the gateway's
#      /readyz = 200 (TUNNEL_RECONNECTS restarts);
#   6. the §6 targets of shared/spec/tunnel-notes.md, met or not.
#
# Results stay in BUILD_DIR/tunnel-bench/ (tunnel.jsonl, extra.txt, summary.md, logs/).
# Knobs (environment): the kit's (ROUNDS=5 LAT_SECS=10 RPS_SECS=10 SSE_SECS=5 BIG_REPS=3 WARM_SECS=2,
# PIN, LOADGEN_CPU, UPSTREAM_CPU, TUNNEL_CPU, ...), and
#   TUNNEL_PATHS      paths to measure (default "D0 D1 SSH SSH_NODELAY STUNNEL GW_D1 AIRLOCK")
#   TUNNEL_STREAMS    idle stream counts (default "1000 10000"; "" skips)
#   TUNNEL_RECONNECTS relay restarts (default 20; 0 skips)
#   TUNNEL_LOG_LEVEL  relay and gateway --log-level (default warn, as the kit's stunnel logs warnings)
#   TUNNEL_RELAY_ARGS / TUNNEL_GATEWAY_ARGS  more flags for them
#   TUNNEL_SYSCALLS=1 strace -c of D1, GW_D1 and AIRLOCK after the timed phases: syscalls per request
#                     and per MB (evidence for where the time goes; needs strace)
# Quick: ROUNDS=1 LAT_SECS=1 RPS_SECS=1 SSE_SECS=1 BIG_REPS=1 WARM_SECS=1 TUNNEL_STREAMS=1000
#        TUNNEL_RECONNECTS=3 bench/tunnel/run.sh build-bench     (about 1 minute)
set -u # as the kit: its functions report through their status

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: bench/tunnel/run.sh BUILD_DIR}" && pwd)
airlock="$build/airlock"
tbench="$build/airlock-tunnel-bench"
kit=${TUNNEL_KIT:-$top/../shared/baselines/tunnel}
out="$build/tunnel-bench"
paths=(${TUNNEL_PATHS:-D0 D1 SSH SSH_NODELAY STUNNEL GW_D1 AIRLOCK})
streams=${TUNNEL_STREAMS-1000 10000}
reconnects=${TUNNEL_RECONNECTS:-20}
loglevel=${TUNNEL_LOG_LEVEL:-warn}

say() { printf '[tunnel %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

[ -x "$airlock" ] || fail "$airlock missing; build first"
[ -f "$kit/measure.sh" ] || fail "the tunnel kit is not at $kit (set TUNNEL_KIT)"
want_tunnel=0
[[ " ${paths[*]} " == *" AIRLOCK "* || " ${paths[*]} " == *" GW_D1 "* ]] && want_tunnel=1
if ((want_tunnel)); then
    for cmd in relay gateway; do
        "$airlock" "$cmd" --help >/dev/null 2>&1 ||
            fail "\`airlock $cmd --help\` fails: the tunnel is not built in $build (TUNNEL_PATHS=\"D0 D1 ...\" measures the baselines alone)"
    done
fi

# Bench-only dependencies (not `make test`'s): stunnel4, openssh-server/-client and the rest of
# the kit's list through its own installer (Debian packages; no service is started), and curl + jq
# for the hub's API here.
"$kit/install-deps.sh" >/dev/null || fail "$kit/install-deps.sh failed"
for b in curl jq; do
    command -v "$b" >/dev/null && continue
    [ "$(id -u)" = 0 ] || fail "$b is missing (apt-get install $b)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$b" >/dev/null || fail "cannot install $b"
done

src="$top/bench/tunnel/tunnelbench.c"
if [ ! -x "$tbench" ] || [ "$src" -nt "$tbench" ]; then
    ${CC:-cc} -std=gnu17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter -D_GNU_SOURCE \
        "$src" -o "$tbench" -lssl -lcrypto || fail "cannot compile $src"
fi

# 10,000 idle streams are 10,000 descriptors in the client, the relay, the gateway (its upstream
# connections) and the holding upstream: every process started below inherits this.
ulimit -n "$(ulimit -Hn)"

# shellcheck source=/dev/null
source "$kit/measure.sh"
trap '[ -n "$KIT_TMP" ] && cp "$KIT_TMP"/log/*.log "$out/logs/" 2>/dev/null; kit_cleanup' EXIT
trap 'exit 130' INT TERM

rm -rf "$out"
mkdir -p "$out/logs"
t_start=$(date +%s)
kit_init || exit 1
m_facts
upstream_start || exit 1

# spawn_ready NAME CPU CMD...: like kit_spawn (log in $KIT_TMP/log, PID recorded for the kit's
# cleanup), with fd 3 on a file for the --ready-fd line; waits (15 s) for that line -> READY_LINE.
spawn_ready() {
    local name="$1" cpu="$2" i
    shift 2
    : >"$KIT_TMP/$name.ready"
    # shellcheck disable=SC2046
    $(kit_pin "$cpu") "$@" --ready-fd 3 3>"$KIT_TMP/$name.ready" >"$KIT_TMP/log/$name.log" 2>&1 &
    KIT_LAST_PID=$!
    KIT_PIDS+=("$KIT_LAST_PID")
    echo "$KIT_LAST_PID $(kit_starttime "$KIT_LAST_PID") $name" >>"$KIT_TMP/pids"
    for ((i = 0; i < 300; i++)); do
        READY_LINE=$(head -n 1 "$KIT_TMP/$name.ready")
        [[ -n "$READY_LINE" && "$(wc -l <"$KIT_TMP/$name.ready")" -ge 1 ]] && return 0
        kill -0 "$KIT_LAST_PID" 2>/dev/null || break
        sleep 0.05
    done
    say "$name did not become ready; its log:"
    tail -n 20 "$KIT_TMP/log/$name.log" >&2
    return 1
}

# forget_pid PID: a process stopped here is no longer the kit's to stop
forget_pid() {
    local i
    for i in "${!KIT_PIDS[@]}"; do [[ "${KIT_PIDS[i]}" == "$1" ]] && unset 'KIT_PIDS[i]'; done
    KIT_PIDS=("${KIT_PIDS[@]}")
}

mem() { "$tbench" mem "$@"; } # pid=P rss_kb=... anon_kb=... file_kb=... pss_kb=... fds=...
memval() { "$tbench" mem "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

extra="$out/extra.txt"
: >"$extra"
x() { echo "$1=$2" >>"$extra"; } # an extra result

if ((want_tunnel)); then
    # ---- hub and tunnel ----------------------------------------------------------------------
    hubdir="$KIT_TMP/hub"
    spawn_ready hub "$UPSTREAM_CPU" "$airlock" hub --listen 127.0.0.1:0 --data-dir "$hubdir" \
        --tunnel-domain tunnel.test --log-level warn || exit 1
    hub_url=$READY_LINE
    hub_key=$(cat "$hubdir/api.key")
    say "hub at $hub_url"
    api() { # api METHOD PATH [JSON]: the response body; fails on a non-2xx status
        local body code
        body=$(curl -sS -X "$1" -H "Authorization: Bearer $hub_key" -H 'Content-Type: application/json' \
            ${3:+--data-binary "$3"} -w '\n%{http_code}' "$hub_url$2") || return 1
        code=${body##*$'\n'}
        body=${body%$'\n'*}
        [[ "$code" == 2?? ]] || { say "$1 $2: HTTP $code $body"; return 1; }
        printf '%s' "$body"
    }
    t=$(api POST /v1/tunnels '{"name":"bench"}') || exit 1
    tunnel_id=$(jq -r .id <<<"$t")
    tunnel_host=$(jq -r .hostname <<<"$t")
    api POST "/v1/tunnels/$tunnel_id/reveal_token" | jq -r .token >"$KIT_TMP/token" || exit 1
    chmod 600 "$KIT_TMP/token"
    # The operator's CA and the gateway's inner certificate: *.<tunnel hostname> is two labels
    # below tunnel.test, which the kit's *.tunnel.test certificate does not cover. "mcp" is the
    # route's name, the SNI of the direct listener (GW_D1).
    op="$KIT_TMP/operator"
    mkdir -p "$op"
    (
        cd "$op" || exit 1
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench operator CA" \
            -keyout ca.key -out ca.pem -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mcp.$tunnel_host" \
                -keyout inner.key -out inner.csr 2>/dev/null &&
            printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
                "extendedKeyUsage=serverAuth" "subjectAltName=DNS:*.$tunnel_host,DNS:$tunnel_host,DNS:mcp" >inner.ext &&
            openssl x509 -req -in inner.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile inner.ext \
                -out inner.pem 2>/dev/null
    ) || fail "operator PKI generation failed"
    api POST "/v1/tunnels/$tunnel_id/certificates" "$(jq -Rs '{certificate_pem: .}' "$op/ca.pem")" >/dev/null || exit 1
    say "tunnel $tunnel_id, hostname $tunnel_host, operator CA registered"

    # ---- the idle-stream upstream, relay, gateways ---------------------------------------------
    kit_spawn hold "$UPSTREAM_CPU" "$tbench" hold --max-seconds 7200
    hold_pid=$KIT_LAST_PID
    for ((i = 0; i < 100; i++)); do
        hold_port=$(sed -n 's/^port=//p' "$KIT_TMP/log/hold.log")
        [ -n "$hold_port" ] && break
        sleep 0.05
    done
    [ -n "$hold_port" ] || fail "the holding upstream did not start"

    kit_free_port || exit 1
    relay_port=$KIT_PORT
    kit_free_port || exit 1
    relay_gw_port=$KIT_PORT
    kit_free_port || exit 1
    admin_port=$KIT_PORT
    kit_free_port || exit 1
    direct_port=$KIT_PORT
    # shellcheck disable=SC2206
    relay_cmd=("$airlock" relay --listen "127.0.0.1:$relay_port" --gateway-listen "127.0.0.1:$relay_gw_port"
        --cert "$KIT_PKI/server.pem" --key "$KIT_PKI/server.key" --hub "$hub_url" --api-key-file "$hubdir/api.key"
        --log-level "$loglevel" ${TUNNEL_RELAY_ARGS:-})
    spawn_ready relay "$TUNNEL_CPU" "${relay_cmd[@]}" || exit 1
    relay_pid=$KIT_LAST_PID
    say "relay pid $relay_pid: $READY_LINE"
    sleep 0.5
    read -r relay_alone_rss relay_alone_anon < <(mem "$relay_pid" | awk '{ for (i = 1; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] } print v["rss_kb"], v["anon_kb"] }')

    # shellcheck disable=SC2206
    gw_common=(--cert "$op/inner.pem" --key "$op/inner.key" --log-level "$loglevel" ${TUNNEL_GATEWAY_ARGS:-})
    spawn_ready gateway "$TUNNEL_CPU" "$airlock" gateway --relay "127.0.0.1:$relay_gw_port" \
        --relay-ca "$KIT_PKI/ca.pem" --relay-name "$KIT_SNI" --token-file "$KIT_TMP/token" \
        --route "mcp=$UPSTREAM_URL" --route "idle=http://127.0.0.1:$hold_port" \
        --admin-listen "127.0.0.1:$admin_port" "${gw_common[@]}" || exit 1
    gw_pid=$KIT_LAST_PID
    say "gateway pid $gw_pid: ready ($READY_LINE)"
    spawn_ready gateway-d1 "$TUNNEL_CPU" "$airlock" gateway --listen-tls "127.0.0.1:$direct_port" \
        --route "mcp=$UPSTREAM_URL" "${gw_common[@]}" || exit 1
    gwd1_pid=$KIT_LAST_PID
    say "direct gateway pid $gwd1_pid: $READY_LINE"

    # (a) idle memory: the gateway once its relay connections are up (the metrics say how many,
    # when they say it), before any stream; the relay's growth for them
    for ((i = 0; i < 200; i++)); do
        curl -s "http://127.0.0.1:$admin_port/metrics" >"$out/gateway-metrics-idle.txt" 2>/dev/null
        grep -q '^tunnel_connections{state="ready"} 4$' "$out/gateway-metrics-idle.txt" && break
        sleep 0.05
    done
    x gateway_ready_connections "$(sed -n 's/^tunnel_connections{state="ready"} //p' "$out/gateway-metrics-idle.txt")"
    sleep 1
    mem "$gw_pid" "$relay_pid" "$gwd1_pid" >"$out/mem-idle.txt"
    # where the idle gateway's resident pages are: kB of Rss per mapped file ([anon] and the rest)
    awk '/^[0-9a-f]+-[0-9a-f]+ / { f = (NF >= 6) ? $6 : "[anon]" } $1 == "Rss:" { r[f] += $2 }
         END { for (f in r) if (r[f] > 0) printf "%8d kB %s\n", r[f], f }' "/proc/$gw_pid/smaps" |
        sort -rn >"$out/gateway-idle-rss-by-mapping.txt"
    x gateway_idle_rss_kb "$(memval "$gw_pid" rss_kb)"
    x gateway_idle_anon_kb "$(memval "$gw_pid" anon_kb)"
    x gateway_idle_pss_kb "$(memval "$gw_pid" pss_kb)"
    x gateway_idle_file_kb "$(memval "$gw_pid" file_kb)"
    x gateway_direct_idle_rss_kb "$(memval "$gwd1_pid" rss_kb)"
    x gateway_direct_idle_anon_kb "$(memval "$gwd1_pid" anon_kb)"
    x relay_alone_rss_kb "$relay_alone_rss"
    x relay_alone_anon_kb "$relay_alone_anon"
    x relay_idle_rss_kb "$(memval "$relay_pid" rss_kb)"
    x relay_idle_anon_kb "$(memval "$relay_pid" anon_kb)"

    if [[ " ${paths[*]} " == *" GW_D1 "* ]]; then
        path_custom "https://mcp.$tunnel_host:$direct_port" --ca "$op/ca.pem" --resolve "127.0.0.1:$direct_port" \
            --pids "$gwd1_pid" --name GW_D1 || fail "GW_D1 does not answer; the direct gateway's log: $(tail -5 "$KIT_TMP/log/gateway-d1.log")"
        TP_DESC[GW_D1]="client -TLS-> airlock gateway --listen-tls (no relay) -> upstream"
    fi
    if [[ " ${paths[*]} " == *" AIRLOCK "* ]]; then
        path_custom "https://mcp.$tunnel_host:$relay_port" --ca "$op/ca.pem" --resolve "127.0.0.1:$relay_port" \
            --pids "$relay_pid $gw_pid" --name AIRLOCK ||
            fail "AIRLOCK does not answer; relay log: $(tail -5 "$KIT_TMP/log/relay.log"); gateway log: $(tail -5 "$KIT_TMP/log/gateway.log")"
        TP_DESC[AIRLOCK]="client -TLS(SNI mcp.<tunnel>)-> airlock relay =TLS+HTTP/2=> airlock gateway (4 conns) -> upstream"
    fi
fi

# ---- the kit's measurements, every path interleaved -------------------------------------------
say "measuring ${paths[*]} (ROUNDS=$ROUNDS)"
m_run "${paths[@]}" || exit 1
for p in "${paths[@]}"; do
    m_set "$p" run_seconds $(($(date +%s) - t_start))
    m_json "$p" >>"$out/tunnel.jsonl"
done

# ---- extras -----------------------------------------------------------------------------------
if ((want_tunnel)); then
    mem "$gw_pid" "$relay_pid" "$gwd1_pid" >"$out/mem-after.txt"
    x gateway_after_rss_kb "$(memval "$gw_pid" rss_kb)"
    x gateway_after_anon_kb "$(memval "$gw_pid" anon_kb)"
    x relay_after_rss_kb "$(memval "$relay_pid" rss_kb)"
    x relay_after_anon_kb "$(memval "$relay_pid" anon_kb)"

    # (b) memory per idle open stream
    for n in $streams; do
        say "idle streams: $n inner-TLS connections through the relay, handshaken, then silent"
        if "$tbench" streams --connect "127.0.0.1:$relay_port" --sni "idle.$tunnel_host" --ca "$op/ca.pem" \
            --count "$n" --pids "relay=$relay_pid gateway=$gw_pid" --settle-ms 2000 --max-seconds 300 \
            --metrics "127.0.0.1:$admin_port" \
            >"$out/streams-$n.txt" 2>>"$out/logs/streams.log"; then
            :
        else
            say "streams $n: exit $? (see $out/streams-$n.txt, $out/logs/streams.log)"
        fi
        sed "s/^/streams${n}_/" "$out/streams-$n.txt" >>"$extra"
        kill -0 "$relay_pid" 2>/dev/null || fail "the relay died during the $n-stream test"
        kill -0 "$gw_pid" 2>/dev/null || fail "the gateway died during the $n-stream test"
    done
fi

# (d) optional (TUNNEL_SYSCALLS=1, needs strace): syscalls per request (48-connection closed loop, 2 s)
# and per MB (one 100 MB GET) of each tunnel process, counted by strace -c after the timed phases.
# strace slows the processes down; only the counts are used.
if [[ "${TUNNEL_SYSCALLS:-0}" == 1 ]] && command -v strace >/dev/null; then
    sys_paths=()
    for p in D1 GW_D1 AIRLOCK; do [[ " ${paths[*]} " == *" $p "* ]] && sys_paths+=("$p"); done
    {
        echo "| path | process | load | syscalls per unit (strace -c) |"
        echo "|---|---|---|---|"
    } >"$out/syscalls.md"
    for p in "${sys_paths[@]}"; do
        for phase in rps big; do
            spids=()
            for pid in ${TP_PIDS[$p]}; do
                strace -c -f -p "$pid" -o "$out/logs/strace-$p-$phase-$pid.txt" 2>/dev/null &
                spids+=($!)
            done
            sleep 0.5
            if [[ $phase == rps ]]; then
                n=$(kit_mcpload max "$p" --conns 48 --warmup 0 --duration 2 | sed -n 's/^rps_n=//p')
                unit="request (${n:-0} requests)"
            else
                kit_mcpload big "$p" --mb 100 --reps 1 >/dev/null
                n=100
                unit="MB (100 MB GET)"
            fi
            sleep 0.3
            kill -INT "${spids[@]}" 2>/dev/null
            wait "${spids[@]}" 2>/dev/null
            for pid in ${TP_PIDS[$p]}; do
                comm=$(cat "/proc/$pid/comm" 2>/dev/null)
                [[ "$p" == AIRLOCK && "$pid" == "$relay_pid" ]] && comm=relay
                [[ "$p" == AIRLOCK && "$pid" == "$gw_pid" ]] && comm=gateway
                # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall
                cells=$(awk -v n="${n:-0}" 'NF >= 5 && $4 ~ /^[0-9]+$/ && $NF ~ /^[a-z_0-9]+$/ && $NF != "total" {
                        t += $4; if (n > 0 && $4 / n >= 0.05) s = s sprintf("%s %.2f, ", $NF, $4 / n) }
                        END { if (n > 0) printf "**%.1f total**: %s", t / n, s }' "$out/logs/strace-$p-$phase-$pid.txt")
                echo "| $p | $comm | per $unit | ${cells%, } |" >>"$out/syscalls.md"
            done
        done
    done
fi

# (c) after (d): the restarts replace the relay that AIRLOCK was measured with
if ((want_tunnel)); then
    # (c) reconnect after a relay restart: the relay is killed and started again on the same ports
    if ((reconnects > 0)); then
        say "reconnect: $reconnects relay restarts (SIGKILL, same ports)"
        kill -KILL "$relay_pid"
        wait "$relay_pid" 2>/dev/null
        forget_pid "$relay_pid"
        # shellcheck disable=SC2046
        if "$tbench" reconnect --admin "127.0.0.1:$admin_port" --count "$reconnects" --all 4 \
            --log "$KIT_TMP/log/relay-restarts.log" --max-seconds 600 -- \
            $(kit_pin "$TUNNEL_CPU") "${relay_cmd[@]}" --ready-fd 3 >"$out/reconnect.txt" 2>>"$out/logs/reconnect.log"; then
            cat "$out/reconnect.txt" >>"$extra"
        else
            say "reconnect failed: $(tail -n 3 "$out/logs/reconnect.log")"
            x reconnect_error "$(tail -n 1 "$out/logs/reconnect.log")"
        fi
    fi
fi
cp "$KIT_TMP"/log/*.log "$out/logs/" 2>/dev/null

# ---- report -----------------------------------------------------------------------------------
{
    echo "### Tunnel benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$top" describe --always --dirty 2>/dev/null)"
    echo
    "$kit/jsonl2md.sh" "$out/tunnel.jsonl"
    echo
    "$top/bench/tunnel/report.sh" "$out/tunnel.jsonl" "$extra"
    if [ -s "$out/syscalls.md" ]; then
        echo
        echo "Syscalls of the tunnel processes (TUNNEL_SYSCALLS=1; strace -c, after the timed phases):"
        echo
        cat "$out/syscalls.md"
    fi
} | tee "$out/summary.md"
say "done in $(($(date +%s) - t_start)) s; results in $out"
