/* SPDX-License-Identifier: Apache-2.0 */
/* The relay's client listener (docs/internals/TUNNEL.md §3): raw TCP, the
 * ClientHello read only as far as its SNI (with a deadline and a cap on
 * pending handshakes per source address), a CONNECT stream on the least
 * loaded gateway connection of the tunnel, the buffered bytes replayed, then
 * both directions spliced with flow control:
 *   client -> stream: reading stops while the stream's queue is above
 *     AL_H2_STREAM_QUEUE_HI (it only drains as the peer's window allows);
 *   stream -> client: bytes are credited to the gateway only as the kernel
 *     takes them from the client socket's output buffer.
 * States: HELLO -> OPEN -> (FLUSH) -> freed; ALERT -> freed. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "../lib/base/log.h"
#include "../lib/base/map.h"
#include "../lib/base/util.h"
#include "../lib/h2/h2.h"
#include "relay_internal.h"
#include "sni.h"

#define ALERT_INTERNAL_ERROR 80
#define ALERT_UNRECOGNIZED_NAME 112
#define ALERT_DECODE_ERROR 50
#define CLIENT_READ_CHUNK (64u << 10)
#define CLIENT_READ_MAX (256u << 10)

enum rc_state { RC_HELLO, RC_OPEN, RC_FLUSH, RC_ALERT };

struct relay_client {
    struct relay *r;
    uint64_t id;
    enum rc_state state;
    struct bufferevent *bev;
    struct event *deadline;            /* HELLO only */
    struct evbuffer_cb_entry *credit;  /* output drain -> stream credit */
    struct al_h2_stream *st;
    bool paused, out_eof, shut_wr;
    struct relay_client *next, *prev;  /* in relay->clients */
    char addr[56];
    char ip[48];
};

static const char *const client_state_name[] = { "hello", "open", "flush", "alert" };

static void client_set_state(struct relay_client *c, enum rc_state st)
{
    al_log(AL_DEBUG, "client.state", AL_U64("client", c->id), AL_STR("to", client_state_name[st]));
    c->state = st;
}

static void pending_add(struct relay *r, const char *ip, int d)
{
    uintptr_t n = (uintptr_t) al_map_get(r->pending, ip);
    n = (uintptr_t) ((intptr_t) n + d);
    if (n == 0)
        (void) al_map_remove(r->pending, ip);
    else
        (void) al_map_put(r->pending, ip, (void *) n);
    r->npending = (size_t) ((intptr_t) r->npending + d);
}

static void client_free(struct relay_client *c)
{
    struct relay *r = c->r;

    if (c->state == RC_HELLO || (c->state == RC_ALERT && c->deadline))
        pending_add(r, c->ip, -1);
    if (c->deadline)
        event_free(c->deadline);
    if (c->st) {
        al_h2_stream_reset(c->st, AL_H2_CANCEL);
        al_h2_stream_set_ud(c->st, NULL);
    }
    if (c->credit)
        evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->credit);
    bufferevent_free(c->bev);
    if (c->prev)
        c->prev->next = c->next;
    else
        r->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->nclients--;
    free(c);
    relay_maybe_finish(r);
}

