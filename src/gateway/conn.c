/* SPDX-License-Identifier: Apache-2.0 */
/* The gateway's relay connections (docs/internals/TUNNEL.md §2, §3): each
 * slot keeps one connection, dialled (dial.c), wrapped in outer TLS,
 * upgraded with the connector token, then served as an HTTP/2 server whose
 * CONNECT streams go to the stream side through struct gw_pipe_ops.
 * Failures retry with full-jitter backoff per slot (1 s base, 30 s cap,
 * reset after 60 s stable), forever. A relay GOAWAY makes the slot dial a
 * replacement at once; a token change dials new connections first and
 * drains the old ones once their replacements are ready.
 * States: DIAL -> TLS -> UPGRADE -> READY -> DRAINING -> CLOSED. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "../lib/h2/h2.h"
#include "../lib/http/server.h"
#include "../lib/tls/outer.h"
#include "conn.h"
#include "stream.h"

#define HANDSHAKE_TIMEOUT_S 15
#define BACKOFF_BASE_US 1000000LL
#define BACKOFF_CAP_US 30000000LL
#define STABLE_US 60000000LL

static const char *const state_name[_GC_STATE_MAX] = { "dial", "tls", "upgrade", "ready", "draining", "closed" };
static const char *const result_name[_GW_RES_MAX] = { "ok", "dns", "tcp", "proxy", "tls", "auth", "refused", "protocol" };

struct gw_pipe {
    struct gw_conn *c;
    struct al_h2_stream *st;      /* NULL once the h2 stream is gone */
    struct gw_stream *s;          /* NULL once the stream side let go */
};

static void conn_set_state(struct gw_conn *c, enum gw_conn_state st)
{
    al_log(AL_DEBUG, "gw.conn_state", AL_STR("conn", c->label), AL_STR("to", state_name[st]));
    c->state = st;
}

static void conn_arm(struct gw_conn *c, int64_t us)
{
    struct timeval tv = { us / 1000000, us % 1000000 };
    evtimer_add(c->deadline, &tv);
}

static void conn_free(struct gw_conn *c)
{
    struct gateway *gw = c->gw;

    conn_set_state(c, GC_CLOSED);
    if (c->slot) {
        if (c->slot->cur == c)
            c->slot->cur = NULL;
        if (c->slot->old == c)
            c->slot->old = NULL;
    }
    gw_dial_cancel(c->dial);
    if (c->deadline)
        event_free(c->deadline);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->h2) {
        gw->m.bytes_in_closed += al_h2_conn_bytes_in(c->h2);
        gw->m.bytes_out_closed += al_h2_conn_bytes_out(c->h2);
        c->h2 = al_h2_conn_free(c->h2);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        gw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->host);
    free(c->port);
    free(c);
    gw_maybe_exit(gw);
}

static void slot_retry(struct gw_slot *s, int64_t min_us)
{
    uint64_t rnd;
    int64_t cap = BACKOFF_BASE_US << AL_MIN(s->attempt, 5u);

    if (s->gw->stopping)
        return;
    cap = AL_MIN(cap, BACKOFF_CAP_US);
    al_random(&rnd, sizeof(rnd));
    int64_t delay = AL_MAX((int64_t) (rnd % (uint64_t) (cap + 1)), min_us);
    s->attempt++;
    struct timeval tv = { delay / 1000000, delay % 1000000 };
    evtimer_add(s->retry_ev, &tv);
    al_log(AL_DEBUG, "gw.retry", AL_I64("slot", s->idx), AL_I64("delay_ms", delay / 1000), AL_U64("attempt", s->attempt));
}

/* A ready connection dropped (a relay restart, most often): the first retry
 * comes after random(0, 1 s) whatever the exponent, so a relay that is back
 * quickly sees the gateway within a second; later failures continue the
 * exponential series, which only a 60 s stable connection resets. */
static void slot_retry_after_ready(struct gw_slot *s)
{
    uint64_t rnd;

    if (s->gw->stopping)
        return;
    al_random(&rnd, sizeof(rnd));
    int64_t delay = (int64_t) (rnd % (uint64_t) (BACKOFF_BASE_US + 1));
    struct timeval tv = { delay / 1000000, delay % 1000000 };
    evtimer_add(s->retry_ev, &tv);
}

