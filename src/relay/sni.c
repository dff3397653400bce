/* SPDX-License-Identifier: Apache-2.0 */
/* ClientHello parsing for the relay's SNI peek; see sni.h. Pure: no I/O, no
 * allocation. Every length is checked against what remains before use. */
#include <errno.h>
#include <string.h>

#include "sni.h"

#define TLS_HANDSHAKE 22
#define TLS_CLIENT_HELLO 1
#define TLS_RECORD_MAX 16384
#define EXT_SERVER_NAME 0
#define EXT_ALPN 16

struct rd {
    const uint8_t *p;
    size_t n;
};

static bool rd_u8(struct rd *r, uint8_t *v)
{
    if (r->n < 1)
        return false;
    *v = r->p[0];
    r->p++, r->n--;
    return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
    if (r->n < 2)
        return false;
    *v = (uint16_t) (r->p[0] << 8 | r->p[1]);
    r->p += 2, r->n -= 2;
    return true;
}

static bool rd_skip(struct rd *r, size_t k)
{
    if (r->n < k)
        return false;
    r->p += k, r->n -= k;
    return true;
}

/* A sub-reader over the next k bytes (a length-prefixed vector). */
static bool rd_sub(struct rd *r, size_t k, struct rd *sub)
{
    if (r->n < k)
        return false;
    *sub = (struct rd){ r->p, k };
    r->p += k, r->n -= k;
    return true;
}

/* Lower-cases name into out; only LDH, '_' and '.', no empty label, no
 * trailing dot. */
static int copy_hostname(const uint8_t *p, size_t n, char *out)
{
    if (n == 0 || n > RELAY_SNI_MAX)
        return -EBADMSG;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t) (c - 'A' + 'a');
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!ok)
            return -EBADMSG;
        if (c == '.' && (i == 0 || i == n - 1 || p[i - 1] == '.'))
            return -EBADMSG;
        out[i] = (char) c;
    }
    out[n] = '\0';
    return 0;
}

static int parse_server_name(struct rd ext, struct relay_hello *h)
{
    uint16_t listlen;
    struct rd list;
    bool seen = false;

    if (!rd_u16(&ext, &listlen) || listlen != ext.n || listlen == 0 || !rd_sub(&ext, listlen, &list))
        return -EBADMSG;
    while (list.n > 0) {
        uint8_t type;
        uint16_t nlen;
        struct rd name;
        if (!rd_u8(&list, &type) || !rd_u16(&list, &nlen) || !rd_sub(&list, nlen, &name))
            return -EBADMSG;
        if (type != 0)
            continue;                       /* unknown name types are skipped */
        if (seen)
            return -EBADMSG;                /* RFC 6066: one host_name */
        seen = true;
        if (copy_hostname(name.p, name.n, h->sni) < 0)
            return -EBADMSG;
    }
    return 0;
}

static int parse_alpn(struct rd ext, struct relay_hello *h)
{
    uint16_t listlen;
    uint8_t plen;
    struct rd list, proto;

    if (!rd_u16(&ext, &listlen) || listlen != ext.n || listlen < 2 || !rd_sub(&ext, listlen, &list))
        return -EBADMSG;
    bool first = true;
    while (list.n > 0) {
        if (!rd_u8(&list, &plen) || plen == 0 || !rd_sub(&list, plen, &proto))
            return -EBADMSG;
        if (first && proto.n <= RELAY_ALPN_MAX) {
            memcpy(h->alpn, proto.p, proto.n);
            h->alpn[proto.n] = '\0';
            for (size_t i = 0; i < proto.n; i++)
                if (h->alpn[i] < 0x21 || h->alpn[i] > 0x7e)
                    h->alpn[i] = '?';
        }
        first = false;
    }
    h->has_alpn = true;
    return 0;
}