static void client_alert(struct relay_client *c, uint8_t desc)
{
    const uint8_t rec[] = { 21, 3, 3, 0, 2, 2, desc };
    (void) bufferevent_write(c->bev, rec, sizeof(rec));
    client_set_state(c, RC_ALERT);
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

static void on_credit(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct relay_client *c = arg;
    if (info->n_deleted && c->st)
        al_h2_stream_consume(c->st, info->n_deleted);
}

/* ---- stream side (callbacks from src/lib/h2) ---- */

static void st_on_response(struct al_h2_stream *st, int status, void *ud)
{
    struct relay_client *c = ud;
    if (status != 200) {
        al_log(AL_INFO, "client.refused_by_gateway", AL_U64("client", c->id), AL_I64("status", status));
        client_free(c);
    }
}

static void st_on_data(struct al_h2_stream *st, const uint8_t *data, size_t len, void *ud)
{
    struct relay_client *c = ud;
    c->r->m.bytes_from_gw += len;
    if (bufferevent_write(c->bev, data, len) < 0)
        client_free(c);
}

static void client_maybe_shut(struct relay_client *c)
{
    if (c->out_eof && !c->shut_wr && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        c->shut_wr = true;
        (void) shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    }
}

static void st_on_eof(struct al_h2_stream *st, void *ud)
{
    struct relay_client *c = ud;
    c->out_eof = true;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    client_maybe_shut(c);
}

static void st_on_drained(struct al_h2_stream *st, void *ud)
{
    struct relay_client *c = ud;
    if (c->paused) {
        c->paused = false;
        bufferevent_enable(c->bev, EV_READ);
    }
}

static void st_on_close(struct al_h2_stream *st, uint32_t code, void *ud)
{
    struct relay_client *c = ud;

    c->st = NULL;
    if (code != 0 || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        client_free(c);
        return;
    }
    client_set_state(c, RC_FLUSH);      /* write what the gateway sent, then close */
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

const struct al_h2_cbs relay_stream_cbs = {
    .on_response = st_on_response,
    .on_data = st_on_data,
    .on_eof = st_on_eof,
    .on_drained = st_on_drained,
    .on_close = st_on_close,
};

/* ---- client side ---- */

/* Moves the client's input onto the stream. Returns -EPIPE when c was
 * freed (the stream refused more bytes), else 0. */
static int client_pump(struct relay_client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t n = evbuffer_get_length(in);

    if (!c->st || n == 0)
        return 0;
    c->r->m.bytes_to_gw += n;
    if (al_h2_stream_write_evbuffer(c->st, in) < 0) {
        client_free(c);
        return -EPIPE;
    }
    if (al_h2_stream_queued(c->st) >= AL_H2_STREAM_QUEUE_HI && !c->paused) {
        c->paused = true;
        bufferevent_disable(c->bev, EV_READ);
    }
    return 0;
}

static void count_alpn(struct relay *r, const struct relay_hello *h)
{
    if (!h->has_alpn)
        r->m.alpn_none++;
    else if (strcmp(h->alpn, "h2") == 0)
        r->m.alpn_h2++;
    else if (strcmp(h->alpn, "http/1.1") == 0)
        r->m.alpn_h1++;
    else
        r->m.alpn_other++;
}

static void client_route(struct relay_client *c, const struct relay_hello *h)
{
    struct relay *r = c->r;
    struct relay_tunnel *t = h->sni[0] ? relay_tunnel_by_sni(r, h->sni) : NULL;
    struct relay_gw *g = t ? relay_tunnel_pick(t) : NULL;

    count_alpn(r, h);
    if (!t || r->draining) {
        r->m.sni_unknown += !t;
        al_log(AL_DEBUG, "client.sni_unknown", AL_U64("client", c->id), AL_STR("sni", h->sni));
        client_alert(c, ALERT_UNRECOGNIZED_NAME);
        return;
    }
    if (t->active_certificates == 0 || !g) {
        if (!g)
            r->m.sni_no_gateway++;
        else
            r->m.sni_no_cert++;
        al_log(AL_INFO, "client.refused", AL_U64("client", c->id), AL_STR("tunnel", t->id),
               AL_STR("why", g ? "no active certificate" : "no ready gateway connection"));
        client_alert(c, ALERT_INTERNAL_ERROR);
        return;
    }
    char authority[RELAY_SNI_MAX + 8], sid[24];
    (void) snprintf(authority, sizeof(authority), "%s:443", h->sni);
    (void) snprintf(sid, sizeof(sid), "%" PRIu64, c->id);
#define HDR(n, v) { (n), (v), sizeof(n) - 1, strlen(v) }
    const struct al_h2_header hdrs[] = {
        HDR(":method", "CONNECT"), HDR(":authority", authority), HDR("airlock-tunnel", t->id),
        HDR("airlock-sni", h->sni), HDR("airlock-client-addr", c->addr), HDR("airlock-stream", sid),
    };
#undef HDR
    int err = 0;
    c->st = al_h2_stream_open(g->h2, hdrs, AL_ELEMENTSOF(hdrs), c, &err);
    if (!c->st) {
        r->m.streams_refused++;
        al_log(AL_WARN, "client.stream_failed", AL_U64("client", c->id), AL_STR("tunnel", t->id), AL_ERR(err));
        client_alert(c, ALERT_INTERNAL_ERROR);
        return;
    }
    g->streams_opened++;
    r->m.clients_routed++;
    pending_add(r, c->ip, -1);
    event_free(c->deadline);
    c->deadline = NULL;
    client_set_state(c, RC_OPEN);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    c->credit = evbuffer_add_cb(bufferevent_get_output(c->bev), on_credit, c);
    (void) bufferevent_set_max_single_write(c->bev, CLIENT_READ_MAX);
    al_log(AL_DEBUG, "client.routed", AL_U64("client", c->id), AL_STR("tunnel", t->id), AL_U64("gw", g->id),
           AL_I64("stream", al_h2_stream_id(c->st)));
    (void) client_pump(c);               /* replay the ClientHello verbatim */
}

static void client_on_hello(struct relay_client *c)
{
    static uint8_t scratch[RELAY_HELLO_MAX + 4];
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t n = evbuffer_get_length(in);
    const uint8_t *p = evbuffer_pullup(in, (ssize_t) n);
    struct relay_hello h;
    ssize_t k = relay_sni_parse(p, n, scratch, sizeof(scratch), &h);

    if (k == -EAGAIN && n < RELAY_HELLO_BUF_MAX)
        return;
    if (k < 0) {
        c->r->m.hello_bad++;
        al_log(AL_DEBUG, "client.hello_bad", AL_U64("client", c->id), AL_STR("addr", c->addr),
               AL_ERR(k == -EAGAIN ? -EMSGSIZE : (int) k));
        if (n > 0 && p[0] == 22)
            client_alert(c, ALERT_DECODE_ERROR);
        else
            client_free(c);
        return;
    }
    client_route(c, &h);
}

/* libevent 2.1 reads at most 4 KiB from a socket per callback; an active
 * client gets up to CLIENT_READ_MAX per pass, read here directly into the
 * input buffer. The bufferevent keeps the end of its input frozen outside
 * its own reads, so it is thawed for these (as the bufferevent does).
 * Returns -errno on a hard socket error (nothing freed), -EPIPE when c is
 * gone. */
static int client_read_chunk(struct relay_client *c, struct evbuffer *in, int fd, size_t *got)
{
    struct evbuffer_iovec v;

    *got = 0;
    (void) evbuffer_unfreeze(in, 0);
    int k = evbuffer_reserve_space(in, CLIENT_READ_CHUNK, &v, 1);
    ssize_t n = k < 1 ? 0 : recv(fd, v.iov_base, AL_MIN(v.iov_len, (size_t) CLIENT_READ_CHUNK), 0);
    int e = errno;
    if (n > 0) {
        v.iov_len = (size_t) n;
        if (evbuffer_commit_space(in, &v, 1) < 0)
            n = 0;
    }
    (void) evbuffer_freeze(in, 0);
    if (n < 0)
        return e == EAGAIN || e == EINTR ? 0 : -e;
    *got = (size_t) n;
    return 0;
}

static int client_read_more(struct relay_client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int fd = bufferevent_getfd(c->bev);

    for (size_t total = 0; total < CLIENT_READ_MAX && !c->paused;) {
        size_t n;
        int k = client_read_chunk(c, in, fd, &n);
        if (k < 0)
            return k;
        if (n == 0)
            return 0;                 /* nothing more now, or EOF: the bufferevent sees it next */
        total += n;
        if (n < CLIENT_READ_CHUNK)
            return 0;
        if (client_pump(c) < 0)
            return -EPIPE;            /* c is gone: the caller must not touch it */
    }
    return 0;
}

static void cl_on_read(struct bufferevent *bev, void *arg)
{
    struct relay_client *c = arg;

    if (c->state == RC_HELLO) {
        client_on_hello(c);
        return;
    }
    if (c->state != RC_OPEN || client_pump(c) < 0)
        return;
    int k = client_read_more(c);
    if (k == -EPIPE)
        return;
    if (k < 0)
        client_free(c);
    else
        (void) client_pump(c);
}

static void cl_on_write(struct bufferevent *bev, void *arg)
{
    struct relay_client *c = arg;
    bool empty = evbuffer_get_length(bufferevent_get_output(bev)) == 0;

    if ((c->state == RC_ALERT || c->state == RC_FLUSH) && empty) {
        client_free(c);
        return;
    }
    if (c->state == RC_OPEN)
        client_maybe_shut(c);
}

static void cl_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct relay_client *c = arg;

    if ((what & BEV_EVENT_EOF) && c->state == RC_OPEN) {
        if (client_pump(c) < 0)
            return;
        if (c->st)
            al_h2_stream_end(c->st);     /* half-close toward the gateway */
        return;
    }
    client_free(c);
}

static void cl_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct relay_client *c = arg;
    c->r->m.hello_timeouts++;
    al_log(AL_DEBUG, "client.hello_timeout", AL_U64("client", c->id), AL_STR("addr", c->addr));
    client_free(c);
}