/* A connection that never got ready. */
static void conn_fail(struct gw_conn *c, enum gw_result res, int err, int64_t retry_after_us)
{
    struct gw_slot *s = c->slot;

    c->gw->m.attempts[res]++;
    al_log(res == GW_RES_AUTH ? AL_ERROR : AL_WARN, "gw.connect_failed", AL_STR("conn", c->label),
           AL_STR("relay", c->relay), AL_STR("stage", result_name[res]), AL_ERR(err));
    conn_free(c);
    if (s && !s->cur)
        slot_retry(s, retry_after_us);
}

static void conn_drain(struct gw_conn *c, const char *why)
{
    if (c->state != GC_READY)
        return;
    al_log(AL_INFO, "gw.drain", AL_STR("conn", c->label), AL_STR("why", why), AL_U64("streams", c->streams));
    if (c->slot) {
        if (c->slot->cur == c)
            c->slot->cur = NULL;
        if (c->slot->old == c)
            c->slot->old = NULL;
        c->slot = NULL;
    }
    conn_set_state(c, GC_DRAINING);
    al_h2_conn_goaway(c->h2);
    conn_arm(c, c->gw->cfg.drain_timeout_us);
}

/* ---- the stream side's pipe ---- */

static int p_write(void *pp, const void *data, size_t len)
{
    struct gw_pipe *p = pp;
    return p->st ? al_h2_stream_write(p->st, data, len) : -EPIPE;
}

static size_t p_queued(void *pp)
{
    struct gw_pipe *p = pp;
    return p->st ? al_h2_stream_queued(p->st) : 0;
}

static void p_consumed(void *pp, size_t n)
{
    struct gw_pipe *p = pp;
    if (p->st)
        al_h2_stream_consume(p->st, n);
}

static void p_close(void *pp, bool abort)
{
    struct gw_pipe *p = pp;

    p->s = NULL;
    if (!p->st) {
        free(p);
        return;
    }
    if (abort)
        al_h2_stream_reset(p->st, AL_H2_CANCEL);
    else
        al_h2_stream_end(p->st);
}

static const struct gw_pipe_ops pipe_ops = { p_write, p_queued, p_consumed, p_close };

static void st_on_data(struct al_h2_stream *st, const uint8_t *data, size_t len, void *ud)
{
    struct gw_pipe *p = ud;
    if (p->s)
        gw_stream_input(p->s, data, len);
    else
        al_h2_stream_consume(st, len);
}

static void st_on_eof(struct al_h2_stream *st, void *ud)
{
    struct gw_pipe *p = ud;
    if (p->s)
        gw_stream_input_eof(p->s);
}

static void st_on_drained(struct al_h2_stream *st, void *ud)
{
    struct gw_pipe *p = ud;
    if (p->s)
        gw_stream_output_drained(p->s);
}

static void st_on_close(struct al_h2_stream *st, uint32_t code, void *ud)
{
    struct gw_pipe *p = ud;
    struct gw_stream *s = p->s;

    p->c->streams--;
    p->c->gw->m.streams_active--;
    p->st = NULL;
    p->s = NULL;
    if (s)
        gw_stream_reset(s);
    free(p);
}

static void on_request(struct al_h2_stream *st, const struct al_h2_header *hdrs, size_t n, void *ud)
{
    struct gw_conn *c = ud;
    struct gateway *gw = c->gw;
    struct gw_meta m;

    if (gw_meta_parse(hdrs, n, &m) < 0 || strcmp(m.tunnel_id, c->tunnel_id) != 0) {
        gw->m.streams_rejected++;
        al_log(AL_WARN, "gw.stream_bad_request", AL_STR("conn", c->label), AL_I64("stream", al_h2_stream_id(st)));
        if (al_h2_stream_respond(st, 400, true) < 0)
            al_h2_stream_reset(st, AL_H2_PROTOCOL_ERROR);
        return;
    }
    if (al_h2_stream_respond(st, 200, false) < 0) {
        al_h2_stream_reset(st, AL_H2_CANCEL);
        return;
    }
    struct gw_pipe *p = al_xcalloc(1, sizeof(*p));
    p->c = c;
    p->st = st;
    c->streams++;
    gw->m.streams_active++;
    gw->m.streams_opened++;
    al_h2_stream_set_ud(st, p);
    const struct gw_stream_meta sm = { .tunnel_id = m.tunnel_id, .sni = m.sni, .client_addr = m.client_addr,
                                       .stream_id = m.stream_id, .conn_label = c->label };
    p->s = gw_stream_open(gw->ctx, &sm, &pipe_ops, p);
    if (!p->s)
        al_h2_stream_reset(st, AL_H2_CANCEL);
}

