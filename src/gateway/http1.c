/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP/1.1 observer (stream_internal.h): it reads a copy of each
 * direction of a proxied stream and frames requests and responses (heads,
 * Content-Length and chunked bodies, SSE events, keep-alive and pipelined
 * sequences, 1xx, HEAD/204/304). It never holds up forwarding: it is fed
 * after the bytes have been passed on. On anything it does not understand
 * it gives up for the rest of the stream. Pure; fuzzed by fuzz_http1.c. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "stream_internal.h"

enum h1_state {
    H1_HEAD,          /* collecting the head up to the blank line */
    H1_BODY_LEN,      /* Content-Length bytes left */
    H1_CHUNK_SIZE,    /* reading a chunk-size line */
    H1_CHUNK_DATA,
    H1_CHUNK_CRLF,    /* the CRLF after chunk data */
    H1_TRAILERS,      /* trailer lines up to the blank one */
    H1_BODY_EOF,      /* body until the connection closes */
    H1_CLOSED,
};

struct h1_dir {
    enum h1_state state;
    struct al_buf head;        /* the head being collected (heap, only while it is) */
    int eoh;                   /* 1 after "\n", 2 after "\n\r": a "\n" now ends the head */
    uint64_t left;             /* body or chunk bytes left */
    char line[64];             /* chunk-size and trailer lines */
    size_t line_len;
    size_t trailer_bytes;
    uint64_t msg_bytes;
    bool sse;
};

struct h1_sse {
    struct al_buf line, data;
    char event[64];
    bool cr, truncated, started;
};

struct gw_h1 {
    const struct gw_h1_cb *cb;
    void *arg;
    struct h1_dir d[2];
    struct h1_sse sse;
    /* Methods of requests whose responses have not started: 'H' HEAD,
     * 'C' CONNECT, 'G' anything else. */
    char pending[GW_H1_PIPELINE_MAX];
    size_t npending;
    const char *failure;
};

struct gw_h1 *gw_h1_new(const struct gw_h1_cb *cb, void *arg)
{
    struct gw_h1 *h = al_xcalloc(1, sizeof(*h));
    h->cb = cb;
    h->arg = arg;
    h->d[0].head.max = h->d[1].head.max = GW_H1_HEAD_MAX;
    h->sse.line.max = GW_H1_SSE_EVENT_MAX;
    h->sse.data.max = GW_H1_SSE_EVENT_MAX;
    return h;
}

struct gw_h1 *gw_h1_free(struct gw_h1 *h)
{
    if (h) {
        al_buf_clear(&h->d[0].head);
        al_buf_clear(&h->d[1].head);
        al_buf_clear(&h->sse.line);
        al_buf_clear(&h->sse.data);
        free(h);
    }
    return NULL;
}

const char *gw_h1_failure(const struct gw_h1 *h) { return h->failure; }
bool gw_h1_sse(const struct gw_h1 *h) { return h->d[1].sse; }
uint64_t gw_h1_msg_bytes(const struct gw_h1 *h, int dir) { return h->d[dir].msg_bytes; }

static int fail(struct gw_h1 *h, const char *why)
{
    if (!h->failure)
        h->failure = why;
    return -EBADMSG;
}

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether a comma-separated header value has token as its last element. */
static bool last_token_is(const char *v, const char *token)
{
    const char *last = strrchr(v, ',');
    last = last ? last + 1 : v;
    while (*last == ' ' || *last == '\t')
        last++;
    size_t n = strlen(token);
    if (strncasecmp(last, token, n) != 0)
        return false;
    for (last += n; *last; last++)
        if (*last != ' ' && *last != '\t')
            return false;
    return true;
}

static int parse_u64(const char *s, uint64_t *ret)
{
    uint64_t v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t) (*s - '0');
    }
    *ret = v;
    return 0;
}

/* Splits the head in place into lines and header fields. */
static int split_head(struct gw_h1 *h, struct h1_dir *d, char **first, struct gw_h1_header *hdr, size_t *nhdr)
{
    char *p = d->head.data, *end = d->head.data + d->head.len;
    size_t n = 0;

    *first = NULL;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t) (end - p));
        if (!nl)
            return fail(h, "head without line end");
        char *le = nl;
        if (le > p && le[-1] == '\r')
            le--;
        *le = '\0';
        if (!*first) {
            *first = p;
        } else if (*p) {
            if (*p == ' ' || *p == '\t')
                return fail(h, "obsolete line folding");
            char *colon = strchr(p, ':');
            if (!colon || colon == p)
                return fail(h, "header without a name");
            for (char *q = p; q < colon; q++)
                if (!is_tchar(*q))
                    return fail(h, "bad header name");
            if (n >= GW_H1_HEADERS_MAX)
                return fail(h, "too many headers");
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            char *ve = v + strlen(v);
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                *--ve = '\0';
            for (char *q = v; *q; q++)
                if ((unsigned char) *q < 0x20 && *q != '\t')
                    return fail(h, "control character in a header");
            hdr[n].name = p;
            hdr[n].value = v;
            n++;
        }
        p = nl + 1;
    }
    if (!*first)
        return fail(h, "empty head");
    *nhdr = n;
    return 0;
}

