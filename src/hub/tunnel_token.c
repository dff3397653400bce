/* SPDX-License-Identifier: Apache-2.0 */
/* See tunnel_token.h. */
#include <stdio.h>
#include <string.h>

#include "../lib/base/util.h"
#include "../lib/tls/crypto.h"
#include "tunnel_token.h"

#define MAC_LABEL "airlock-tunnel-token"

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_b64url(char c)
{
    return is_alnum(c) || c == '-' || c == '_';
}

int tunnel_token_parse(const char *s, size_t n, struct tunnel_token *ret)
{
    const size_t plen = sizeof(TUNNEL_TOKEN_PREFIX) - 1;
    struct tunnel_token t = { 0 };

    if (n > TUNNEL_TOKEN_MAX || n < plen || memcmp(s, TUNNEL_TOKEN_PREFIX, plen) != 0)
        return -EBADMSG;
    const char *p = s + plen, *end = s + n;

    /* id: "tnl_" [A-Za-z0-9]+ up to the next '.' */
    const char *dot = memchr(p, '.', (size_t) (end - p));
    size_t idlen = dot ? (size_t) (dot - p) : 0;
    if (!dot || idlen < 5 || idlen > TUNNEL_ID_MAX || memcmp(p, "tnl_", 4) != 0)
        return -EBADMSG;
    for (size_t i = 4; i < idlen; i++)
        if (!is_alnum(p[i]))
            return -EBADMSG;
    memcpy(t.id, p, idlen);
    p = dot + 1;

    /* generation: 1..TUNNEL_GEN_MAX, no leading zero */
    dot = memchr(p, '.', (size_t) (end - p));
    size_t glen = dot ? (size_t) (dot - p) : 0;
    if (!dot || glen == 0 || glen > 16 || p[0] == '0')
        return -EBADMSG;
    for (size_t i = 0; i < glen; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EBADMSG;
        t.generation = t.generation * 10 + (p[i] - '0');
    }
    if (t.generation > TUNNEL_GEN_MAX)
        return -EBADMSG;
    p = dot + 1;

    /* mac: exactly TUNNEL_MAC_LEN base64url characters to the end. The last
     * one carries 2 spare bits that must be zero, so that each MAC has one
     * spelling only. */
    if ((size_t) (end - p) != TUNNEL_MAC_LEN)
        return -EBADMSG;
    for (size_t i = 0; i < TUNNEL_MAC_LEN; i++)
        if (!is_b64url(p[i]))
            return -EBADMSG;
    if (!strchr("AEIMQUYcgkosw048", p[TUNNEL_MAC_LEN - 1]))
        return -EBADMSG;
    memcpy(t.mac, p, TUNNEL_MAC_LEN);
    *ret = t;
    return 0;
}

void tunnel_token_mac(const unsigned char key[TUNNEL_KEY_LEN], const char *id, int64_t generation,
                      char out[TUNNEL_MAC_LEN + 1])
{
    char msg[sizeof(MAC_LABEL) + TUNNEL_ID_MAX + 32];
    unsigned char d[AL_SHA256_LEN];
    size_t idlen = strnlen(id, TUNNEL_ID_MAX);

    /* label NUL id NUL generation, the NULs included */
    size_t n = sizeof(MAC_LABEL);
    memcpy(msg, MAC_LABEL, n);
    memcpy(msg + n, id, idlen);
    n += idlen;
    msg[n++] = '\0';
    n += (size_t) snprintf(msg + n, sizeof(msg) - n, "%lld", (long long) generation);
    al_hmac_sha256(key, TUNNEL_KEY_LEN, msg, n, d);
    _cleanup_free_ char *b = al_b64url_encode(d, sizeof(d));
    memcpy(out, b, TUNNEL_MAC_LEN);
    out[TUNNEL_MAC_LEN] = '\0';
    explicit_bzero(d, sizeof(d));
}

char *tunnel_token_format(const unsigned char key[TUNNEL_KEY_LEN], const char *id, int64_t generation)
{
    char mac[TUNNEL_MAC_LEN + 1];
    tunnel_token_mac(key, id, generation, mac);
    char *tok = al_xasprintf(TUNNEL_TOKEN_PREFIX "%s.%lld.%s", id, (long long) generation, mac);
    explicit_bzero(mac, sizeof(mac));
    return tok;
}

bool tunnel_token_mac_ok(const unsigned char key[TUNNEL_KEY_LEN], const struct tunnel_token *t)
{
    char want[TUNNEL_MAC_LEN + 1];
    tunnel_token_mac(key, t->id, t->generation, want);
    bool ok = al_ct_equal(want, t->mac, TUNNEL_MAC_LEN);
    explicit_bzero(want, sizeof(want));
    return ok;
}
