/* SPDX-License-Identifier: Apache-2.0 */
/* The --allowed-ips list: CIDR parsing and matching (stream_internal.h).
 * Pure; fuzzed by fuzz/fuzz_cidr.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "stream_internal.h"

static int parse_one(const char *s, size_t len, struct gw_cidr *c)
{
    char tmp[64];
    const char *slash;
    unsigned long bits;

    if (len == 0 || len >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    slash = strchr(tmp, '/');
    if (slash) {
        const char *d = slash + 1;
        if (*d == '\0' || strlen(d) > 3)
            return -EINVAL;
        bits = 0;
        for (; *d; d++) {
            if (*d < '0' || *d > '9')
                return -EINVAL;
            bits = bits * 10 + (unsigned long) (*d - '0');
        }
        tmp[slash - tmp] = '\0';
    }
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, tmp, c->addr) == 1) {
        c->family = AF_INET;
        if (!slash)
            bits = 32;
        if (bits > 32)
            return -EINVAL;
    } else if (inet_pton(AF_INET6, tmp, c->addr) == 1) {
        c->family = AF_INET6;
        if (!slash)
            bits = 128;
        if (bits > 128)
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    c->bits = (unsigned) bits;
    /* Host bits set ("10.1.2.3/8") is almost always a typo: refuse it. */
    size_t alen = c->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < alen; i++) {
        unsigned keep = c->bits >= (i + 1) * 8 ? 8 : c->bits > i * 8 ? c->bits - (unsigned) i * 8 : 0;
        uint8_t mask = keep == 8 ? 0xff : (uint8_t) (0xff00u >> keep);
        if (c->addr[i] & (uint8_t) ~mask)
            return -EINVAL;
    }
    return 0;
}

int gw_cidr_parse_list(const char *s, struct gw_cidr_list *out, char *why, size_t whylen)
{
    out->n = 0;
    if (!s)
        s = GW_ALLOWED_IPS_DEFAULT;
    for (;;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t) (end - s) : strlen(s);
        const char *b = s, *e = s + len;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (out->n >= GW_CIDR_MAX) {
            (void) snprintf(why, whylen, "--allowed-ips: more than %d entries", GW_CIDR_MAX);
            return -EINVAL;
        }
        if (parse_one(b, (size_t) (e - b), &out->v[out->n]) < 0) {
            (void) snprintf(why, whylen, "--allowed-ips: \"%.*s\" is not an address or network (a.b.c.d/n, x::y/n, host bits zero)",
                            (int) AL_MIN((size_t) (e - b), (size_t) 64), b);
            return -EINVAL;
        }
        out->n++;
        if (!end)
            return 0;
        s = end + 1;
    }
}

static bool prefix_eq(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t) (0xff00u >> rest);
    return (a[full] & mask) == net[full];
}

static bool match(const struct gw_cidr_list *l, int family, const uint8_t *a)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].family == family && prefix_eq(a, l->v[i].addr, l->v[i].bits))
            return true;
    return false;
}

bool gw_cidr_allows(const struct gw_cidr_list *l, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return match(l, AF_INET, (const uint8_t *) &((const struct sockaddr_in *) sa)->sin_addr);
    if (sa->sa_family != AF_INET6)
        return false;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *) sa)->sin6_addr;
    /* ::ffff:a.b.c.d is the IPv4 address a.b.c.d to the kernel: match it
     * against the IPv4 networks (and against IPv6 ones written that way). */
    if (IN6_IS_ADDR_V4MAPPED(a6) && match(l, AF_INET, a6->s6_addr + 12))
        return true;
    return match(l, AF_INET6, a6->s6_addr);
}
