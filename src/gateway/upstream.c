/* SPDX-License-Identifier: Apache-2.0 */
/* A stream's upstream connection (stream_internal.h): resolve the route's
 * host with evdns, keep only addresses in --allowed-ips (SSRF rule), and
 * connect to that exact address. Bytes from the upstream are encrypted
 * toward the client as they arrive; reading stops while the pipe holds more
 * than GW_PIPE_HIGH. Loop thread only. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
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

#define IO_CHUNK (16 * 1024)
#define UP_READ_MAX (256 * 1024)
#define CONNECT_TIMEOUT_S 10

/* Outlives the stream if the lookup is still running; the callback frees it. */
struct gw_resolve {
    struct gw_stream *s;
    struct evdns_getaddrinfo_request *req;
};

static void connect_next(struct gw_stream *s, const char *why);

/* Encrypts what the upstream sent toward the client, 16 KiB records at a
 * time; false once reading paused or the stream closed. */
static bool up_drain(struct gw_stream *s, struct bufferevent *bev)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    char buf[IO_CHUNK];

    while (s->state != GW_S_CLOSED && evbuffer_get_length(in) > 0) {
        if (s->ops->queued(s->pipe) > GW_PIPE_HIGH) {
            bufferevent_disable(bev, EV_READ);
            s->up_paused = true;   /* gw_stream_output_drained() resumes */
            return false;
        }
        int n = evbuffer_remove(in, buf, sizeof(buf));
        if (n <= 0)
            break;
        if (gw_stream_send_plain(s, buf, (size_t) n, true) < 0)
            return false;
    }
    return s->state != GW_S_CLOSED;
}

/* libevent 2.1 reads at most 4 KiB from a socket per callback, which would
 * make every 4 KiB one TLS record, one DATA frame and one write. A busy
 * upstream is read on here, up to UP_READ_MAX per pass. The bufferevent
 * keeps the end of its input frozen outside its own reads, so it is thawed
 * for these (as the bufferevent does). EOF and errors are left in the
 * socket for the bufferevent's next read to report. */
static void up_read_more(struct bufferevent *bev)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    int fd = bufferevent_getfd(bev);

    (void) evbuffer_unfreeze(in, 0);
    for (size_t total = 0; total < UP_READ_MAX;) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(in, IO_CHUNK, &v, 1) < 1)
            break;
        ssize_t n = recv(fd, v.iov_base, AL_MIN(v.iov_len, (size_t) IO_CHUNK), 0);
        if (n <= 0)
            break;
        v.iov_len = (size_t) n;
        if (evbuffer_commit_space(in, &v, 1) < 0)
            break;
        total += (size_t) n;
        if ((size_t) n < IO_CHUNK)
            break;
    }
    (void) evbuffer_freeze(in, 0);
}

static void up_read(struct bufferevent *bev, void *arg)
{
    struct gw_stream *s = arg;

    if (!up_drain(s, bev) || s->state != GW_S_OPEN)
        return;
    up_read_more(bev);
    (void) up_drain(s, bev);
}

static void up_write(struct bufferevent *bev, void *arg)
{
    struct gw_stream *s = arg;

    /* Below the low watermark: decrypt more client input. */
    if (s->in_paused) {
        s->in_paused = false;
        gw_stream_pump_in(s);
    }
    if (s->state != GW_S_CLOSED && s->client_eof)
        gw_upstream_shutdown_when_flushed(s);
}

static void up_event(struct bufferevent *bev, short what, void *arg)
{
    struct gw_stream *s = arg;

    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        (void) setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void) bufferevent_set_timeouts(bev, NULL, NULL);
        gw_stream_set_state(s, GW_S_OPEN);
        al_log(AL_DEBUG, "stream.upstream_connected", AL_U64("stream", s->id));
        if (s->client_eof)
            gw_upstream_shutdown_when_flushed(s);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        up_read(bev, s);   /* whatever is left, then close_notify */
        if (s->state == GW_S_CLOSED)
            return;
        if (s->h1)
            gw_h1_eof(s->h1, 1);
        if (!s->up_paused)
            gw_stream_finish(s, false);
        else
            s->up_shut = true;   /* finish once the rest has been sent */
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && s->state == GW_S_CONNECTING) {
        connect_next(s, "timeout");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        int e = EVUTIL_SOCKET_ERROR();
        if (s->state == GW_S_CONNECTING) {
            connect_next(s, al_errno_name(e));
            return;
        }
        al_log(AL_INFO, "stream.upstream_error", AL_U64("stream", s->id), AL_ERR(-e));
        gw_stream_finish(s, true);
    }
}

static struct bufferevent *new_bev(struct gw_stream *s)
{
    struct bufferevent *b = bufferevent_socket_new(s->ctx->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!b)
        return NULL;
    bufferevent_setcb(b, up_read, up_write, up_event, s);
    bufferevent_setwatermark(b, EV_WRITE, GW_UP_OUT_LOW, 0);
    (void) bufferevent_set_max_single_write(b, UP_READ_MAX);
    /* Bounds each connect (a black-holed address); cleared once connected. */
    struct timeval ct = { CONNECT_TIMEOUT_S, 0 };
    (void) bufferevent_set_timeouts(b, NULL, &ct);
    bufferevent_enable(b, EV_READ | EV_WRITE);
    return b;
}

/* The next allowed address from s->addr on (inclusive), or NULL. */
static struct evutil_addrinfo *allowed_from(struct gw_stream *s, struct evutil_addrinfo *ai)
{
    for (; ai; ai = ai->ai_next)
        if (gw_cidr_allows(&s->ctx->allowed, ai->ai_addr))
            return ai;
    return NULL;
}

