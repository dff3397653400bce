/* SPDX-License-Identifier: Apache-2.0 */
/* The relay's gateway listener (docs/internals/TUNNEL.md §2): outer TLS, the
 * HTTP/1.1 upgrade request (8 KiB, 10 s), the token checked with the hub,
 * the 101 (or an error status), then an HTTP/2 client session on the same
 * connection. States: HEAD -> VERIFY -> OPEN, or ANSWER (error) -> closed. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "../lib/h2/h2.h"
#include "../lib/http/curl_ev.h"
#include "../lib/tls/outer.h"
#include "relay_internal.h"

#define HEAD_TIMEOUT_S 10
#define RELAY_DEAD_AFTER_US (35 * 1000000LL)

static const char *const state_name[] = { "head", "verify", "answer", "open", "closed" };

static void gw_set_state(struct relay_gw *g, enum relay_gw_state s)
{
    al_log(AL_DEBUG, "gw.state", AL_U64("conn", g->id), AL_STR("to", state_name[s]));
    g->state = s;
}

static void gw_free(struct relay_gw *g)
{
    struct relay *r = g->r;

    if (g->verify)
        al_curl_cancel(g->verify);   /* done sees RGW_CLOSED and only drops its ref */
    relay_tunnel_detach(g);
    if (g->prev)
        g->prev->next = g->next;
    else if (r->gws == g)
        r->gws = g->next;
    if (g->next)
        g->next->prev = g->prev;
    r->ngws--;
    if (g->deadline)
        event_free(g->deadline);
    if (g->bev)
        bufferevent_free(g->bev);
    g->h2 = al_h2_conn_free(g->h2);
    /* A verify in flight still points at g: it is freed by its callback. */
    if (!g->verify)
        free(g);
    relay_maybe_finish(r);
}

void relay_gw_close(struct relay_gw *g, int err)
{
    if (g->state == RGW_CLOSED)
        return;
    if (g->state == RGW_OPEN)
        al_log(AL_INFO, "gw.close", AL_U64("conn", g->id), AL_STR("tunnel", g->tunnel ? g->tunnel->id : NULL),
               AL_STR("connector", g->connector_id), AL_I64("slot", g->slot), AL_ERR(err));
    else
        al_log(AL_DEBUG, "gw.close", AL_U64("conn", g->id), AL_ERR(err));
    gw_set_state(g, RGW_CLOSED);
    gw_free(g);
}

/* ---- answers ---- */

static void gw_answer_error(struct relay_gw *g, int status, const char *type, const char *msg, int retry_after)
{
    const char *reason = status == 401 ? "Unauthorized" : status == 429 ? "Too Many Requests"
                       : status == 503 ? "Service Unavailable" : "Bad Request";
    _cleanup_free_ char *body = al_xasprintf("{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}",
                                             type, msg);
    char retry[48] = "";
    if (retry_after > 0)
        (void) snprintf(retry, sizeof(retry), "Retry-After: %d\r\n", retry_after);
    struct evbuffer *out = bufferevent_get_output(g->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s"
                        "Connection: close\r\n\r\n%s", status, reason, strlen(body), retry, body);
    gw_set_state(g, RGW_ANSWER);
    bufferevent_disable(g->bev, EV_READ);
    bufferevent_setwatermark(g->bev, EV_WRITE, 0, 0);
}

static void on_h2_goaway(struct al_h2_conn *c, void *ud)
{
    struct relay_gw *g = ud;
    al_log(AL_INFO, "gw.goaway", AL_U64("conn", g->id), AL_STR("tunnel", g->tunnel ? g->tunnel->id : NULL),
           AL_I64("slot", g->slot), AL_U64("streams", al_h2_conn_streams(c)));
}

static void on_h2_close(struct al_h2_conn *c, int err, void *ud)
{
    relay_gw_close(ud, err);
}

extern const struct al_h2_cbs relay_stream_cbs;   /* client.c: per-stream callbacks */

static struct al_h2_cbs gw_h2_cbs;