static int parse_extensions(struct rd *r, struct relay_hello *h)
{
    uint16_t total;
    struct rd exts;
    bool seen_sni = false, seen_alpn = false;

    if (r->n == 0)
        return 0;                           /* no extensions block at all */
    if (!rd_u16(r, &total) || total != r->n || !rd_sub(r, total, &exts))
        return -EBADMSG;
    while (exts.n > 0) {
        uint16_t type, elen;
        struct rd ext;
        if (!rd_u16(&exts, &type) || !rd_u16(&exts, &elen) || !rd_sub(&exts, elen, &ext))
            return -EBADMSG;
        int k = 0;
        if (type == EXT_SERVER_NAME) {
            if (seen_sni)
                return -EBADMSG;
            seen_sni = true;
            k = parse_server_name(ext, h);
        } else if (type == EXT_ALPN) {
            if (seen_alpn)
                return -EBADMSG;
            seen_alpn = true;
            k = parse_alpn(ext, h);
        }
        if (k < 0)
            return k;
    }
    return 0;
}

static int parse_client_hello(const uint8_t *body, size_t n, struct relay_hello *h)
{
    struct rd r = { body, n };
    uint8_t maj, min, sidlen, complen;
    uint16_t cslen;

    if (!rd_u8(&r, &maj) || !rd_u8(&r, &min) || maj != 3)
        return -EBADMSG;
    if (!rd_skip(&r, 32) || !rd_u8(&r, &sidlen) || sidlen > 32 || !rd_skip(&r, sidlen))
        return -EBADMSG;
    if (!rd_u16(&r, &cslen) || cslen < 2 || (cslen & 1) || !rd_skip(&r, cslen))
        return -EBADMSG;
    if (!rd_u8(&r, &complen) || complen < 1 || !rd_skip(&r, complen))
        return -EBADMSG;
    return parse_extensions(&r, h);
}

ssize_t relay_sni_parse(const uint8_t *buf, size_t len, uint8_t *scratch, size_t scratchlen,
                        struct relay_hello *ret)
{
    size_t pos = 0, have = 0, need = 0;   /* need: 4 + body length, once known */
    unsigned records = 0;

    if (scratchlen < RELAY_HELLO_MAX + 4)
        return -EINVAL;
    for (;;) {
        if (len - pos < 5) {
            /* Reject early what cannot become a handshake record. */
            if (len > pos && buf[pos] != TLS_HANDSHAKE)
                return -EBADMSG;
            if (len - pos > 1 && buf[pos + 1] != 3)
                return -EBADMSG;
            return -EAGAIN;
        }
        const uint8_t *rh = buf + pos;
        size_t rlen = (size_t) rh[3] << 8 | rh[4];
        if (rh[0] != TLS_HANDSHAKE || rh[1] != 3 || rlen == 0 || rlen > TLS_RECORD_MAX)
            return -EBADMSG;
        records++;
        size_t avail = AL_MIN(rlen, len - pos - 5);
        size_t take = avail;
        if (need && take > need - have)
            take = need - have;                /* bytes after the hello in its last record */
        if (have + take > scratchlen)
            return -EMSGSIZE;
        memcpy(scratch + have, rh + 5, take);
        have += take;
        if (!need && have >= 4) {
            if (scratch[0] != TLS_CLIENT_HELLO)
                return -EBADMSG;
            size_t body = (size_t) scratch[1] << 16 | (size_t) scratch[2] << 8 | scratch[3];
            if (body > RELAY_HELLO_MAX)
                return -EMSGSIZE;
            if (body < 38)
                return -EBADMSG;
            need = 4 + body;
            if (have > need)
                have = need;
        }
        if (avail < rlen)
            return -EAGAIN;                    /* this record is not complete yet */
        pos += 5 + rlen;
        if (need && have >= need)
            break;
    }
    struct relay_hello h = { .records = records };
    int r = parse_client_hello(scratch + 4, need - 4, &h);
    if (r < 0)
        return r;
    *ret = h;
    return (ssize_t) pos;
}
