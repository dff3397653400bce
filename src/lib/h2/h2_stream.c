/* SPDX-License-Identifier: Apache-2.0 */
/* CONNECT streams of an al_h2 connection: opening and answering, the
 * per-stream send queue (allocated on first write) behind nghttp2's data
 * provider, half-close, reset and manual window credit. See h2.h. Loop
 * thread only. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>

#include "../base/util.h"
#include "h2.h"
#include "h2_internal.h"

struct al_h2_stream *h2_stream_new(struct al_h2_conn *c, void *ud)
{
    struct al_h2_stream *st = al_xcalloc(1, sizeof(*st));
    st->conn = c;
    st->ud = ud;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    c->nstreams++;
    return st;
}

void h2_stream_unlink(struct al_h2_stream *st)
{
    struct al_h2_conn *c = st->conn;
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
    c->nstreams--;
}

void h2_stream_free(struct al_h2_stream *st)
{
    if (st->out)
        evbuffer_free(st->out);
    free(st);
}

void h2_stream_unlink_free(struct al_h2_stream *st)
{
    h2_stream_unlink(st);
    h2_stream_free(st);
}

ssize_t h2_data_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct al_h2_stream *st = src->ptr;
    size_t have = st->out ? evbuffer_get_length(st->out) : 0;

    if (have == 0) {
        if (st->out_eof) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    int n = evbuffer_remove(st->out, buf, AL_MIN(have, length));
    if (n <= 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->conn->bytes_out += (uint64_t) n;
    if (st->out_eof && evbuffer_get_length(st->out) == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->above_hi && evbuffer_get_length(st->out) < AL_H2_STREAM_QUEUE_LO) {
        st->above_hi = false;
        if (st->ud && st->conn->cbs->on_drained)
            st->conn->cbs->on_drained(st, st->ud);
    }
    return n;
}

static void stream_kick(struct al_h2_stream *st)
{
    if (st->deferred && st->has_provider) {
        st->deferred = false;
        (void) nghttp2_session_resume_data(st->conn->ng, st->id);
    }
    h2_conn_schedule_flush(st->conn);
}


static void to_nv(const struct al_h2_header *h, size_t n, nghttp2_nv *nv)
{
    for (size_t i = 0; i < n; i++)
        nv[i] = (nghttp2_nv){ (uint8_t *) h[i].name, (uint8_t *) h[i].value, h[i].namelen, h[i].valuelen,
                              NGHTTP2_NV_FLAG_NONE };
}

struct al_h2_stream *al_h2_stream_open(struct al_h2_conn *c, const struct al_h2_header *hdrs, size_t n,
                                       void *ud, int *reterr)
{
    nghttp2_nv nv[AL_H2_MAX_HDRS];

    if (c->closing || c->draining) {
        *reterr = -ENOTCONN;
        return NULL;
    }
    if (n > AL_H2_MAX_HDRS) {
        *reterr = -EINVAL;
        return NULL;
    }
    if (nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) <= c->nstreams) {
        *reterr = -ENOBUFS;
        return NULL;
    }
    to_nv(hdrs, n, nv);
    struct al_h2_stream *st = h2_stream_new(c, ud);
    nghttp2_data_provider prd = { .source.ptr = st, .read_callback = h2_data_read_cb };
    int32_t id = nghttp2_submit_request(c->ng, NULL, nv, n, &prd, st);
    if (id < 0) {
        h2_stream_unlink_free(st);
        *reterr = id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? -ENOTCONN : -EINVAL;
        return NULL;
    }
    st->id = id;
    st->has_provider = true;
    h2_conn_schedule_flush(c);
    return st;
}

int al_h2_stream_respond(struct al_h2_stream *st, int status, bool end_stream)
{
    char sbuf[4];
    nghttp2_nv nv[1];

    if (status < 100 || status > 999 || st->has_provider || st->out_done)
        return -EINVAL;
    (void) snprintf(sbuf, sizeof(sbuf), "%d", status);
    nv[0] = (nghttp2_nv){ (uint8_t *) ":status", (uint8_t *) sbuf, 7, 3, NGHTTP2_NV_FLAG_NONE };
    nghttp2_data_provider prd = { .source.ptr = st, .read_callback = h2_data_read_cb };
    int r = nghttp2_submit_response(st->conn->ng, st->id, nv, 1, end_stream ? NULL : &prd);
    if (r != 0)
        return -EPROTO;
    if (end_stream)
        st->out_done = true;
    else
        st->has_provider = true;
    h2_conn_schedule_flush(st->conn);
    return 0;
}

static int stream_prep_write(struct al_h2_stream *st)
{
    if (st->out_done || st->out_eof || st->conn->closing)
        return -EPIPE;
    if (!st->out) {
        st->out = evbuffer_new();
        if (!st->out)
            return -ENOMEM;
    }
    return 0;
}

static void stream_after_write(struct al_h2_stream *st)
{
    if (evbuffer_get_length(st->out) >= AL_H2_STREAM_QUEUE_HI)
        st->above_hi = true;
    stream_kick(st);
}

int al_h2_stream_write(struct al_h2_stream *st, const void *data, size_t len)
{
    int r = stream_prep_write(st);
    if (r < 0)
        return r;
    if (evbuffer_add(st->out, data, len) < 0)
        return -ENOMEM;
    stream_after_write(st);
    return 0;
}

int al_h2_stream_write_evbuffer(struct al_h2_stream *st, void *evbuffer)
{
    int r = stream_prep_write(st);
    if (r < 0)
        return r;
    if (evbuffer_add_buffer(st->out, evbuffer) < 0)
        return -ENOMEM;
    stream_after_write(st);
    return 0;
}

size_t al_h2_stream_queued(const struct al_h2_stream *st)
{
    return st->out ? evbuffer_get_length(st->out) : 0;
}

void al_h2_stream_end(struct al_h2_stream *st)
{
    if (st->out_eof || st->out_done)
        return;
    st->out_eof = true;
    stream_kick(st);
}

void al_h2_stream_reset(struct al_h2_stream *st, uint32_t code)
{
    if (st->out_done && st->out_eof)
        return;
    st->out_done = true;
    st->out_eof = true;
    (void) nghttp2_submit_rst_stream(st->conn->ng, NGHTTP2_FLAG_NONE, st->id, code);
    h2_conn_schedule_flush(st->conn);
}

void al_h2_stream_consume(struct al_h2_stream *st, size_t n)
{
    n = AL_MIN(n, st->unconsumed);
    if (n == 0)
        return;
    st->unconsumed -= n;
    (void) nghttp2_session_consume(st->conn->ng, st->id, n);
    h2_conn_schedule_flush(st->conn);
}

void al_h2_stream_set_ud(struct al_h2_stream *st, void *ud)
{
    st->ud = ud;
    if (!ud && st->unconsumed) {
        /* Detached: nobody will credit what is outstanding. */
        (void) nghttp2_session_consume(st->conn->ng, st->id, st->unconsumed);
        st->unconsumed = 0;
        h2_conn_schedule_flush(st->conn);
    }
}

int32_t al_h2_stream_id(const struct al_h2_stream *st) { return st->id; }
struct al_h2_conn *al_h2_stream_conn(const struct al_h2_stream *st) { return st->conn; }