/* Body framing from the headers: 0 none, 1 length, 2 chunked, 3 until close. */
static int framing(struct gw_h1 *h, const struct gw_h1_header *hdr, size_t n, uint64_t *len)
{
    bool have_len = false, chunked = false, te = false;

    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(hdr[i].name, "transfer-encoding") == 0) {
            te = true;
            chunked = last_token_is(hdr[i].value, "chunked");
        } else if (strcasecmp(hdr[i].name, "content-length") == 0) {
            uint64_t v;
            if (parse_u64(hdr[i].value, &v) < 0 || (have_len && v != *len))
                return fail(h, "bad Content-Length");
            have_len = true;
            *len = v;
        }
    }
    if (te)
        return chunked ? 2 : 3;
    return have_len ? 1 : 0;
}

static const char *find_header(const struct gw_h1_header *hdr, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(hdr[i].name, name) == 0)
            return hdr[i].value;
    return NULL;
}

static int message_end(struct gw_h1 *h, int dir)
{
    struct h1_dir *d = &h->d[dir];
    /* An unterminated last SSE event is not dispatched (SSE rules). */
    d->state = H1_HEAD;
    d->sse = false;
    al_buf_clear(&h->sse.line);
    al_buf_clear(&h->sse.data);
    h->sse.event[0] = '\0';
    h->sse.cr = h->sse.truncated = h->sse.started = false;
    if (h->cb->end)
        h->cb->end(h->arg, dir);
    d->msg_bytes = 0;
    return 0;
}

static int request_head(struct gw_h1 *h, char *first, struct gw_h1_header *hdr, size_t n)
{
    struct h1_dir *d = &h->d[0];
    char *sp1 = strchr(first, ' '), *sp2;
    uint64_t len = 0;

    if (!sp1)
        return fail(h, "bad request line");
    *sp1 = '\0';
    sp2 = strchr(sp1 + 1, ' ');
    if (!sp2 || sp1 == first)
        return fail(h, "bad request line");
    *sp2 = '\0';
    for (char *q = first; *q; q++)
        if (!is_tchar(*q))
            return fail(h, "bad method");
    if (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0)
        return fail(h, "not HTTP/1.x");
    if (!sp1[1] || strchr(sp1 + 1, ' '))
        return fail(h, "bad request target");
    if (h->npending >= GW_H1_PIPELINE_MAX)
        return fail(h, "too many pipelined requests");
    int f = framing(h, hdr, n, &len);
    if (f < 0)
        return f;
    if (f == 3)
        return fail(h, "request with a transfer coding other than chunked");
    bool upgrade = find_header(hdr, n, "upgrade") != NULL;
    h->pending[h->npending++] = strcmp(first, "HEAD") == 0 ? 'H' : strcmp(first, "CONNECT") == 0 || upgrade ? 'C' : 'G';
    struct gw_h1_head head = { .method = first, .target = sp1 + 1, .h = hdr, .n = n };
    if (h->cb->head)
        h->cb->head(h->arg, 0, &head);
    if (f == 2) {
        d->state = H1_CHUNK_SIZE;
        d->line_len = 0;
    } else if (f == 1 && len > 0) {
        d->state = H1_BODY_LEN;
        d->left = len;
    } else {
        return message_end(h, 0);
    }
    return 0;
}

