/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/2 glue, the connection: an nghttp2 session driven by a bufferevent
 * (mem_recv on read, mem_send while the output is below AL_H2_OUT_HI), the
 * receive callbacks, PING liveness, GOAWAY drain and teardown. The stream
 * API is in h2_stream.c. See h2.h for the contract. Loop thread only. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "../base/log.h"
#include "../base/util.h"
#include "h2.h"
#include "h2_internal.h"

static void conn_fail(struct al_h2_conn *c, int err);

void h2_conn_schedule_flush(struct al_h2_conn *c)
{
    if (!c->closing)
        event_active(c->flush_ev, EV_TIMEOUT, 0);
}

static bool conn_finished(struct al_h2_conn *c)
{
    if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng))
        return true;
    /* After GOAWAY either way, the connection is done when no stream is left. */
    return c->draining && c->nstreams == 0 && !nghttp2_session_want_write(c->ng) && c->goaway_ev == NULL;
}

static void conn_flush(struct al_h2_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    while (!c->closing && evbuffer_get_length(out) < AL_H2_OUT_HI) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->ng, &data);
        if (n < 0) {
            conn_fail(c, -EPROTO);
            return;
        }
        if (n == 0)
            break;
        if (evbuffer_add(out, data, (size_t) n) < 0) {
            conn_fail(c, -ENOMEM);
            return;
        }
    }
    if (!c->closing && conn_finished(c) && evbuffer_get_length(out) == 0)
        conn_fail(c, 0);
}

static void on_flush_ev(evutil_socket_t fd, short what, void *arg)
{
    conn_flush(arg);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct al_h2_conn *c = user;

    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    c->nhdrs = 0;
    c->scratch_len = 0;
    if (c->role == AL_H2_SERVER && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        struct al_h2_stream *st = h2_stream_new(c, NULL);
        st->id = f->hd.stream_id;
        nghttp2_session_set_stream_user_data(ng, st->id, st);
    }
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    struct al_h2_conn *c = user;
    struct al_h2_stream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);

    if (!st)
        return 0;
    if (c->role == AL_H2_CLIENT) {
        if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
            int64_t v = 0;
            char tmp[8];
            if (valuelen < sizeof(tmp)) {
                memcpy(tmp, value, valuelen);
                tmp[valuelen] = '\0';
                if (al_parse_i64(tmp, 100, 999, &v) == 0)
                    st->status = (int) v;
            }
        }
        return 0;
    }
    if (c->nhdrs == AL_H2_MAX_HDRS || c->scratch_len + namelen + valuelen + 2 > sizeof(c->scratch))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* resets the stream */
    struct al_h2_header *h = &c->hdrs[c->nhdrs++];
    char *p = c->scratch + c->scratch_len;
    memcpy(p, name, namelen);
    p[namelen] = '\0';
    memcpy(p + namelen + 1, value, valuelen);
    p[namelen + 1 + valuelen] = '\0';
    *h = (struct al_h2_header){ .name = p, .namelen = namelen, .value = p + namelen + 1,
                                .valuelen = valuelen };
    c->scratch_len += namelen + valuelen + 2;
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct al_h2_conn *c = user;
    struct al_h2_stream *st = f->hd.stream_id ? nghttp2_session_get_stream_user_data(ng, f->hd.stream_id)
                                              : NULL;

    c->last_recv = al_mono_us();
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (!st)
            break;
        if (c->role == AL_H2_SERVER && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            if (c->cbs->on_request)
                c->cbs->on_request(st, c->hdrs, c->nhdrs, c->ud);
        } else if (c->role == AL_H2_CLIENT && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
            if (st->ud && c->cbs->on_response)
                c->cbs->on_response(st, st->status, st->ud);
        }
        /* on_request may have reset the stream; it is still ours until on_close. */
        if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && st->ud && c->cbs->on_eof)
            c->cbs->on_eof(st, st->ud);
        break;
    case NGHTTP2_DATA:
        if (st && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && st->ud && c->cbs->on_eof)
            c->cbs->on_eof(st, st->ud);
        break;
    case NGHTTP2_PING:
        if ((f->hd.flags & NGHTTP2_FLAG_ACK) && c->ping_sent) {
            c->rtt = al_mono_us() - c->ping_sent;
            c->ping_sent = 0;
            if (c->cbs->on_ping_rtt)
                c->cbs->on_ping_rtt(c, c->rtt, c->ud);
        }
        break;
    case NGHTTP2_GOAWAY:
        if (!c->draining) {
            c->draining = true;
            if (c->cbs->on_goaway)
                c->cbs->on_goaway(c, c->ud);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                         void *user)
{
    struct al_h2_conn *c = user;
    struct al_h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);

    c->last_recv = al_mono_us();
    c->bytes_in += len;
    if (!st || !st->ud || !c->cbs->on_data) {
        (void) nghttp2_session_consume(ng, id, len);
        return 0;
    }
    st->unconsumed += len;
    c->cbs->on_data(st, data, len, st->ud);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    struct al_h2_conn *c = user;
    struct al_h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);

    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    /* Bytes the owner never credited still count against the connection. */
    if (st->unconsumed)
        (void) nghttp2_session_consume_connection(ng, st->unconsumed);
    if (st->ud && c->cbs->on_close)
        c->cbs->on_close(st, code, st->ud);
    h2_stream_unlink_free(st);
    h2_conn_schedule_flush(c);
    return 0;
}

