/* SPDX-License-Identifier: Apache-2.0 */
/* Frames of the worker <-> runner protocol (frame.h): a pure encoder and
 * incremental decoder, and two blocking fd helpers for the runner. The
 * decoder never trusts a length before checking it against the caps, and a
 * malformed frame poisons the stream: the caller must close it. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"

#define HDR 4u
/* The most a single frame can occupy on the wire. The reader buffers at
 * most two: the one in progress and the start of the next, read with it. */
#define WIRE_MAX ((size_t) HDR + AL_FRAME_MAX_JSON + AL_FRAME_MAX_PAYLOAD)
#define BUF_MAX  (2 * WIRE_MAX)
#define READ_CHUNK (64u << 10)

void al_frame_done(struct al_frame *f)
{
    json_decref(f->msg);
    free(f->payload);
    *f = (struct al_frame){ 0 };
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

int al_frame_encode(const json_t *msg, const void *payload, size_t payload_len, unsigned char **out,
                    size_t *out_len)
{
    bool has_payload = payload != NULL || payload_len > 0;
    json_t *copy = NULL;
    char *text;
    size_t n;

    if (!json_is_object(msg) || (payload == NULL && payload_len > 0))
        return -EINVAL;
    if (payload_len > AL_FRAME_MAX_PAYLOAD)
        return -EMSGSIZE;
    if (has_payload) {
        /* The length lives in the JSON; the caller's object stays as is. */
        copy = json_copy((json_t *) msg);
        if (!copy || json_object_set_new(copy, "payload", json_integer((json_int_t) payload_len)) < 0) {
            json_decref(copy);
            return -ENOMEM;
        }
    }
    text = json_dumps(copy ? copy : msg, JSON_COMPACT);
    json_decref(copy);
    if (!text)
        return -EINVAL;     /* a string that is not valid UTF-8, or no memory */
    n = strlen(text);
    if (n > AL_FRAME_MAX_JSON) {
        free(text);
        return -EMSGSIZE;
    }
    *out = al_xmalloc(HDR + n + payload_len);
    put_be32(*out, (uint32_t) n);
    memcpy(*out + HDR, text, n);
    if (payload_len)
        memcpy(*out + HDR + n, payload, payload_len);
    *out_len = HDR + n + payload_len;
    free(text);
    return 0;
}

void al_frame_reader_done(struct al_frame_reader *r)
{
    free(r->buf);
    *r = (struct al_frame_reader){ 0 };
}

int al_frame_reader_feed(struct al_frame_reader *r, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    /* The caps themselves are checked by al_frame_reader_next as soon as a
     * header or the JSON is complete, before the body is waited for, so
     * where the bytes were split never changes the answer. This bound only
     * stops a caller that feeds without taking frames. */
    if (n > BUF_MAX || r->len > BUF_MAX - n)
        return -EMSGSIZE;
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        r->buf = al_xrealloc(r->buf, AL_MIN(cap, BUF_MAX));
        r->cap = AL_MIN(cap, BUF_MAX);
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

/* The payload length the object announces: 0 when it has no "payload"
 * member, -EPROTO when the member is not an integer within the cap. */
static int64_t payload_len_of(const json_t *msg)
{
    const json_t *p = json_object_get(msg, "payload");

    if (!p)
        return 0;
    if (!json_is_integer(p) || json_integer_value(p) < 0 ||
        (uint64_t) json_integer_value(p) > AL_FRAME_MAX_PAYLOAD)
        return -EPROTO;
    return json_integer_value(p);
}

int al_frame_reader_next(struct al_frame_reader *r, struct al_frame *f)
{
    json_error_t err;
    uint32_t jlen;
    int64_t plen;
    json_t *msg;
    size_t total;

    if (r->len < HDR)
        return 0;
    jlen = get_be32(r->buf);
    if (jlen == 0 || jlen > AL_FRAME_MAX_JSON)
        return -EPROTO;
    if (r->len < HDR + jlen)
        return 0;
    /* NUL is allowed inside strings: tool output may hold it. */
    msg = json_loadb((const char *) r->buf + HDR, jlen, JSON_ALLOW_NUL, &err);
    if (!json_is_object(msg)) {
        json_decref(msg);
        return -EPROTO;
    }
    plen = payload_len_of(msg);
    if (plen < 0) {
        json_decref(msg);
        return -EPROTO;
    }
    total = HDR + jlen + (size_t) plen;
    if (r->len < total) {
        json_decref(msg);
        return 0;
    }
    *f = (struct al_frame){ .msg = msg };
    if (json_object_get(msg, "payload")) {
        f->payload = al_xmalloc(plen ? (size_t) plen : 1);
        memcpy(f->payload, r->buf + HDR + jlen, (size_t) plen);
        f->payload_len = (size_t) plen;
    }
    memmove(r->buf, r->buf + total, r->len - total);
    r->len -= total;
    return 1;
}

static int wait_fd(int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events };

    for (;;) {
        int n = poll(&p, 1, -1);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* Writes all of buf; sockets get MSG_NOSIGNAL so a gone peer is -EPIPE,
 * not a signal. A non-blocking fd is waited on with poll. */
static int write_all(int fd, const unsigned char *buf, size_t len)
{
    bool sock = true;

    while (len > 0) {
        ssize_t n = sock ? send(fd, buf, len, MSG_NOSIGNAL) : write(fd, buf, len);
        if (n < 0 && errno == ENOTSOCK && sock) {
            sock = false;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_fd(fd, POLLOUT);
            if (r < 0)
                return r;
            continue;
        }
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t) n;
    }
    return 0;
}

int al_frame_write_fd(int fd, const json_t *msg, const void *payload, size_t payload_len)
{
    _cleanup_free_ unsigned char *buf = NULL;
    size_t len = 0;
    int r = al_frame_encode(msg, payload, payload_len, &buf, &len);

    if (r < 0)
        return r;
    return write_all(fd, buf, len);
}

int al_frame_read_fd(int fd, struct al_frame_reader *r, struct al_frame *f)
{
    _cleanup_free_ unsigned char *chunk = al_xmalloc(READ_CHUNK);

    for (;;) {
        int k = al_frame_reader_next(r, f);
        if (k != 0)
            return k;
        ssize_t n = read(fd, chunk, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            k = wait_fd(fd, POLLIN);
            if (k < 0)
                return k;
            continue;
        }
        if (n < 0)
            return -errno;
        if (n == 0)
            return r->len == 0 ? 0 : -EPROTO;   /* EOF inside a frame */
        k = al_frame_reader_feed(r, chunk, (size_t) n);
        if (k < 0)
            return k;
    }
}