static int response_head(struct gw_h1 *h, char *first, struct gw_h1_header *hdr, size_t n)
{
    struct h1_dir *d = &h->d[1];
    uint64_t len = 0;
    int status = 0;

    if (strncmp(first, "HTTP/1.1 ", 9) != 0 && strncmp(first, "HTTP/1.0 ", 9) != 0)
        return fail(h, "bad status line");
    for (int i = 9; i < 12; i++) {
        if (first[i] < '0' || first[i] > '9')
            return fail(h, "bad status code");
        status = status * 10 + (first[i] - '0');
    }
    if (first[12] != '\0' && first[12] != ' ')
        return fail(h, "bad status line");
    if (status < 100)
        return fail(h, "bad status code");
    if (h->npending == 0)
        return fail(h, "response without a request");
    if (status == 101)
        return fail(h, "protocol upgrade (not observed)");
    if (status < 200) {               /* interim: the request still waits */
        d->msg_bytes = 0;
        return 0;
    }
    char kind = h->pending[0];
    memmove(h->pending, h->pending + 1, --h->npending);
    if (kind == 'C')
        return fail(h, "CONNECT or upgrade (not observed)");
    int f = framing(h, hdr, n, &len);
    if (f < 0)
        return f;
    const char *ct = find_header(hdr, n, "content-type");
    d->sse = ct && strncasecmp(ct, "text/event-stream", 17) == 0;
    struct gw_h1_head head = { .status = status, .h = hdr, .n = n };
    if (h->cb->head)
        h->cb->head(h->arg, 1, &head);
    if (kind == 'H' || status == 204 || status == 304 || (f == 1 && len == 0))
        return message_end(h, 1);
    if (f == 2) {
        d->state = H1_CHUNK_SIZE;
        d->line_len = 0;
    } else if (f == 1) {
        d->state = H1_BODY_LEN;
        d->left = len;
    } else {
        d->state = H1_BODY_EOF;
    }
    return 0;
}

static int head_done(struct gw_h1 *h, int dir)
{
    struct h1_dir *d = &h->d[dir];
    struct gw_h1_header hdr[GW_H1_HEADERS_MAX];
    size_t n = 0;
    char *first;

    int r;

    if (memchr(d->head.data, '\0', d->head.len))
        r = fail(h, "NUL in a head");
    else if ((r = split_head(h, d, &first, hdr, &n)) == 0)
        r = dir == 0 ? request_head(h, first, hdr, n) : response_head(h, first, hdr, n);
    al_buf_clear(&d->head);   /* the callbacks are done with the fields */
    return r;
}

/* ---- SSE: lines end with CRLF, LF or CR; events end with a blank line. */

static void sse_field(struct gw_h1 *h, const char *line, size_t len)
{
    struct h1_sse *e = &h->sse;
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t) (colon - line) : len;
    const char *v = colon ? colon + 1 : line + len;
    size_t vlen = (size_t) (line + len - v);

    if (vlen > 0 && *v == ' ')
        v++, vlen--;
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
        if ((e->started && al_buf_append(&e->data, "\n", 1) < 0) || al_buf_append(&e->data, v, vlen) < 0)
            e->truncated = true;
        e->started = true;
    } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = AL_MIN(vlen, sizeof(e->event) - 1);
        memcpy(e->event, v, n);
        e->event[n] = '\0';
    }
}

static void sse_line(struct gw_h1 *h)
{
    struct h1_sse *e = &h->sse;
    if (e->line.len == 0) {
        if (e->started && h->cb->sse_event)
            h->cb->sse_event(h->arg, e->event[0] ? e->event : "message", e->data.data ? e->data.data : "",
                             e->data.len, e->truncated);
        al_buf_clear(&e->data);
        e->event[0] = '\0';
        e->started = e->truncated = false;
    } else if (e->line.data[0] != ':') {
        sse_field(h, e->line.data, e->line.len);
    }
    al_buf_clear(&e->line);
}

static void sse_feed(struct gw_h1 *h, const char *p, size_t len)
{
    struct h1_sse *e = &h->sse;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (e->cr && c == '\n') {
            e->cr = false;
            continue;
        }
        e->cr = false;
        if (c == '\r' || c == '\n') {
            e->cr = c == '\r';
            sse_line(h);
            continue;
        }
        size_t run = 1;
        while (i + run < len && p[i + run] != '\r' && p[i + run] != '\n')
            run++;
        if (al_buf_append(&e->line, p + i, run) < 0)
            e->truncated = true;
        i += run - 1;
    }
}

static void body(struct gw_h1 *h, int dir, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (h->cb->body)
        h->cb->body(h->arg, dir, p, n);
    if (dir == 1 && h->d[1].sse)
        sse_feed(h, p, n);
}