/* ---- connection I/O ---- */

static void on_read(struct bufferevent *bev, void *arg)
{
    struct al_h2_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (!c->closing && evbuffer_get_length(in) > 0) {
        size_t n = evbuffer_get_contiguous_space(in);
        const uint8_t *p = evbuffer_pullup(in, (ssize_t) n);
        ssize_t r = nghttp2_session_mem_recv(c->ng, p, n);
        if (r < 0) {
            al_log(AL_DEBUG, "h2.recv_error", AL_STR("err", nghttp2_strerror((int) r)));
            conn_fail(c, -EPROTO);
            return;
        }
        evbuffer_drain(in, (size_t) r);
    }
    conn_flush(c);
    if (!c->closing && c->after_read)
        c->after_read(c->bev);
}

void al_h2_conn_set_after_read(struct al_h2_conn *c, void (*fn)(struct bufferevent *bev))
{
    c->after_read = fn;
    if (fn && !c->closing)
        fn(c->bev);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    conn_flush(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct al_h2_conn *c = arg;

    if (what & BEV_EVENT_EOF)
        conn_fail(c, c->draining && c->nstreams == 0 ? 0 : -ECONNRESET);
    else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_fail(c, (what & BEV_EVENT_TIMEOUT) ? -ETIMEDOUT : -ECONNRESET);
}

/* on_close for every open stream (CANCEL), each freed after its callback.
 * The callbacks never free streams themselves: only this module does. */
static void close_all_streams(struct al_h2_conn *c)
{
    struct al_h2_stream *st;

    while ((st = c->streams) != NULL) {
        c->streams = st->next;
        if (c->streams)
            c->streams->prev = NULL;
        st->next = NULL;
        c->nstreams--;
        if (c->ng)
            nghttp2_session_set_stream_user_data(c->ng, st->id, NULL);
        if (st->ud && c->cbs->on_close)
            c->cbs->on_close(st, AL_H2_CANCEL, st->ud);
        h2_stream_free(st);
    }
}

static void on_close_ev(evutil_socket_t fd, short what, void *arg)
{
    struct al_h2_conn *c = arg;

    if (c->notified)
        return;
    c->notified = true;
    close_all_streams(c);     /* streams end before the connection is reported */
    if (c->cbs->on_conn_close)
        c->cbs->on_conn_close(c, c->close_err, c->ud);
}

static void conn_fail(struct al_h2_conn *c, int err)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_err = err;
    bufferevent_disable(c->bev, EV_READ);
    event_active(c->close_ev, EV_TIMEOUT, 0);
}

static void send_ping(struct al_h2_conn *c, int64_t now)
{
    uint8_t opaque[8];
    memcpy(opaque, &now, sizeof(opaque));
    if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, opaque) == 0) {
        c->ping_sent = now;
        h2_conn_schedule_flush(c);
    }
}

/* Each liveness deadline gets an exact timer: the next PING, or the moment
 * the outstanding PING (or, without PINGs, the silence) becomes fatal. */
static void timer_arm(struct al_h2_conn *c, int64_t now)
{
    int64_t at;

    if (c->ping_interval > 0)
        at = c->ping_sent ? c->ping_sent + c->dead_after : c->next_ping;
    else if (c->dead_after > 0)
        at = c->last_recv + c->dead_after;
    else
        return;
    int64_t d = AL_MAX(at - now, 1000);
    struct timeval tv = { d / 1000000, d % 1000000 };
    evtimer_add(c->timer_ev, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct al_h2_conn *c = arg;
    int64_t now = al_mono_us();

    if (c->closing)
        return;
    if (c->ping_interval > 0) {
        if (c->ping_sent && c->last_recv >= c->ping_sent)
            c->ping_sent = 0;                 /* a frame since the PING: alive */
        if (c->ping_sent && now - c->ping_sent >= c->dead_after) {
            conn_fail(c, -ETIMEDOUT);
            return;
        }
        if (!c->ping_sent && now >= c->next_ping) {
            send_ping(c, now);
            c->next_ping = now + c->ping_interval;
        }
    } else if (c->dead_after > 0 && now - c->last_recv >= c->dead_after) {
        conn_fail(c, -ETIMEDOUT);
        return;
    }
    timer_arm(c, now);
}

static void on_goaway_ev(evutil_socket_t fd, short what, void *arg)
{
    struct al_h2_conn *c = arg;

    event_free(c->goaway_ev);
    c->goaway_ev = NULL;
    (void) nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->ng),
                                 NGHTTP2_NO_ERROR, NULL, 0);
    conn_flush(c);
}