/* ---- connection life ---- */

static void on_goaway(struct al_h2_conn *h2, void *ud)
{
    struct gw_conn *c = ud;
    struct gw_slot *s = c->slot;

    if (c->state != GC_READY)
        return;
    al_log(AL_INFO, "gw.relay_goaway", AL_STR("conn", c->label), AL_STR("relay", c->relay),
           AL_U64("streams", c->streams));
    c->gw->m.reconnects_goaway++;
    bool was_cur = s && s->cur == c;
    conn_drain(c, "relay goaway");
    if (was_cur && !c->gw->stopping) {
        s->attempt = 0;
        gw_slot_start(s);                  /* a replacement at once */
    }
}

static void on_ping_rtt(struct al_h2_conn *h2, int64_t rtt_us, void *ud)
{
    struct gw_conn *c = ud;
    gw_metrics_ping(c->gw, (double) rtt_us / 1e6);
}

static void on_conn_close(struct al_h2_conn *h2, int err, void *ud)
{
    struct gw_conn *c = ud;
    struct gw_slot *s = c->slot;
    bool was_cur = s && s->cur == c;

    al_log(c->state == GC_DRAINING ? AL_INFO : AL_WARN, "gw.conn_closed", AL_STR("conn", c->label),
           AL_STR("relay", c->relay), AL_STR("state", state_name[c->state]), AL_ERR(err));
    if (s && al_mono_us() - c->ready_us >= STABLE_US)
        s->attempt = 0;
    if (was_cur)
        c->gw->m.reconnects_error++;
    conn_free(c);
    if (was_cur && !s->cur)
        slot_retry_after_ready(s);
}

static const struct al_h2_cbs conn_cbs = {
    .on_request = on_request,
    .on_data = st_on_data,
    .on_eof = st_on_eof,
    .on_drained = st_on_drained,
    .on_close = st_on_close,
    .on_goaway = on_goaway,
    .on_ping_rtt = on_ping_rtt,
    .on_conn_close = on_conn_close,
};

