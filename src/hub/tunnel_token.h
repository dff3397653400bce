/* SPDX-License-Identifier: Apache-2.0 */
/* Tunnel connector tokens (docs/internals/TUNNEL.md §1). A token is derived,
 * never stored: "tnltok.<tunnel id>.<generation>.<mac>", mac the base64url
 * (no padding) HMAC-SHA-256 under the hub's tunnel secret of
 * "airlock-tunnel-token\0" id "\0" generation. The parser is pure (no
 * allocation, no I/O) and fuzzed (fuzz/fuzz_tunnel_token.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/base/macro.h"

#define TUNNEL_KEY_LEN      32
#define TUNNEL_TOKEN_PREFIX "tnltok."
#define TUNNEL_ID_MAX       64                   /* "tnl_" + 24 base62 today */
#define TUNNEL_MAC_LEN      43                   /* base64url of 32 bytes, no padding */
#define TUNNEL_GEN_MAX      ((int64_t) 1 << 53)  /* stays exact in a JSON number */
#define TUNNEL_TOKEN_MAX    (sizeof(TUNNEL_TOKEN_PREFIX) + TUNNEL_ID_MAX + 17 + TUNNEL_MAC_LEN + 1)

struct tunnel_token {
    char id[TUNNEL_ID_MAX + 1];
    int64_t generation;                          /* 1..TUNNEL_GEN_MAX */
    char mac[TUNNEL_MAC_LEN + 1];
};

/* Parses s[0..n). The id is "tnl_" and 1..60 characters [A-Za-z0-9]; the
 * generation is decimal without sign or leading zeros. Returns 0 and fills
 * *ret, or -EBADMSG (then *ret is untouched). Says nothing about the MAC. */
_must_check_ int tunnel_token_parse(const char *s, size_t n, struct tunnel_token *ret);
/* The MAC of (id, generation) under key, as TUNNEL_MAC_LEN characters + NUL. */
void tunnel_token_mac(const unsigned char key[TUNNEL_KEY_LEN], const char *id, int64_t generation,
                      char out[TUNNEL_MAC_LEN + 1]);
/* The token of (id, generation); caller frees and should wipe it. */
char *tunnel_token_format(const unsigned char key[TUNNEL_KEY_LEN], const char *id, int64_t generation);
/* Whether t's MAC is the one key gives; compared in constant time. */
bool tunnel_token_mac_ok(const unsigned char key[TUNNEL_KEY_LEN], const struct tunnel_token *t);