/* A chunk-size line: hex digits, optional extensions. */
static int chunk_size(struct gw_h1 *h, struct h1_dir *d)
{
    uint64_t v = 0;
    size_t i = 0;
    d->line[d->line_len] = '\0';
    for (; i < d->line_len; i++) {
        char c = d->line[i];
        int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (x < 0)
            break;
        if (v > (UINT64_MAX >> 4))
            return fail(h, "chunk size overflow");
        v = v * 16 + (uint64_t) x;
    }
    if (i == 0 || (i < d->line_len && d->line[i] != ';' && d->line[i] != ' ' && d->line[i] != '\t'))
        return fail(h, "bad chunk size");
    d->left = v;
    d->line_len = 0;
    if (v == 0) {
        d->state = H1_TRAILERS;
        d->trailer_bytes = 0;
    } else {
        d->state = H1_CHUNK_DATA;
    }
    return 0;
}

/* Consumes bytes of dir from p; returns how many, or -EBADMSG. */
static ssize_t step(struct gw_h1 *h, int dir, const char *p, size_t len)
{
    struct h1_dir *d = &h->d[dir];

    switch (d->state) {
    case H1_HEAD: {
        size_t i = 0;
        /* Blank lines before a request line are allowed (RFC 9112 2.2). */
        if (d->head.len == 0)
            while (i < len && (p[i] == '\r' || p[i] == '\n'))
                i++;
        size_t start = i;
        bool done = false;
        for (; i < len && !done; i++) {
            if (p[i] == '\n') {
                done = d->eoh > 0;
                d->eoh = 1;
            } else {
                d->eoh = p[i] == '\r' && d->eoh == 1 ? 2 : 0;
            }
        }
        if (i - start > GW_H1_HEAD_MAX - d->head.len || al_buf_append(&d->head, p + start, i - start) < 0)
            return fail(h, "head too large");
        d->msg_bytes += i;
        if (done) {
            d->eoh = 0;
            int r = head_done(h, dir);
            if (r < 0)
                return r;
        }
        return (ssize_t) i;
    }
    case H1_BODY_LEN: {
        size_t n = (size_t) AL_MIN((uint64_t) len, d->left);
        d->msg_bytes += n;
        body(h, dir, p, n);
        d->left -= n;
        if (d->left == 0)
            message_end(h, dir);
        return (ssize_t) n;
    }
    case H1_CHUNK_SIZE:
    case H1_TRAILERS:
    case H1_CHUNK_CRLF:
        for (size_t i = 0; i < len; i++) {
            d->msg_bytes++;
            if (p[i] != '\n') {
                if (d->state == H1_CHUNK_CRLF && p[i] != '\r')
                    return fail(h, "chunk data without CRLF");
                if (d->line_len >= sizeof(d->line) - 1) {
                    if (d->state != H1_TRAILERS)
                        return fail(h, "chunk line too long");
                } else {
                    d->line[d->line_len++] = p[i];
                }
                if (d->state == H1_TRAILERS && ++d->trailer_bytes > GW_H1_HEAD_MAX)
                    return fail(h, "trailers too large");
                continue;
            }
            if (d->line_len > 0 && d->line[d->line_len - 1] == '\r')
                d->line_len--;
            if (d->state == H1_CHUNK_CRLF) {
                d->state = H1_CHUNK_SIZE;
                d->line_len = 0;
            } else if (d->state == H1_CHUNK_SIZE) {
                int r = chunk_size(h, d);
                if (r < 0)
                    return r;
            } else if (d->line_len == 0) {
                message_end(h, dir);
            } else {
                d->line_len = 0;
            }
            return (ssize_t) (i + 1);
        }
        return (ssize_t) len;
    case H1_CHUNK_DATA: {
        size_t n = (size_t) AL_MIN((uint64_t) len, d->left);
        d->msg_bytes += n;
        body(h, dir, p, n);
        d->left -= n;
        if (d->left == 0) {
            d->state = H1_CHUNK_CRLF;
            d->line_len = 0;
        }
        return (ssize_t) n;
    }
    case H1_BODY_EOF:
        d->msg_bytes += len;
        body(h, dir, p, len);
        return (ssize_t) len;
    case H1_CLOSED:
        return fail(h, "bytes after the end");
    }
    return fail(h, "bad state");
}

int gw_h1_feed(struct gw_h1 *h, int dir, const void *data, size_t len)
{
    const char *p = data;

    if (h->failure)
        return -EBADMSG;
    while (len > 0) {
        ssize_t n = step(h, dir, p, len);
        if (n < 0)
            return -EBADMSG;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

void gw_h1_eof(struct gw_h1 *h, int dir)
{
    struct h1_dir *d = &h->d[dir];
    if (h->failure)
        return;
    if (d->state == H1_BODY_EOF)
        message_end(h, dir);
    d->state = H1_CLOSED;
}