static void conn_ready(struct gw_conn *c, const struct al_upgrade_resp *p)
{
    struct gateway *gw = c->gw;
    struct gw_slot *s = c->slot;

    (void) snprintf(c->tunnel_id, sizeof(c->tunnel_id), "%s", p->tunnel_id);
    if (!gw->tunnel_hostname || strcmp(gw->tunnel_hostname, p->hostname) != 0) {
        free(gw->tunnel_hostname);
        gw->tunnel_hostname = al_xstrdup(p->hostname);
        gw_ctx_set_tunnel_hostname(gw->ctx, p->hostname);
    }
    evtimer_del(c->deadline);
    c->h2 = al_h2_conn_new(gw->base, TAKE_PTR(c->bev), AL_H2_SERVER, &conn_cbs, c, gw->cfg.ping_interval_us,
                           gw->cfg.ping_timeout_us);
    if (!c->h2) {
        conn_fail(c, GW_RES_PROTO, -ENOMEM, 0);
        return;
    }
    al_h2_conn_set_after_read(c->h2, al_outer_kick_read);
    conn_set_state(c, GC_READY);
    c->ready_us = al_mono_us();
    gw->m.attempts[GW_RES_OK]++;
    gw->m.connect_count++;
    gw->m.connect_sum_s += (double) (c->ready_us - c->started_us) / 1e6;
    al_log(AL_INFO, "gw.connected", AL_STR("conn", c->label), AL_STR("relay", c->relay), AL_I64("slot", s->idx),
           AL_STR("tunnel", c->tunnel_id), AL_STR("hostname", p->hostname),
           AL_I64("ms", (c->ready_us - c->started_us) / 1000));
    if (s->old)
        conn_drain(s->old, "token rotation");
    if (gw->ready_fd >= 0) {
        al_ready_notify(gw->ready_fd, c->relay);
        gw->ready_fd = -1;
    }
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
    struct gw_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = AL_MIN(evbuffer_get_length(in), (size_t) AL_UPGRADE_HEAD_MAX);
    const char *head = (const char *) evbuffer_pullup(in, (ssize_t) n);
    struct al_upgrade_resp p;
    ssize_t hl;

    al_outer_kick_read(bev);   /* records read ahead past this read (before c may go) */
    if (c->state != GC_UPGRADE)
        return;
    hl = al_upgrade_parse_response(head, n, &p);
    if (hl == -EAGAIN)
        return;
    if (hl < 0) {
        conn_fail(c, GW_RES_PROTO, (int) hl, 0);
        return;
    }
    if (p.status != 101) {
        int64_t ra = p.retry_after_s > 0 ? p.retry_after_s * 1000000 : 0;
        enum gw_result res = p.status == 401 || p.status == 403 ? GW_RES_AUTH
                           : p.status == 429 || p.status == 503 ? GW_RES_REFUSED : GW_RES_PROTO;
        al_log(AL_DEBUG, "gw.upgrade_refused", AL_STR("conn", c->label), AL_I64("status", p.status));
        conn_fail(c, res, res == GW_RES_AUTH ? -EACCES : -ECONNREFUSED, ra);
        return;
    }
    evbuffer_drain(in, (size_t) hl);
    conn_ready(c, &p);
}

static void conn_send_upgrade(struct gw_conn *c)
{
    struct gateway *gw = c->gw;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const char *name = gw->cfg.relay_name ? gw->cfg.relay_name : c->host;
    bool v6 = strchr(name, ':') != NULL;

    conn_set_state(c, GC_UPGRADE);
    evbuffer_add_printf(out, "GET " AL_UPGRADE_PATH " HTTP/1.1\r\nHost: %s%s%s\r\nAuthorization: Bearer %s\r\n"
                        "Connection: Upgrade\r\nUpgrade: " AL_UPGRADE_PROTO "\r\nAirlock-Connector-Id: %s\r\n"
                        "Airlock-Connection-Slot: %d\r\n\r\n", v6 ? "[" : "", name, v6 ? "]" : "", gw->token,
                        gw->connector_id, c->slot ? c->slot->idx : 0);
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct gw_conn *c = arg;

    if (what & BEV_EVENT_CONNECTED) {
        al_outer_kick_read(bev);
        if (c->state == GC_TLS)
            conn_send_upgrade(c);
        return;
    }
    const char *tls = (what & BEV_EVENT_ERROR) ? al_outer_error(bev) : NULL;
    if (tls)
        al_log(AL_WARN, "gw.tls_failed", AL_STR("conn", c->label), AL_STR("relay", c->relay), AL_STR("tls", tls));
    conn_fail(c, c->state == GC_TLS || tls ? GW_RES_TLS : GW_RES_PROTO, -ECONNRESET, 0);
}

static void on_dialed(int fd, enum gw_result res, int err, void *ud)
{
    struct gw_conn *c = ud;
    struct gateway *gw = c->gw;

    c->dial = NULL;
    if (fd < 0) {
        conn_fail(c, res, err, 0);
        return;
    }
    al_h2_tune_socket(fd);
    c->bev = al_outer_connect(gw->tls, gw->base, fd, gw->cfg.relay_name ? gw->cfg.relay_name : c->host);
    if (!c->bev) {
        conn_fail(c, GW_RES_TLS, -ENOMEM, 0);
        return;
    }
    conn_set_state(c, GC_TLS);
    bufferevent_setcb(c->bev, conn_on_read, NULL, conn_on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, AL_UPGRADE_HEAD_MAX);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void conn_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;

    if (c->state == GC_DRAINING || c->state == GC_READY) {
        al_log(AL_WARN, "gw.drain_timeout", AL_STR("conn", c->label), AL_U64("streams", c->streams));
        conn_free(c);
        return;
    }
    conn_fail(c, c->state == GC_DIAL ? GW_RES_TCP : c->state == GC_TLS ? GW_RES_TLS : GW_RES_PROTO, -ETIMEDOUT, 0);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    gw_slot_start(arg);
}