static void gw_open(struct relay_gw *g, const char *tunnel_id, const char *hostname)
{
    struct relay *r = g->r;
    struct evbuffer *out = bufferevent_get_output(g->bev);

    evbuffer_add_printf(out, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " AL_UPGRADE_PROTO
                        "\r\nAirlock-Tunnel-Id: %s\r\nAirlock-Tunnel-Hostname: %s\r\n\r\n", tunnel_id, hostname);
    event_free(g->deadline);
    g->deadline = NULL;
    gw_h2_cbs = relay_stream_cbs;
    gw_h2_cbs.on_goaway = on_h2_goaway;
    gw_h2_cbs.on_conn_close = on_h2_close;
    g->h2 = al_h2_conn_new(r->base, TAKE_PTR(g->bev), AL_H2_CLIENT, &gw_h2_cbs, g, 0, RELAY_DEAD_AFTER_US);
    if (!g->h2) {
        relay_gw_close(g, -ENOMEM);
        return;
    }
    al_h2_conn_set_after_read(g->h2, al_outer_kick_read);
    gw_set_state(g, RGW_OPEN);
    relay_tunnel_attach(relay_tunnel_get(r, tunnel_id, hostname), g);
    r->m.gw_accepted++;
    al_log(AL_INFO, "gw.open", AL_U64("conn", g->id), AL_STR("tunnel", tunnel_id), AL_STR("connector", g->connector_id),
           AL_I64("slot", g->slot), AL_STR("peer", g->peer));
    if (r->draining)
        al_h2_conn_goaway(g->h2);
}

/* ---- token check ---- */

static void on_verify_done(int err, long status, const char *body, size_t len, void *ud)
{
    struct relay_gw *g = ud;
    struct relay *r = g->r;

    g->verify = NULL;
    if (g->state == RGW_CLOSED) {
        free(g);
        return;
    }
    if (err == 0 && status == 401) {
        r->m.gw_rejected_auth++;
        al_log(AL_INFO, "gw.auth_rejected", AL_U64("conn", g->id), AL_STR("peer", g->peer));
        gw_answer_error(g, 401, "authentication_error", "invalid tunnel token", 0);
        return;
    }
    json_t *js = err == 0 && status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    const char *tid = js ? json_string_value(json_object_get(js, "tunnel_id")) : NULL;
    const char *host = js ? json_string_value(json_object_get(js, "hostname")) : NULL;
    if (!tid || !host || strlen(tid) > AL_TUNNEL_ID_MAX || !al_is_dns_name(host, strlen(host))) {
        r->m.gw_hub_errors++;
        al_log(AL_WARN, "gw.verify_failed", AL_U64("conn", g->id), AL_I64("status", status), AL_ERR(err));
        gw_answer_error(g, 503, "api_error", "the tunnel token cannot be checked now", 5);
        json_decref(js);
        return;
    }
    if (r->draining) {
        r->m.gw_draining_refused++;
        gw_answer_error(g, 503, "overloaded_error", "the relay is draining", 1);
        json_decref(js);
        return;
    }
    json_t *ac = json_object_get(js, "active_certificates");
    gw_open(g, tid, host);
    if (g->state == RGW_OPEN && json_is_integer(ac))
        g->tunnel->active_certificates = json_integer_value(ac);
    json_decref(js);
}

static void gw_verify(struct relay_gw *g, const char *token)
{
    struct relay *r = g->r;
    json_t *req = json_pack("{s:s}", "token", token);
    _cleanup_free_ char *body = json_dumps(req, JSON_COMPACT);
    _cleanup_free_ char *url = al_xasprintf("%s/v1/tunnels/connect/verify", r->cfg.hub);
    struct al_curl_req_opts o = { .method = "POST", .url = url, .bearer = r->api_key,
                                  .content_type = "application/json", .body = body,
                                  .body_len = body ? strlen(body) : 0, .timeout_ms = 10000,
                                  .cainfo = r->cfg.hub_cacert, .max_response = 64 << 10 };

    json_decref(req);
    gw_set_state(g, RGW_VERIFY);
    bufferevent_disable(g->bev, EV_READ);
    int k = body ? al_curl_request(r->curl, &o, on_verify_done, g, &g->verify) : -ENOMEM;
    if (body)
        explicit_bzero(body, strlen(body));    /* the token */
    if (k < 0) {
        g->verify = NULL;
        r->m.gw_hub_errors++;
        gw_answer_error(g, 503, "api_error", "the tunnel token cannot be checked now", 5);
    }
}

/* Accept rate limit: accept_rate per second at start, growing each second,
 * unlimited 10 s after start. */
static bool rate_allows(struct relay *r)
{
    int64_t since = (al_mono_us() - r->start_us) / 1000000;
    if (since >= 10 || r->cfg.accept_rate <= 0)
        return true;
    if (since != r->rate_window_s) {
        r->rate_window_s = since;
        r->rate_count = 0;
    }
    return ++r->rate_count <= r->cfg.accept_rate * (since + 1);
}

