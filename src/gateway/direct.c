/* SPDX-License-Identifier: Apache-2.0 */
/* The direct listener (stream.h gw_direct_listen): inner TLS straight on a
 * TCP socket, no relay. Each accepted connection is a stream whose pipe is
 * a bufferevent: reading stops while the stream holds more than
 * DIRECT_UNCONSUMED_HIGH bytes it has not consumed, and the stream is told
 * when the socket's output drains. Benchmark path D1 and local checks.
 * Loop thread only. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "stream.h"
#include "stream_internal.h"

#define DIRECT_UNCONSUMED_HIGH (1024 * 1024)
#define DIRECT_UNCONSUMED_LOW  (256 * 1024)
#define DIRECT_OUT_LOW         (64 * 1024)

struct dconn;

struct gw_direct {
    struct gw_direct *next;
    struct gw_ctx *ctx;
    struct evconnlistener *lev;
    struct event *backoff;      /* re-enables accepting after EMFILE and the like */
    struct dconn *conns;
    uint64_t next_id;
};

struct dconn {
    struct dconn *prev, *next;
    struct gw_direct *d;
    struct bufferevent *bev;
    struct gw_stream *s;        /* NULL once the stream has closed its pipe */
    struct event *reap;
    uint64_t unconsumed;
    bool read_paused, closing, dead;
};

static void dconn_reap(evutil_socket_t fd, short what, void *arg)
{
    struct dconn *c = arg;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->bev)
        bufferevent_free(c->bev);
    event_free(c->reap);
    free(c);
}

static void dconn_kill(struct dconn *c, bool rst)
{
    if (c->dead)
        return;
    c->dead = true;
    c->s = NULL;
    if (rst) {
        struct linger l = { 1, 0 };
        (void) setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->reap, EV_TIMEOUT, 0);
}

static int pipe_write(void *pipe, const void *data, size_t len)
{
    struct dconn *c = pipe;
    if (c->dead || c->closing)
        return -EPIPE;
    return bufferevent_write(c->bev, data, len) < 0 ? -ENOMEM : 0;
}

static size_t pipe_queued(void *pipe)
{
    struct dconn *c = pipe;
    return c->dead ? 0 : evbuffer_get_length(bufferevent_get_output(c->bev));
}

static void pipe_consumed(void *pipe, size_t n)
{
    struct dconn *c = pipe;
    c->unconsumed -= AL_MIN((uint64_t) n, c->unconsumed);
    if (c->read_paused && !c->dead && !c->closing && c->unconsumed < DIRECT_UNCONSUMED_LOW) {
        c->read_paused = false;
        bufferevent_enable(c->bev, EV_READ);
    }
}

static void pipe_close(void *pipe, bool abort)
{
    struct dconn *c = pipe;
    c->s = NULL;
    if (abort || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        if (!abort)
            (void) shutdown(bufferevent_getfd(c->bev), SHUT_WR);
        dconn_kill(c, abort);
        return;
    }
    c->closing = true;   /* the write callback finishes once all is sent */
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

static const struct gw_pipe_ops direct_ops = {
    .write = pipe_write,
    .queued = pipe_queued,
    .consumed = pipe_consumed,
    .close = pipe_close,
};

static void on_read(struct bufferevent *bev, void *arg)
{
    struct dconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (c->s && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        c->unconsumed += v.iov_len;
        gw_stream_input(c->s, v.iov_base, v.iov_len);
        evbuffer_drain(in, v.iov_len);
    }
    if (!c->s) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (c->unconsumed > DIRECT_UNCONSUMED_HIGH && !c->read_paused) {
        c->read_paused = true;
        bufferevent_disable(bev, EV_READ);
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct dconn *c = arg;
    if (c->closing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            (void) shutdown(bufferevent_getfd(bev), SHUT_WR);
            dconn_kill(c, false);
        }
        return;
    }
    if (c->s)
        gw_stream_output_drained(c->s);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct dconn *c = arg;
    if (what & BEV_EVENT_EOF) {
        if (c->s)
            gw_stream_input_eof(c->s);
        else if (!c->closing)
            dconn_kill(c, false);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        if (c->s)
            gw_stream_reset(c->s);
        dconn_kill(c, true);
    }
}

/* "a.b.c.d:port" or "[v6]:port" of sa into out. */
static void format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        (void) inet_ntop(AF_INET, &in.sin_addr, host, sizeof(host));
        (void) snprintf(out, len, "%s:%u", host, ntohs(in.sin_port));
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        (void) inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof(host));
        (void) snprintf(out, len, "[%s]:%u", host, ntohs(in6.sin6_port));
    } else {
        (void) snprintf(out, len, "?");
    }
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct gw_direct *d = arg;
    char addr[INET6_ADDRSTRLEN + 16], label[32];
    int one = 1;

    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    format_addr(sa, addr, sizeof(addr));
    struct dconn *c = al_xcalloc(1, sizeof(*c));
    c->d = d;
    c->bev = bufferevent_socket_new(d->ctx->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->reap = event_new(d->ctx->base, -1, 0, dconn_reap, c);
    if (!c->bev || !c->reap) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        if (c->reap)
            event_free(c->reap);
        free(c);
        return;
    }
    c->next = d->conns;
    if (c->next)
        c->next->prev = c;
    d->conns = c;
    (void) snprintf(label, sizeof(label), "direct");
    struct gw_stream_meta meta = { .client_addr = addr, .stream_id = ++d->next_id, .conn_label = label };
    c->s = gw_stream_open(d->ctx, &meta, &direct_ops, c);
    if (!c->s) {
        dconn_kill(c, true);
        return;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, DIRECT_OUT_LOW, 0);
    (void) bufferevent_set_max_single_write(c->bev, 256 * 1024);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
    struct gw_direct *d = arg;
    evconnlistener_enable(d->lev);
}

