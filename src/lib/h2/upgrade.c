/* SPDX-License-Identifier: Apache-2.0 */
/* Upgrade head parsers; see upgrade.h. Lines end in CRLF; no folding; at
 * most AL_UPGRADE_HEAD_MAX bytes and 64 header lines. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "upgrade.h"

#define MAX_LINES 64

struct line {
    const char *p;
    size_t n;
};

/* Finds the head end; returns its length or -EAGAIN / -EMSGSIZE. */
static ssize_t head_len(const char *buf, size_t len)
{
    size_t lim = len < AL_UPGRADE_HEAD_MAX ? len : AL_UPGRADE_HEAD_MAX;
    for (size_t i = 3; i < lim; i++)
        if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n')
            return (ssize_t) i + 1;
    return len >= AL_UPGRADE_HEAD_MAX ? -EMSGSIZE : -EAGAIN;
}

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Splits "Name: value" (OWS trimmed); value bytes must be visible ASCII or
 * SP/HT. Returns false when malformed. */
static bool split_header(struct line l, struct line *name, struct line *value)
{
    const char *colon = memchr(l.p, ':', l.n);
    if (!colon || colon == l.p)
        return false;
    *name = (struct line){ l.p, (size_t) (colon - l.p) };
    for (size_t i = 0; i < name->n; i++)
        if (!is_tchar(name->p[i]))
            return false;
    const char *v = colon + 1, *e = l.p + l.n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    for (const char *q = v; q < e; q++)
        if ((unsigned char) *q < 0x20 && *q != '\t')
            return false;
        else if ((unsigned char) *q == 0x7f)
            return false;
    *value = (struct line){ v, (size_t) (e - v) };
    return true;
}

/* Cuts the head (without its final CRLF CRLF) into lines. */
static int cut_lines(const char *buf, size_t hlen, struct line *lines, size_t *nlines)
{
    size_t n = 0, start = 0, end = hlen - 2;

    for (size_t i = 0; i < end; i++) {
        if (buf[i] == '\r') {
            if (i + 1 >= hlen || buf[i + 1] != '\n')
                return -EBADMSG;
            if (n == MAX_LINES)
                return -EBADMSG;
            lines[n++] = (struct line){ buf + start, i - start };
            start = i + 2;
            i++;
        } else if (buf[i] == '\n' || buf[i] == '\0') {
            return -EBADMSG;
        }
    }
    if (n == 0 || lines[0].n == 0)
        return -EBADMSG;
    for (size_t i = 1; i < n; i++)
        if (lines[i].n == 0 || lines[i].p[0] == ' ' || lines[i].p[0] == '\t')
            return -EBADMSG;   /* an empty line inside, or obs-fold */
    *nlines = n;
    return 0;
}

static bool line_eq(struct line l, const char *s)
{
    return l.n == strlen(s) && memcmp(l.p, s, l.n) == 0;
}

static bool line_ieq(struct line l, const char *s)
{
    return l.n == strlen(s) && strncasecmp(l.p, s, l.n) == 0;
}

static bool copy_field(struct line v, char *out, size_t cap, bool *seen)
{
    if (*seen || v.n == 0 || v.n >= cap)
        return false;
    *seen = true;
    memcpy(out, v.p, v.n);
    out[v.n] = '\0';
    return true;
}

/* A comma-separated list (Connection) containing token, case-insensitive. */
static bool list_has(struct line v, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < v.n) {
        while (i < v.n && (v.p[i] == ' ' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.n && v.p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && v.p[e - 1] == ' ')
            e--;
        if (e - s == tl && strncasecmp(v.p + s, token, tl) == 0)
            return true;
    }
    return false;
}

static bool parse_small_int(struct line v, long max, long *ret)
{
    long x = 0;
    if (v.n == 0 || v.n > 9)
        return false;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        x = x * 10 + (v.p[i] - '0');
    }
    if (x > max)
        return false;
    *ret = x;
    return true;
}

static bool is_id_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

bool al_is_dns_name(const char *s, size_t n)
{
    if (n == 0 || n > AL_HOSTNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!ok || (c == '.' && (i == 0 || i == n - 1 || s[i - 1] == '.')))
            return false;
    }
    return true;
}