static void gw_on_head(struct relay_gw *g)
{
    struct relay *r = g->r;
    struct evbuffer *in = bufferevent_get_input(g->bev);
    size_t n = AL_MIN(evbuffer_get_length(in), (size_t) AL_UPGRADE_HEAD_MAX);
    const char *p = (const char *) evbuffer_pullup(in, (ssize_t) n);
    struct al_upgrade_req q;
    ssize_t hl = al_upgrade_parse_request(p, n, &q);

    if (hl == -EAGAIN)
        return;
    if (hl < 0) {
        r->m.gw_rejected_bad++;
        gw_answer_error(g, 400, "invalid_request_error", hl == -EMSGSIZE ? "request head too large"
                                                                          : "not a tunnel upgrade request", 0);
        return;
    }
    evbuffer_drain(in, (size_t) hl);
    (void) snprintf(g->connector_id, sizeof(g->connector_id), "%s", q.connector_id);
    g->slot = q.slot;
    if (!q.token[0]) {
        r->m.gw_rejected_auth++;
        gw_answer_error(g, 401, "authentication_error", "a connector token is required", 0);
    } else if (r->draining) {
        r->m.gw_draining_refused++;
        gw_answer_error(g, 503, "overloaded_error", "the relay is draining", 1);
    } else if (!rate_allows(r)) {
        r->m.gw_ratelimited++;
        gw_answer_error(g, 429, "rate_limit_error", "too many tunnel connections, retry later", 1);
    } else {
        gw_verify(g, q.token);
    }
    explicit_bzero(&q, sizeof(q));
}

static void gw_on_read(struct bufferevent *bev, void *arg)
{
    struct relay_gw *g = arg;
    al_outer_kick_read(bev);   /* records read ahead past this read (before g may go) */
    if (g->state == RGW_HEAD)
        gw_on_head(g);
}

static void gw_on_write(struct bufferevent *bev, void *arg)
{
    struct relay_gw *g = arg;
    if (g->state == RGW_ANSWER && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        relay_gw_close(g, -ECONNREFUSED);
}

static void gw_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct relay_gw *g = arg;

    if (what & BEV_EVENT_CONNECTED) {
        al_outer_kick_read(bev);   /* the request may have come with the handshake */
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        const char *e = al_outer_error(bev);
        al_log(AL_DEBUG, "gw.tls_error", AL_U64("conn", g->id), AL_STR("peer", g->peer), AL_STR("tls", e));
    }
    relay_gw_close(g, (what & BEV_EVENT_EOF) ? -ECONNRESET : -EIO);
}

static void gw_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct relay_gw *g = arg;
    if (g->state == RGW_HEAD || g->state == RGW_ANSWER)
        relay_gw_close(g, -ETIMEDOUT);
}

static void gw_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct relay *r = arg;
    struct relay_gw *g = al_xcalloc(1, sizeof(*g));

    g->r = r;
    g->id = ++r->next_id;
    g->slot = -1;
    relay_format_addr(sa, g->peer, sizeof(g->peer));
    al_h2_tune_socket(fd);
    g->bev = al_outer_accept(r->tls, r->base, fd);
    g->deadline = evtimer_new(r->base, gw_on_deadline, g);
    g->next = r->gws;
    if (r->gws)
        r->gws->prev = g;
    r->gws = g;
    r->ngws++;
    if (!g->bev || !g->deadline) {
        relay_gw_close(g, -ENOMEM);
        return;
    }
    struct timeval tv = { HEAD_TIMEOUT_S, 0 };
    evtimer_add(g->deadline, &tv);
    bufferevent_setcb(g->bev, gw_on_read, gw_on_write, gw_on_event, g);
    bufferevent_setwatermark(g->bev, EV_READ, 0, AL_UPGRADE_HEAD_MAX);
    bufferevent_enable(g->bev, EV_READ | EV_WRITE);
}

int relay_gw_listen(struct relay *r)
{
    struct sockaddr_storage ss;
    socklen_t blen = sizeof(ss);
    int fd = relay_listen_fd(r->cfg.gateway_listen, 512);

    if (fd < 0)
        return fd;
    r->gw_l = evconnlistener_new(r->base, gw_on_accept, r, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (!r->gw_l) {
        (void) close(fd);
        return -ENOMEM;
    }
    if (getsockname(evconnlistener_get_fd(r->gw_l), (struct sockaddr *) &ss, &blen) < 0)
        return -errno;
    char buf[80];
    relay_format_addr(&ss, buf, sizeof(buf));
    r->gateway_addr = al_xstrdup(buf);
    return 0;
}

void relay_gw_goaway_all(struct relay *r)
{
    for (struct relay_gw *g = r->gws; g; g = g->next)
        if (g->state == RGW_OPEN)
            al_h2_conn_goaway(g->h2);
}

void relay_gw_close_all(struct relay *r)
{
    /* relay_gw_close() unlinks the head before it frees it. */
    while (r->gws)
        relay_gw_close(r->gws, -ESHUTDOWN);   /* NOLINT(clang-analyzer-unix.Malloc) */
}