/* accept() failed (out of fds, most likely): pause accepting for 100 ms
 * rather than spin on a listener that stays readable. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct gw_direct *d = arg;
    int e = EVUTIL_SOCKET_ERROR();
    struct timeval tv = { 0, 100 * 1000 };

    al_log(AL_WARN, "gateway.accept_failed", AL_ERR(-e));
    evconnlistener_disable(lev);
    evtimer_add(d->backoff, &tv);
}

/* "a.b.c.d:port" or "[v6]:port" (port 0 = any). */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, int *sslen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon = strrchr(addr, ':'), *hb = addr, *he = colon;
    int64_t port;

    if (!colon || al_parse_i64(colon + 1, 0, 65535, &port) < 0)
        return -EINVAL;
    if (*addr == '[') {
        hb = addr + 1;
        if (he == hb || he[-1] != ']')
            return -EINVAL;
        he--;
    }
    if ((size_t) (he - hb) >= sizeof(host))
        return -EINVAL;
    memcpy(host, hb, (size_t) (he - hb));
    host[he - hb] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t) port);
        *sslen = sizeof(*in);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t) port);
        *sslen = sizeof(*in6);
    } else {
        return -EINVAL;
    }
    return 0;
}

int gw_direct_listen(struct gw_ctx *ctx, const char *addr, char *bound, size_t boundlen)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);

    if (parse_addr(addr, &ss, &sslen) < 0)
        return -EINVAL;
    struct gw_direct *d = al_xcalloc(1, sizeof(*d));
    d->ctx = ctx;
    d->lev = evconnlistener_new_bind(ctx->base, on_accept, d,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 512,
                                     (struct sockaddr *) &ss, sslen);
    if (!d->lev) {
        int r = -errno;
        free(d);
        return r < 0 ? r : -EADDRNOTAVAIL;
    }
    d->backoff = evtimer_new(ctx->base, on_backoff, d);
    if (!d->backoff) {
        evconnlistener_free(d->lev);
        free(d);
        return -ENOMEM;
    }
    evconnlistener_set_error_cb(d->lev, on_accept_error);
    struct sockaddr_storage b = { 0 };
    socklen_t blen = sizeof(b);
    if (bound && boundlen && getsockname(evconnlistener_get_fd(d->lev), (struct sockaddr *) &b, &blen) == 0)
        format_addr((const struct sockaddr *) &b, bound, boundlen);
    d->next = ctx->directs;
    ctx->directs = d;
    al_log(AL_INFO, "gateway.direct_listen", AL_STR("addr", bound && boundlen ? bound : addr));
    return 0;
}

void gw_direct_free_all(struct gw_ctx *ctx)
{
    while (ctx->directs) {
        struct gw_direct *d = ctx->directs;
        ctx->directs = d->next;
        evconnlistener_free(d->lev);
        event_free(d->backoff);
        while (d->conns) {
            struct dconn *c = d->conns;
            if (c->s)
                gw_stream_reset(c->s);
            c->s = NULL;
            d->conns = c->next;
            if (c->bev)
                bufferevent_free(c->bev);
            event_free(c->reap);
            free(c);
        }
        free(d);
    }
}
