#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every libFuzzer binary in BUILD_DIR/fuzz (built with -DAL_FUZZ=ON) for
# SECONDS each, starting from its seed corpus, and fails if any of them finds
# a crash, leak, timeout or failed invariant.
#
# The seeds are copied into a working corpus, BUILD_DIR/fuzz/work/<target>,
# so fuzzing never writes to fuzz/corpus/: the committed corpus only grows on
# purpose (the script prints the merge command). Crashing inputs land in
# BUILD_DIR/fuzz/artifacts/<target>/; add one to the corpus with its fix.
#
# usage: scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]
#   FUZZ_ARGS="..."  extra libFuzzer flags, e.g. FUZZ_ARGS="-jobs=4 -workers=4"
set -euo pipefail

if [ "$#" -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
    exit 2
fi
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
secs=$2
shift 2

targets=()
if [ "$#" -gt 0 ]; then
    for t in "$@"; do
        targets+=("$build/fuzz/$t")
    done
else
    for bin in "$build"/fuzz/fuzz_*; do
        [ -f "$bin" ] && [ -x "$bin" ] && [[ "$bin" != *_replay ]] && targets+=("$bin")
    done
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz: no libFuzzer binaries in $build/fuzz (configure with CC=clang -DAL_FUZZ=ON)" >&2
    exit 2
fi

failed=()
for bin in "${targets[@]}"; do
    t=$(basename "$bin")
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin: not built" >&2
        failed+=("$t")
        continue
    fi
    seeds="$top/fuzz/corpus/$t"
    [ -d "$seeds" ] || seeds="$top/fuzz/corpus/${t#fuzz_}"
    work="$build/fuzz/work/$t"
    art="$build/fuzz/artifacts/$t"
    rm -rf "$work"
    mkdir -p "$work" "$art"
    if [ -d "$seeds" ]; then
        cp -R "$seeds/." "$work/"
    else
        echo "fuzz: $t: no seed corpus in fuzz/corpus/$t, starting empty" >&2
    fi
    before=$(find "$work" -type f | wc -l)

    args=(-max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$art/")
    [ -f "$top/fuzz/$t.dict" ] && args+=(-dict="$top/fuzz/$t.dict")
    # shellcheck disable=SC2206  # FUZZ_ARGS is a list of flags on purpose
    extra=(${FUZZ_ARGS:-})

    echo "fuzz: $t for ${secs}s ($before seeds)" >&2
    log="$build/fuzz/$t.log"
    if "$bin" "${args[@]}" "${extra[@]}" "$work" >"$log" 2>&1; then
        after=$(find "$work" -type f | wc -l)
        echo "fuzz: $t ok, corpus $before -> $after" >&2
        if [ "$after" -gt "$before" ]; then
            echo "      to keep new coverage: $bin -merge=1 $top/fuzz/corpus/$t $work" >&2
        fi
    else
        echo "fuzz: $t FAILED; last lines of $log:" >&2
        tail -n 40 "$log" >&2
        for a in "$art"/*; do
            [ -f "$a" ] && echo "      input: $a (replay: $build/fuzz/replay/${t}_replay $a)" >&2
        done
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${secs}s without a finding" >&2
