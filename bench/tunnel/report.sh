#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/tunnel/report.sh TUNNEL.jsonl EXTRA.txt - the part of the tunnel stage's report that the
# kit's jsonl2md.sh does not print: AIRLOCK against GW_D1 (airlock's own gateway as the direct TLS
# terminator) and D1 (stunnel), the extra measurements (memory, idle streams, reconnect), and the
# targets of shared/spec/tunnel-notes.md §6, each met or not. Needs jq.
set -u
jsonl="${1:?usage: report.sh TUNNEL.jsonl EXTRA.txt}"
extra="${2:?usage: report.sh TUNNEL.jsonl EXTRA.txt}"

# v PATH KEY: a number from the path's JSON line ("" when absent)
v() { jq -r --arg p "$1" --arg k "$2" 'select(.path == $p) | .[$k] // empty' "$jsonl" | head -n 1; }
# e KEY: an extra result
e() { sed -n "s/^$1=//p" "$extra" | tail -n 1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# d A B FMT: A - B, r A B: A / B ("?" when either is missing)
d() { if [ -n "$1" ] && [ -n "$2" ]; then calc "${3:-%+.0f}" "$1 - $2"; else echo "?"; fi; }
r() { if [ -n "$1" ] && [ -n "$2" ]; then calc %.2f "$1 / $2"; else echo "?"; fi; }
# verdict EXPR (awk boolean over numbers) -> met / not met / - (an operand missing)
verdict() {
    local expr="$1"
    shift
    local a
    for a in "$@"; do [ -n "$a" ] || { echo "-"; return; }; done
    awk "BEGIN { exit !($expr) }" && echo "**met**" || echo "**not met**"
}

have() { jq -s -e --arg p "$1" 'any(.[]; .path == $p)' "$jsonl" >/dev/null 2>&1; }

if have AIRLOCK; then
    echo "AIRLOCK against the two direct-TLS baselines (GW_D1: airlock gateway --listen-tls, no relay; D1: stunnel):"
    echo
    echo "| against | p50 added µs | p99 added µs | req/s ratio | MB/s ratio | SSE p99 added µs | tunnel CPU % (48 conns), AIRLOCK / base |"
    echo "|---|---|---|---|---|---|---|"
    for b in GW_D1 D1; do
        have "$b" || continue
        printf '| %s | %+.0f | %+.0f | %.2f | %.2f | %+.0f | %s / %s |\n' "$b" \
            "$(calc %.1f "$(v AIRLOCK lat_p50_us) - $(v "$b" lat_p50_us)")" \
            "$(calc %.1f "$(v AIRLOCK lat_p99_us) - $(v "$b" lat_p99_us)")" \
            "$(calc %.3f "$(v AIRLOCK rps) / $(v "$b" rps)")" \
            "$(calc %.3f "$(v AIRLOCK big_mbps) / $(v "$b" big_mbps)")" \
            "$(calc %.1f "$(v AIRLOCK sse_p99_us) - $(v "$b" sse_p99_us)")" \
            "$(v AIRLOCK rps_tunnel_cpu_pct)" "$(v "$b" rps_tunnel_cpu_pct)"
    done
    echo
fi

if [ -s "$extra" ]; then
    echo "Memory (kB; VmRSS includes the shared libraries' resident pages, RssAnon does not):"
    echo
    echo "| process, state | VmRSS | RssAnon |"
    echo "|---|---|---|"
    echo "| relay, started, no gateway | $(e relay_alone_rss_kb) | $(e relay_alone_anon_kb) |"
    echo "| relay, gateway connected, no stream | $(e relay_idle_rss_kb) | $(e relay_idle_anon_kb) |"
    echo "| gateway, relay connections up, no stream yet | $(e gateway_idle_rss_kb) | $(e gateway_idle_anon_kb) |"
    echo "| gateway --listen-tls alone (GW_D1), no connection yet | $(e gateway_direct_idle_rss_kb) | $(e gateway_direct_idle_anon_kb) |"
    echo "| relay, idle after all the kit's phases | $(e relay_after_rss_kb) | $(e relay_after_anon_kb) |"
    echo "| gateway, idle after all the kit's phases | $(e gateway_after_rss_kb) | $(e gateway_after_anon_kb) |"
    echo
    sn=$(sed -n 's/^streams\([0-9]*\)_streams=.*/\1/p' "$extra" | tr '\n' ' ')
    if [ -n "$sn" ]; then
        echo "Idle open streams (inner TLS handshaken through the relay, then silent; upstream accepts and holds):"
        echo
        echo "| streams | up / failed / still open / at the gateway | open time s | relay per stream B, RSS / anon | gateway per stream B, RSS / anon | relay + gateway RSS MB, all open | fds per stream, relay / gateway | RSS MB after closing, relay / gateway |"
        echo "|---|---|---|---|---|---|---|---|"
        for n in $sn; do
            s() { e "streams${n}_$1"; }
            printf '| %s | %s / %s / %s / %s | %s | %s / %s | %s / %s | %s | %s / %s | %s / %s |\n' "$n" \
                "$(s streams_up)" "$(s streams_failed)" "$(s streams_alive_after_settle)" "$(s gateway_streams_active)" "$(s open_seconds)" \
                "$(s relay_open_rss_per_stream_b)" "$(s relay_open_anon_per_stream_b)" \
                "$(s gateway_open_rss_per_stream_b)" "$(s gateway_open_anon_per_stream_b)" \
                "$(calc %.1f "($(s relay_open_rss_kb) + $(s gateway_open_rss_kb)) / 1024")" \
                "$(s relay_open_fds_per_stream)" "$(s gateway_open_fds_per_stream)" \
                "$(calc %.1f "$(s relay_closed_rss_kb) / 1024")" "$(calc %.1f "$(s gateway_closed_rss_kb) / 1024")"
            [ -n "$(s first_error)" ] && echo "|  | first error: $(s first_error) |||||||"
        done
        echo
    fi
    if [ -n "$(e reconnect_p50_ms)" ]; then
        echo "Reconnect after a relay restart (SIGKILL, started again on the same ports), $(e reconnect_rounds) rounds:"
        echo "relay's ready line → gateway /readyz 200: p50 $(e reconnect_p50_ms) ms, p99 $(e reconnect_p99_ms) ms" \
            "(all $(e reconnect_all_connections) connections ready: p50 $(e reconnect_all_p50_ms) ms, p99 $(e reconnect_all_p99_ms) ms)" \
            "(min $(e reconnect_min_ms), max $(e reconnect_max_ms)); relay exec → ready line p50 $(e relay_start_p50_ms) ms;" \
            "kill → gateway /readyz ≠ 200 p50 $(e gateway_notices_loss_p50_ms) ms (max $(e gateway_notices_loss_max_ms));" \
            "relay starts that failed (port still taken): $(e relay_start_failures). Samples (ms): $(e reconnect_ms)."
        echo
    elif [ -n "$(e reconnect_error)" ]; then
        echo "Reconnect: not measured: $(e reconnect_error)"
        echo
    fi
fi

have AIRLOCK || exit 0
base=GW_D1
have "$base" || base=D1
a50=$(v AIRLOCK lat_p50_us) b50=$(v "$base" lat_p50_us) a99=$(v AIRLOCK lat_p99_us) b99=$(v "$base" lat_p99_us)
arps=$(v AIRLOCK rps) brps=$(v "$base" rps) amb=$(v AIRLOCK big_mbps) bmb=$(v "$base" big_mbps)
asse=$(v AIRLOCK sse_p99_us) bsse=$(v "$base" sse_p99_us)
gw_rss=$(e gateway_idle_rss_kb) gw_anon=$(e gateway_idle_anon_kb)
# the relay's own memory for the 4 gateway connections: RssAnon, since VmRSS also grows by the
# library pages the first TLS handshake touches, once per process
r_alone=$(e relay_alone_anon_kb) r_idle=$(e relay_idle_anon_kb) r_alone_rss=$(e relay_alone_rss_kb) r_idle_rss=$(e relay_idle_rss_kb)
r_conn="" r_conn_rss=""
[ -n "$r_alone" ] && [ -n "$r_idle" ] && r_conn=$(calc %.0f "($r_idle - $r_alone) / 4")
[ -n "$r_alone_rss" ] && [ -n "$r_idle_rss" ] && r_conn_rss=$(calc %.0f "($r_idle_rss - $r_alone_rss) / 4")
big=$(sed -n 's/^streams\([0-9]*\)_streams=.*/\1/p' "$extra" | sort -n | tail -n 1)
rs="" gs="" up10="" tot10=""
if [ -n "$big" ]; then
    rs=$(e "streams${big}_relay_open_rss_per_stream_b")
    gs=$(e "streams${big}_gateway_open_rss_per_stream_b")
    up10=$(e "streams${big}_streams_alive_after_settle")
    tot10=$(calc %.1f "($(e "streams${big}_relay_open_rss_kb") + $(e "streams${big}_gateway_open_rss_kb")) / 1024")
fi
rc50=$(e reconnect_p50_ms) rc99=$(e reconnect_p99_ms)

echo "Targets (shared/spec/tunnel-notes.md §6), against $base:"
echo
echo "| target | measured | |"
echo "|---|---|---|"
echo "| latency p50 ≤ +60 µs | ${a50:-?} vs ${b50:-?} µs: $(d "$a50" "$b50") µs | $(verdict "$a50 - $b50 <= 60" "$a50" "$b50") |"
echo "| latency p99 ≤ +200 µs | ${a99:-?} vs ${b99:-?} µs: $(d "$a99" "$b99") µs | $(verdict "$a99 - $b99 <= 200" "$a99" "$b99") |"
echo "| req/s, 48 conns ≥ 0.6× | ${arps:-?} vs ${brps:-?}: $(r "$arps" "$brps")× | $(verdict "$arps >= 0.6 * $brps" "$arps" "$brps") |"
echo "| 100 MB body ≥ 0.5× | ${amb:-?} vs ${bmb:-?} MB/s: $(r "$amb" "$bmb")× | $(verdict "$amb >= 0.5 * $bmb" "$amb" "$bmb") |"
echo "| 100 MB body ≥ 400 MB/s | ${amb:-?} MB/s | $(verdict "$amb >= 400" "$amb") |"
echo "| SSE added delay p99 ≤ 1 ms | p99 ${asse:-?} vs ${bsse:-?} µs: $(d "$asse" "$bsse") µs | $(verdict "$asse - $bsse <= 1000" "$asse" "$bsse") |"
echo "| idle gateway ≤ 4 MB RSS (4 relay connections) | VmRSS ${gw_rss:-?} kB, RssAnon ${gw_anon:-?} kB, Pss $(e gateway_idle_pss_kb) kB | VmRSS $(verdict "$gw_rss <= 4096" "$gw_rss"), RssAnon $(verdict "$gw_anon <= 4096" "$gw_anon") |"
echo "| relay ≤ 64 KB per idle gateway connection | RssAnon ${r_conn:-?} kB (VmRSS ${r_conn_rss:-?} kB): (relay with the gateway's $(e gateway_ready_connections) connections − alone) / 4 | $(verdict "$r_conn <= 64" "$r_conn") |"
echo "| relay ≤ 8 KB per idle stream | ${rs:-?} B ($big streams) | $(verdict "$rs <= 8192" "$rs") |"
echo "| gateway ≤ 16 KB per idle stream | ${gs:-?} B ($big streams) | $(verdict "$gs <= 16384" "$gs") |"
if [ "${big:-0}" -ge 10000 ]; then
    v10=$(verdict "$up10 >= 10000 && $tot10 <= 400" "$up10" "$tot10")
else
    v10="- (${big:-no} streams tried)"
fi
echo "| ≥ 10,000 idle streams per tunnel, relay + gateway ≤ 400 MB | ${up10:-?} of ${big:-?} open, ${tot10:-?} MB | $v10 |"
echo "| reconnect p50 ≤ 1 s, p99 ≤ 3 s (first ready connection) | p50 ${rc50:-?} ms, p99 ${rc99:-?} ms | $(verdict "$rc50 <= 1000 && $rc99 <= 3000" "$rc50" "$rc99") |"
rca=$(e reconnect_all_p99_ms)
echo "| all 4 connections ≤ 5 s after a restart | p99 ${rca:-?} ms | $(verdict "$rca <= 5000" "$rca") |"
