/* SPDX-License-Identifier: Apache-2.0 */
/* The CONNECT stream's metadata (docs/internals/TUNNEL.md §3), checked
 * before a stream reaches the stream side: a pure function over the
 * request's header list, no I/O, no allocation. Fuzzed by
 * fuzz/fuzz_stream_meta.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "../lib/h2/h2.h"
#include "conn.h"

enum { M_METHOD, M_AUTHORITY, M_TUNNEL, M_SNI, M_ADDR, M_STREAM, M_MAX };

static bool eq(const struct al_h2_header *h, const char *name)
{
    return h->namelen == strlen(name) && memcmp(h->name, name, h->namelen) == 0;
}

static bool parse_port(const char *p, size_t n)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned) (p[i] - '0');
    }
    return v <= 65535 && !(n > 1 && p[0] == '0');
}

/* "1.2.3.4:5678" or "[2001:db8::1]:5678". */
static bool valid_client_addr(const char *s, size_t n)
{
    char ip[INET6_ADDRSTRLEN + 1];
    unsigned char bin[16];
    const char *colon;
    size_t iplen;

    if (n == 0 || n >= GW_CLIENT_ADDR_MAX)
        return false;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close + 1 >= s + n || close[1] != ':')
            return false;
        iplen = (size_t) (close - s - 1);
        if (iplen == 0 || iplen >= sizeof(ip))
            return false;
        memcpy(ip, s + 1, iplen);
        ip[iplen] = '\0';
        colon = close + 1;
        if (inet_pton(AF_INET6, ip, bin) != 1)
            return false;
    } else {
        colon = memrchr(s, ':', n);
        if (!colon)
            return false;
        iplen = (size_t) (colon - s);
        if (iplen == 0 || iplen >= sizeof(ip) || memchr(s, ':', iplen))
            return false;
        memcpy(ip, s, iplen);
        ip[iplen] = '\0';
        if (inet_pton(AF_INET, ip, bin) != 1)
            return false;
    }
    return parse_port(colon + 1, (size_t) (s + n - colon - 1));
}

static bool parse_u53(const char *s, size_t n, uint64_t *ret)
{
    uint64_t v = 0;
    if (n == 0 || n > 16 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t) (s[i] - '0');
    }
    if (v > (1ull << 53))
        return false;
    *ret = v;
    return true;
}

static bool valid_tunnel_id(const char *s, size_t n)
{
    if (n < 5 || n > AL_TUNNEL_ID_MAX || memcmp(s, "tnl_", 4) != 0)
        return false;
    for (size_t i = 4; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int take(const struct al_h2_header *h, int which, struct gw_meta *m, const struct al_h2_header **seen)
{
    if (seen[which])
        return -EBADMSG;
    seen[which] = h;
    switch (which) {
    case M_METHOD:
        return h->valuelen == 7 && memcmp(h->value, "CONNECT", 7) == 0 ? 0 : -EBADMSG;
    case M_TUNNEL:
        if (!valid_tunnel_id(h->value, h->valuelen))
            return -EBADMSG;
        memcpy(m->tunnel_id, h->value, h->valuelen);
        m->tunnel_id[h->valuelen] = '\0';
        return 0;
    case M_SNI:
        if (!al_is_dns_name(h->value, h->valuelen))
            return -EBADMSG;
        memcpy(m->sni, h->value, h->valuelen);
        m->sni[h->valuelen] = '\0';
        return 0;
    case M_ADDR:
        if (!valid_client_addr(h->value, h->valuelen))
            return -EBADMSG;
        memcpy(m->client_addr, h->value, h->valuelen);
        m->client_addr[h->valuelen] = '\0';
        return 0;
    case M_STREAM:
        return parse_u53(h->value, h->valuelen, &m->stream_id) ? 0 : -EBADMSG;
    default:
        return 0;   /* :authority is checked once the SNI is known */
    }
}

int gw_meta_parse(const struct al_h2_header *h, size_t n, struct gw_meta *ret)
{
    static const char *const names[M_MAX] = { ":method", ":authority", "airlock-tunnel", "airlock-sni",
                                              "airlock-client-addr", "airlock-stream" };
    const struct al_h2_header *seen[M_MAX] = { NULL };
    struct gw_meta m = { .stream_id = 0 };

    for (size_t i = 0; i < n; i++) {
        if (eq(&h[i], ":scheme") || eq(&h[i], ":path") || eq(&h[i], ":protocol"))
            return -EBADMSG;
        for (int k = 0; k < M_MAX; k++)
            if (eq(&h[i], names[k]) && take(&h[i], k, &m, seen) < 0)
                return -EBADMSG;
    }
    for (int k = 0; k < M_MAX; k++)
        if (!seen[k])
            return -EBADMSG;
    size_t sl = strlen(m.sni);
    const struct al_h2_header *a = seen[M_AUTHORITY];
    if (a->valuelen != sl + 4 || memcmp(a->value, m.sni, sl) != 0 || memcmp(a->value + sl, ":443", 4) != 0)
        return -EBADMSG;
    *ret = m;
    return 0;
}