static void cl_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct relay *r = arg;
    char addr[56], ip[48];

    relay_format_addr(sa, addr, sizeof(addr));
    (void) snprintf(ip, sizeof(ip), "%.*s", (int) (strrchr(addr, ':') - addr), addr);
    if (r->draining || (uintptr_t) al_map_get(r->pending, ip) >= (uintptr_t) r->cfg.max_pending_per_ip) {
        r->m.pending_cap_refused += !r->draining;
        (void) close(fd);
        return;
    }
    struct relay_client *c = al_xcalloc(1, sizeof(*c));
    c->r = r;
    c->id = ++r->next_id;
    memcpy(c->addr, addr, sizeof(addr));
    memcpy(c->ip, ip, sizeof(ip));
    al_h2_tune_socket(fd);
    c->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!c->bev) {
        (void) close(fd);
        free(c);
        return;
    }
    r->nclients++;
    r->m.clients_accepted++;
    c->next = r->clients;
    if (r->clients)
        r->clients->prev = c;
    r->clients = c;
    pending_add(r, ip, +1);
    c->deadline = evtimer_new(r->base, cl_on_deadline, c);
    if (!c->deadline) {
        client_free(c);
        return;
    }
    struct timeval tv = { r->cfg.handshake_timeout_us / 1000000, r->cfg.handshake_timeout_us % 1000000 };
    evtimer_add(c->deadline, &tv);
    bufferevent_setcb(c->bev, cl_on_read, cl_on_write, cl_on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, RELAY_HELLO_BUF_MAX);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

int relay_client_listen(struct relay *r)
{
    struct sockaddr_storage ss;
    socklen_t blen = sizeof(ss);
    int fd = relay_listen_fd(r->cfg.listen, 1024);

    if (fd < 0)
        return fd;
    r->client_l = evconnlistener_new(r->base, cl_on_accept, r, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (!r->client_l) {
        (void) close(fd);
        return -ENOMEM;
    }
    if (getsockname(evconnlistener_get_fd(r->client_l), (struct sockaddr *) &ss, &blen) < 0)
        return -errno;
    char buf[80];
    relay_format_addr(&ss, buf, sizeof(buf));
    r->client_addr = al_xstrdup(buf);
    return 0;
}

void relay_clients_free_all(struct relay *r)
{
    /* client_free() unlinks the head before it frees it. */
    while (r->clients)
        client_free(r->clients);   /* NOLINT(clang-analyzer-unix.Malloc) */
}

void relay_client_stop_accepting(struct relay *r)
{
    /* Closed, not just disabled: new clients get a refusal at once instead
     * of waiting in the backlog until the relay exits. */
    if (r->client_l)
        evconnlistener_free(r->client_l);
    r->client_l = NULL;
}
