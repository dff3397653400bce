#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Static analysis gate (HOUSE_STYLE 3.10): cppcheck over src/, then
# clang-tidy with the repository's .clang-tidy over every C file of src/
# that BUILD_DIR's compile_commands.json knows. Fails on any finding.
#
# usage: tools/static-check.sh BUILD_DIR [--no-tidy]
#   --no-tidy: cppcheck only (seconds; ctest runs this); `make lint` runs both.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: tools/static-check.sh BUILD_DIR [--no-tidy]}
cd "$here"

cppcheck --enable=warning,portability --error-exitcode=1 --quiet --inline-suppr -D_GNU_SOURCE \
    --include=/usr/include/jansson.h -I src src

[ "${2:-}" = "--no-tidy" ] && exit 0

db="$build/compile_commands.json"
[ -f "$db" ] || { echo "static-check: $db missing (configure the build first)" >&2; exit 1; }
# The sources of src/ that the build compiles, each once.
files=$(perl -MJSON::PP -e 'local $/; my $j = decode_json(<STDIN>); my %s;
    for (@$j) { my $f = $_->{file}; $s{$f} = 1 if $f =~ m{/src/.*\.c$} }
    print join("\n", sort keys %s), "\n"' < "$db")
printf '%s\n' $files | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet 2>/dev/null | \
    grep -E '(warning|error):' && exit 1
exit 0