static nghttp2_session *session_new(struct al_h2_conn *c)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_session *ng = NULL;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return NULL;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, AL_H2_MAX_STREAMS);
    nghttp2_option_set_max_outbound_ack(opt, 10000);
    int r = c->role == AL_H2_CLIENT ? nghttp2_session_client_new2(&ng, cb, c, opt)
                                    : nghttp2_session_server_new2(&ng, cb, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (r != 0)
        return NULL;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, AL_H2_STREAM_WINDOW },
        { NGHTTP2_SETTINGS_MAX_FRAME_SIZE, AL_H2_MAX_FRAME },
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, AL_H2_MAX_STREAMS },
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
    };
    /* A client must not send ENABLE_PUSH=1, a server must not send it at all. */
    size_t niv = c->role == AL_H2_CLIENT ? 4 : 3;
    if (nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, iv, niv) != 0 ||
        nghttp2_session_set_local_window_size(ng, NGHTTP2_FLAG_NONE, 0, AL_H2_CONN_WINDOW) != 0) {
        nghttp2_session_del(ng);
        return NULL;
    }
    return ng;
}

struct al_h2_conn *al_h2_conn_new(struct event_base *base, struct bufferevent *bev, enum al_h2_role role,
                                  const struct al_h2_cbs *cbs, void *ud, int64_t ping_interval_us,
                                  int64_t dead_after_us)
{
    struct al_h2_conn *c = al_xcalloc(1, sizeof(*c));

    c->base = base;
    c->bev = bev;
    c->role = role;
    c->cbs = cbs;
    c->ud = ud;
    c->rtt = -1;
    c->ping_interval = ping_interval_us;
    c->dead_after = dead_after_us;
    c->last_recv = al_mono_us();
    c->next_ping = c->last_recv + ping_interval_us;
    c->ng = session_new(c);
    c->flush_ev = event_new(base, -1, 0, on_flush_ev, c);
    c->close_ev = event_new(base, -1, 0, on_close_ev, c);
    c->timer_ev = evtimer_new(base, on_timer, c);
    if (!c->ng || !c->flush_ev || !c->close_ev || !c->timer_ev) {
        c->closing = true;
        return al_h2_conn_free(c);
    }
    timer_arm(c, c->last_recv);
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    /* libevent 2.1 moves at most 4 KiB per read callback unless a high read
     * watermark and a larger single read/write allow more: one loop pass
     * then handles up to 256 KiB each way instead of one 4 KiB slice. */
    bufferevent_setwatermark(bev, EV_READ, 0, AL_H2_IN_HI);
    bufferevent_setwatermark(bev, EV_WRITE, AL_H2_OUT_LO, 0);
    (void) bufferevent_set_max_single_read(bev, AL_H2_IO_CHUNK);
    (void) bufferevent_set_max_single_write(bev, AL_H2_IO_CHUNK);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        on_read(bev, c);
    else
        conn_flush(c);
    return c;
}

struct al_h2_conn *al_h2_conn_free(struct al_h2_conn *c)
{
    if (!c)
        return NULL;
    if (!c->notified) {
        c->notified = true;
        close_all_streams(c);
    }
    if (c->flush_ev)
        event_free(c->flush_ev);
    if (c->close_ev)
        event_free(c->close_ev);
    if (c->timer_ev)
        event_free(c->timer_ev);
    if (c->goaway_ev)
        event_free(c->goaway_ev);
    if (c->ng)
        nghttp2_session_del(c->ng);
    if (c->bev)
        bufferevent_free(c->bev);
    free(c);
    return NULL;
}

void al_h2_conn_goaway(struct al_h2_conn *c)
{
    if (c->closing || c->goaway_ev)
        return;
    if (c->role == AL_H2_SERVER && !c->draining) {
        /* GOAWAY(2^31-1) first: the client stops opening streams; the final
         * GOAWAY a second later names the last stream we took. */
        (void) nghttp2_submit_shutdown_notice(c->ng);
        c->goaway_ev = event_new(c->base, -1, 0, on_goaway_ev, c);
        struct timeval tv = { 1, 0 };
        if (c->goaway_ev)
            event_add(c->goaway_ev, &tv);
    } else {
        (void) nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->ng),
                                     NGHTTP2_NO_ERROR, NULL, 0);
    }
    c->draining = true;
    h2_conn_schedule_flush(c);
}

size_t al_h2_conn_streams(const struct al_h2_conn *c) { return c->nstreams; }
bool al_h2_conn_is_draining(const struct al_h2_conn *c) { return c->draining || c->closing; }
int64_t al_h2_conn_rtt_us(const struct al_h2_conn *c) { return c->rtt; }
uint64_t al_h2_conn_bytes_in(const struct al_h2_conn *c) { return c->bytes_in; }
uint64_t al_h2_conn_bytes_out(const struct al_h2_conn *c) { return c->bytes_out; }

void al_h2_tune_socket(int fd)
{
    int one = 1, idle = 15, intvl = 5, cnt = 3;
    unsigned int uto = 30000;

    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
}

struct event_base *al_h2_event_base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base = NULL;

    if (cfg) {
        (void) event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    return base ? base : event_base_new();
}

const char *al_h2_version(void)
{
    return nghttp2_version(0)->version_str;
}