void gw_slot_start(struct gw_slot *s)
{
    struct gateway *gw = s->gw;
    size_t nrelays = 0;

    if (gw->stopping || s->cur || !gw->cfg.relay || !gw->cfg.relay[0])
        return;
    if (!s->retry_ev)
        s->retry_ev = evtimer_new(gw->base, on_retry, s);
    evtimer_del(s->retry_ev);
    while (gw->cfg.relay[nrelays])
        nrelays++;
    struct gw_conn *c = al_xcalloc(1, sizeof(*c));
    c->gw = gw;
    c->slot = s;
    c->id = ++gw->next_id;
    (void) snprintf(c->label, sizeof(c->label), "c-%llu", (unsigned long long) c->id);
    c->relay = gw->cfg.relay[(size_t) (s->idx + (int) s->dials++) % nrelays];
    c->token_gen = gw->token_gen;
    c->started_us = al_mono_us();
    c->next = gw->conns;
    if (gw->conns)
        gw->conns->prev = c;
    gw->conns = c;
    s->cur = c;
    c->deadline = evtimer_new(gw->base, conn_on_deadline, c);
    if (!c->deadline || gw_split_hostport(c->relay, &c->host, &c->port) < 0) {
        conn_fail(c, GW_RES_DNS, -EINVAL, 0);
        return;
    }
    conn_arm(c, HANDSHAKE_TIMEOUT_S * 1000000LL);
    c->dial = gw_dial_start(gw->base, gw->dns, c->host, c->port, on_dialed, c);
    if (!c->dial)
        conn_fail(c, GW_RES_TCP, -ENOMEM, 0);
}

void gw_slots_rotate(struct gateway *gw)
{
    for (int i = 0; i < gw->nslots; i++) {
        struct gw_slot *s = &gw->slots[i];
        struct gw_conn *c = s->cur;
        if (c && c->token_gen == gw->token_gen)
            continue;
        s->attempt = 0;
        if (c && c->state == GC_READY) {
            if (s->old)
                conn_drain(s->old, "token rotation");
            s->old = c;                    /* drained once the replacement is ready */
            s->cur = NULL;
        } else if (c) {
            conn_free(c);                  /* still connecting with the old token */
        }
        gw->m.reconnects_rotation++;
        gw_slot_start(s);
    }
}

void gw_conns_stop(struct gateway *gw)
{
    for (int i = 0; i < gw->nslots; i++)
        if (gw->slots[i].retry_ev)
            evtimer_del(gw->slots[i].retry_ev);
    for (struct gw_conn *c = gw->conns, *n; c; c = n) {
        n = c->next;
        if (c->state == GC_READY)
            conn_drain(c, "shutdown");
        else if (c->state != GC_DRAINING)
            conn_free(c);
    }
}

size_t gw_conns_count(const struct gateway *gw, enum gw_conn_state st)
{
    size_t n = 0;
    for (const struct gw_conn *c = gw->conns; c; c = c->next)
        n += c->state == st;
    return n;
}

uint64_t gw_conns_bytes(const struct gateway *gw, bool in)
{
    uint64_t n = in ? gw->m.bytes_in_closed : gw->m.bytes_out_closed;
    for (const struct gw_conn *c = gw->conns; c; c = c->next)
        if (c->h2)
            n += in ? al_h2_conn_bytes_in(c->h2) : al_h2_conn_bytes_out(c->h2);
    return n;
}

void gw_conns_free_all(struct gateway *gw)
{
    /* conn_free() unlinks the head before it frees it. */
    while (gw->conns)
        conn_free(gw->conns);   /* NOLINT(clang-analyzer-unix.Malloc) */
}