static void dial(struct gw_stream *s)
{
    char host[INET6_ADDRSTRLEN] = "";
    const struct sockaddr *sa = s->addr->ai_addr;
    const void *a = sa->sa_family == AF_INET ? (const void *) &((const struct sockaddr_in *) sa)->sin_addr
                                             : (const void *) &((const struct sockaddr_in6 *) sa)->sin6_addr;
    (void) evutil_inet_ntop(sa->sa_family, a, host, sizeof(host));
    al_log(AL_DEBUG, "stream.upstream_connect", AL_U64("stream", s->id), AL_STR("addr", host));
    if (bufferevent_socket_connect(s->up, sa, (int) s->addr->ai_addrlen) < 0 && s->state != GW_S_CLOSED)
        connect_next(s, "connect");
}

/* The address being dialled failed: the next allowed one gets a fresh
 * socket and the bytes the client has sent so far; none left is a 502. */
static void connect_next(struct gw_stream *s, const char *why)
{
    struct evutil_addrinfo *next = s->addr ? allowed_from(s, s->addr->ai_next) : NULL;
    struct bufferevent *b = next ? new_bev(s) : NULL;

    if (!b) {
        gw_stream_upstream_failed(s, GW_UPERR_CONNECT, why);
        return;
    }
    al_log(AL_DEBUG, "stream.upstream_retry", AL_U64("stream", s->id), AL_STR("why", why));
    (void) evbuffer_add_buffer(bufferevent_get_output(b), bufferevent_get_output(s->up));
    bufferevent_free(s->up);
    s->up = b;
    s->addr = next;
    dial(s);
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct gw_resolve *rv = arg;
    struct gw_stream *s = rv->s;

    free(rv);
    if (!s) {   /* the stream went away meanwhile */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    s->resolve = NULL;
    if (result != 0 || !res) {
        gw_stream_upstream_failed(s, GW_UPERR_DNS, evutil_gai_strerror(result));
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    s->addrs = res;   /* freed with the upstream */
    s->addr = allowed_from(s, res);
    if (!s->addr)
        gw_stream_upstream_failed(s, GW_UPERR_IP_NOT_ALLOWED, "no address of the upstream is in --allowed-ips");
    else
        dial(s);
}

void gw_upstream_start(struct gw_stream *s)
{
    struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                     .ai_protocol = IPPROTO_TCP };
    char port[8];

    s->up = new_bev(s);
    if (!s->up) {
        gw_stream_finish(s, true);
        return;
    }
    (void) snprintf(port, sizeof(port), "%u", s->route->port);
    struct gw_resolve *rv = al_xcalloc(1, sizeof(*rv));
    rv->s = s;
    s->resolve = rv;
    /* The callback may run before this returns (address literals). */
    struct evdns_getaddrinfo_request *req = evdns_getaddrinfo(s->ctx->dns, s->route->host, port, &hints, on_resolved, rv);
    if (req && s->resolve == rv)
        rv->req = req;
}

void gw_upstream_cancel(struct gw_stream *s)
{
    if (s->resolve) {
        struct gw_resolve *rv = s->resolve;
        s->resolve = NULL;
        rv->s = NULL;
        if (rv->req)
            evdns_getaddrinfo_cancel(rv->req);   /* on_resolved frees rv */
    }
    if (s->up) {
        bufferevent_free(s->up);
        s->up = NULL;
    }
    if (s->addrs)
        evutil_freeaddrinfo(s->addrs);
    s->addrs = s->addr = NULL;
}

void gw_upstream_resume(struct gw_stream *s)
{
    if (!s->up_paused || !s->up)
        return;
    s->up_paused = false;
    up_read(s->up, s);
    if (s->state == GW_S_CLOSED || s->up_paused)
        return;
    if (s->up_shut) {
        gw_stream_finish(s, false);
        return;
    }
    bufferevent_enable(s->up, EV_READ);
}

void gw_upstream_shutdown_when_flushed(struct gw_stream *s)
{
    if (!s->up || s->state != GW_S_OPEN || evbuffer_get_length(bufferevent_get_output(s->up)) > 0)
        return;
    (void) shutdown(bufferevent_getfd(s->up), SHUT_WR);
}

void gw_stream_upstream_failed(struct gw_stream *s, enum gw_upstream_error why, const char *detail)
{
    static const char *const reasons[] = { "dns", "ip_not_allowed", "connect" };
    static const char *const msgs[] = {
        "the upstream's name could not be resolved",
        "the upstream's address is not allowed (--allowed-ips)",
        "the upstream refused or did not answer the connection",
    };
    char body[256], head[256];

    s->ctx->upstream_errors[gw_route_index(s->ctx, s->route) * _GW_UPERR_MAX + why]++;
    al_log(AL_WARN, "stream.upstream_failed", AL_U64("stream", s->id), AL_STR("route", s->route->name),
           AL_STR("reason", reasons[why]), AL_STR("detail", detail));
    if (!s->replied) {
        int bn = snprintf(body, sizeof(body), "{\"error\":{\"type\":\"bad_gateway\",\"reason\":\"%s\",\"message\":\"%s\"}}\n",
                          reasons[why], msgs[why]);
        int hn = snprintf(head, sizeof(head),
                          "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                          "Connection: close\r\n\r\n", bn);
        if (gw_stream_send_plain(s, head, (size_t) hn, false) < 0 || gw_stream_send_plain(s, body, (size_t) bn, false) < 0)
            return;
    }
    gw_stream_finish(s, false);
}