static int req_header(struct line name, struct line v, struct al_upgrade_req *q, bool *seen, bool *up, bool *conn)
{
    if (line_ieq(name, "authorization")) {
        if (seen[0] || v.n < 8 || strncasecmp(v.p, "Bearer ", 7) != 0)
            return -EBADMSG;
        struct line t = { v.p + 7, v.n - 7 };
        for (size_t i = 0; i < t.n; i++)
            if (t.p[i] <= ' ' || t.p[i] > '~')
                return -EBADMSG;
        return copy_field(t, q->token, sizeof(q->token), &seen[0]) ? 0 : -EBADMSG;
    }
    if (line_ieq(name, "airlock-connector-id")) {
        if (!is_id_chars(v.p, v.n))
            return -EBADMSG;
        return copy_field(v, q->connector_id, sizeof(q->connector_id), &seen[1]) ? 0 : -EBADMSG;
    }
    if (line_ieq(name, "airlock-connection-slot")) {
        long s;
        if (seen[2] || !parse_small_int(v, 63, &s))
            return -EBADMSG;
        seen[2] = true;
        q->slot = (int) s;
        return 0;
    }
    if (line_ieq(name, "host"))
        return copy_field(v, q->host, sizeof(q->host), &seen[3]) ? 0 : -EBADMSG;
    if (line_ieq(name, "upgrade")) {
        if (*up || !line_ieq(v, AL_UPGRADE_PROTO))
            return -EBADMSG;
        *up = true;
        return 0;
    }
    if (line_ieq(name, "connection") && list_has(v, "upgrade"))
        *conn = true;
    return 0;
}

ssize_t al_upgrade_parse_request(const char *buf, size_t len, struct al_upgrade_req *ret)
{
    struct line lines[MAX_LINES];
    size_t n;
    ssize_t hl = head_len(buf, len);

    if (hl < 0)
        return hl;
    if (cut_lines(buf, (size_t) hl, lines, &n) < 0)
        return -EBADMSG;
    if (!line_eq(lines[0], "GET " AL_UPGRADE_PATH " HTTP/1.1"))
        return -EBADMSG;
    struct al_upgrade_req q = { .slot = -1 };
    bool seen[4] = { false }, up = false, conn = false;
    for (size_t i = 1; i < n; i++) {
        struct line name, v;
        if (!split_header(lines[i], &name, &v) || req_header(name, v, &q, seen, &up, &conn) < 0)
            return -EBADMSG;
    }
    if (!up || !conn)
        return -EBADMSG;
    *ret = q;
    return hl;
}

static int resp_header(struct line name, struct line v, struct al_upgrade_resp *p, bool *seen, bool *up)
{
    long x;

    if (line_ieq(name, "airlock-tunnel-id")) {
        if (v.n < 5 || memcmp(v.p, "tnl_", 4) != 0 || !is_id_chars(v.p, v.n))
            return -EBADMSG;
        return copy_field(v, p->tunnel_id, sizeof(p->tunnel_id), &seen[0]) ? 0 : -EBADMSG;
    }
    if (line_ieq(name, "airlock-tunnel-hostname")) {
        if (!al_is_dns_name(v.p, v.n))
            return -EBADMSG;
        return copy_field(v, p->hostname, sizeof(p->hostname), &seen[1]) ? 0 : -EBADMSG;
    }
    if (line_ieq(name, "retry-after")) {
        if (seen[2] || !parse_small_int(v, 86400, &x))
            return -EBADMSG;
        seen[2] = true;
        p->retry_after_s = x;
        return 0;
    }
    if (line_ieq(name, "content-length")) {
        if (seen[3] || !parse_small_int(v, 1 << 20, &x))
            return -EBADMSG;
        seen[3] = true;
        p->content_length = x;
        return 0;
    }
    if (line_ieq(name, "upgrade")) {
        if (*up || !line_ieq(v, AL_UPGRADE_PROTO))
            return -EBADMSG;
        *up = true;
    }
    return 0;
}

ssize_t al_upgrade_parse_response(const char *buf, size_t len, struct al_upgrade_resp *ret)
{
    struct line lines[MAX_LINES];
    size_t n;
    ssize_t hl = head_len(buf, len);
    long status;

    if (hl < 0)
        return hl;
    if (cut_lines(buf, (size_t) hl, lines, &n) < 0)
        return -EBADMSG;
    /* "HTTP/1.1 NNN reason" */
    struct line sl = lines[0];
    if (sl.n < 12 || memcmp(sl.p, "HTTP/1.1 ", 9) != 0 || (sl.n > 12 && sl.p[12] != ' '))
        return -EBADMSG;
    if (!parse_small_int((struct line){ sl.p + 9, 3 }, 999, &status) || status < 100)
        return -EBADMSG;
    struct al_upgrade_resp p = { .status = (int) status, .retry_after_s = -1, .content_length = -1 };
    bool seen[4] = { false }, up = false;
    for (size_t i = 1; i < n; i++) {
        struct line name, v;
        if (!split_header(lines[i], &name, &v) || resp_header(name, v, &p, seen, &up) < 0)
            return -EBADMSG;
    }
    if (status == 101 && (!up || !seen[0] || !seen[1]))
        return -EBADMSG;
    *ret = p;
    return hl;
}
