/* SPDX-License-Identifier: Apache-2.0 */
/* The gateway's per-stream side (stream.h, docs/internals/GATEWAY_STREAM.md):
 * the shared context (inner TLS, routes, allowed IPs, audit, metrics) and
 * one stream's life: inner TLS handshake with SNI routing, decryption of
 * client bytes toward the upstream with flow-control credit, encryption of
 * upstream bytes toward the client, and teardown. The upstream side is in
 * upstream.c. Loop thread only. */
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "../lib/base/buf.h"
#include "../lib/base/log.h"
#include "../lib/tls/inner.h"
#include "stream.h"
#include "stream_internal.h"

#define IO_CHUNK (16 * 1024)

static const char *const hs_names[_GW_HS_MAX] = { "ok", "unknown_sni", "failed", "eof", "timeout" };
static const char *const uperr_names[_GW_UPERR_MAX] = { "dns", "ip_not_allowed", "connect" };
static const char *const outcome_names[GW_OUTCOMES] = { "ok", "error", "aborted", "notification" };
/* Methods counted by name; anything else is "other" (bounded cardinality). */
static const char *const mcp_methods[] = {
    "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/read",
    "resources/templates/list", "resources/subscribe", "resources/unsubscribe", "prompts/list",
    "prompts/get", "completion/complete", "logging/setLevel", "subscriptions/listen",
    "notifications/initialized", "notifications/cancelled", "other",
};
#define N_METHODS AL_ELEMENTSOF(mcp_methods)

static void stream_reap(evutil_socket_t fd, short what, void *arg);

/* ---- context ------------------------------------------------------------- */

struct gw_ctx *gw_ctx_new(struct event_base *base, const struct gw_stream_config *cfg)
{
    struct gw_ctx *ctx = al_xcalloc(1, sizeof(*ctx));
    char why[512] = "";
    int r;

    ctx->base = base;
    ctx->cert_file = al_xstrdup(cfg->cert_file ? cfg->cert_file : "");
    ctx->key_file = al_xstrdup(cfg->key_file ? cfg->key_file : "");
    if (cfg->tunnel_hostname)
        ctx->tunnel_hostname = al_xstrdup(cfg->tunnel_hostname);
    if (!cfg->cert_file || !cfg->key_file) {
        al_log(AL_ERROR, "gateway.config", AL_STR("detail", "--cert and --key are required"));
        goto fail;
    }
    r = gw_routes_parse(cfg->routes, &ctx->routes, why, sizeof(why));
    if (r == 0)
        r = gw_cidr_parse_list(cfg->allowed_ips, &ctx->allowed, why, sizeof(why));
    if (r == 0)
        r = al_inner_ctx_new(cfg->cert_file, cfg->key_file, &ctx->tls, why, sizeof(why));
    if (r == 0)
        r = gw_audit_new(cfg->audit_path, cfg->audit_key_file, cfg->audit_key_id, cfg->audit_queue_max,
                         &ctx->audit, why, sizeof(why));
    if (r < 0) {
        al_log(AL_ERROR, "gateway.config", AL_STR("detail", why));
        goto fail;
    }
    ctx->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!ctx->dns)
        ctx->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);   /* no resolv.conf: hosts and literals */
    if (!ctx->dns) {
        al_log(AL_ERROR, "gateway.config", AL_STR("detail", "cannot start the DNS resolver"));
        goto fail;
    }
    ctx->upstream_errors = al_xcalloc(ctx->routes.n * _GW_UPERR_MAX, sizeof(uint64_t));
    ctx->mcp = al_xcalloc(ctx->routes.n * N_METHODS * GW_OUTCOMES, sizeof(uint64_t));
    for (size_t i = 0; i < ctx->routes.n; i++)
        al_log(AL_INFO, "gateway.route", AL_STR("route", ctx->routes.v[i].name), AL_STR("upstream", ctx->routes.v[i].url));
    return ctx;
fail:
    gw_ctx_free(ctx);
    return NULL;
}

void gw_ctx_free(struct gw_ctx *ctx)
{
    if (!ctx)
        return;
    gw_direct_free_all(ctx);
    for (struct gw_stream *s = ctx->streams, *next; s; s = next) {
        next = s->next;
        gw_stream_reset(s);
        stream_reap(-1, 0, s);   /* reset only scheduled it; the loop is ending */
    }
    if (ctx->dns)
        evdns_base_free(ctx->dns, 0);
    ctx->audit = gw_audit_free(ctx->audit);
    ctx->tls = al_inner_ctx_unref(ctx->tls);
    gw_routes_clear(&ctx->routes);
    free(ctx->upstream_errors);
    free(ctx->mcp);
    free(ctx->cert_file);
    free(ctx->key_file);
    free(ctx->tunnel_hostname);
    free(ctx);
}

int gw_ctx_reload_cert(struct gw_ctx *ctx)
{
    struct al_inner_ctx *t = NULL;
    char why[512];
    int r = al_inner_ctx_new(ctx->cert_file, ctx->key_file, &t, why, sizeof(why));
    if (r < 0) {
        al_log(AL_ERROR, "gateway.cert_reload", AL_STR("detail", why));
        return r;
    }
    al_inner_ctx_unref(ctx->tls);   /* open sessions keep the old pair alive */
    ctx->tls = t;
    al_log(AL_INFO, "gateway.cert_reload", AL_STR("cert", ctx->cert_file));
    return 0;
}

void gw_ctx_set_tunnel_hostname(struct gw_ctx *ctx, const char *hostname)
{
    free(ctx->tunnel_hostname);
    ctx->tunnel_hostname = hostname ? al_xstrdup(hostname) : NULL;
}

size_t gw_route_index(const struct gw_ctx *ctx, const struct gw_route *r)
{
    return (size_t) (r - ctx->routes.v);
}

static void mput(struct al_buf *out, const char *fmt, ...) _printf_(2, 3);
static void mput(struct al_buf *out, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    (void) !al_buf_append(out, s, (size_t) n);
    free(s);
}

void gw_ctx_metrics(struct gw_ctx *ctx, struct al_buf *out)
{
    const char *p = "";   /* the spec's names (tunnel-notes §5.10), like the transport's */

    mput(out, "# TYPE %sinner_streams_active gauge\n%sinner_streams_active %llu\n", p, p, (unsigned long long) ctx->streams_active);
    mput(out, "# TYPE %sinner_streams_opened_total counter\n%sinner_streams_opened_total %llu\n", p, p,
         (unsigned long long) ctx->streams_opened);
    mput(out, "# TYPE %sinner_tls_handshakes_total counter\n", p);
    for (int i = 0; i < _GW_HS_MAX; i++)
        mput(out, "%sinner_tls_handshakes_total{result=\"%s\"} %llu\n", p, hs_names[i], (unsigned long long) ctx->handshakes[i]);
    mput(out, "# TYPE %supstream_connect_errors_total counter\n", p);
    for (size_t r = 0; r < ctx->routes.n; r++)
        for (int i = 0; i < _GW_UPERR_MAX; i++)
            mput(out, "%supstream_connect_errors_total{route=\"%s\",reason=\"%s\"} %llu\n", p, ctx->routes.v[r].name,
                 uperr_names[i], (unsigned long long) ctx->upstream_errors[r * _GW_UPERR_MAX + i]);
    mput(out, "# TYPE %smcp_requests_total counter\n", p);
    for (size_t r = 0; r < ctx->routes.n; r++)
        for (size_t m = 0; m < N_METHODS; m++)
            for (int o = 0; o < GW_OUTCOMES; o++) {
                uint64_t v = ctx->mcp[(r * N_METHODS + m) * GW_OUTCOMES + (size_t) o];
                if (v)
                    mput(out, "%smcp_requests_total{route=\"%s\",method=\"%s\",outcome=\"%s\"} %llu\n", p,
                         ctx->routes.v[r].name, mcp_methods[m], outcome_names[o], (unsigned long long) v);
            }
    mput(out, "# TYPE %smcp_observer_gave_up_total counter\n%smcp_observer_gave_up_total %llu\n", p, p,
         (unsigned long long) ctx->observer_gave_up);
    mput(out, "# TYPE %saudit_records_total counter\n%saudit_records_total %llu\n", p, p,
         (unsigned long long) gw_audit_records(ctx->audit));
    mput(out, "# TYPE %saudit_dropped_total counter\n%saudit_dropped_total %llu\n", p, p,
         (unsigned long long) gw_audit_dropped(ctx->audit));
}

static void on_outcome(void *arg, const char *method, const char *status)
{
    struct gw_stream *s = arg;
    size_t m = N_METHODS - 1, o = 0;
    if (!s->route)
        return;
    for (size_t i = 0; method && i < N_METHODS - 1; i++)
        if (strcmp(method, mcp_methods[i]) == 0)
            m = i;
    for (size_t i = 0; i < GW_OUTCOMES; i++)
        if (strcmp(status, outcome_names[i]) == 0)
            o = i;
    s->ctx->mcp[(gw_route_index(s->ctx, s->route) * N_METHODS + m) * GW_OUTCOMES + o]++;
}

/* ---- one stream ---------------------------------------------------------- */

static const char *const state_names[] = { "handshake", "connecting", "open", "closed" };

void gw_stream_set_state(struct gw_stream *s, enum gw_stream_state next)
{
    assert(s->state != GW_S_CLOSED);
    al_log(AL_DEBUG, "stream.state", AL_U64("stream", s->id), AL_STR("from", state_names[s->state]),
           AL_STR("to", state_names[next]));
    s->state = next;
}

static void stream_reap(evutil_socket_t fd, short what, void *arg)
{
    struct gw_stream *s = arg;
    struct gw_ctx *ctx = s->ctx;

    if (s->prev)
        s->prev->next = s->next;
    else
        ctx->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ctx->streams_active--;
    event_free(s->reap);
    al_inner_sess_free(s->tls);
    free(s->client_ip);
    free(s);
}

/* Everything but the struct itself goes now; the struct at the next tick,
 * since we may be deep inside one of its callbacks. */
static void stream_teardown(struct gw_stream *s)
{
    if (s->state == GW_S_CLOSED)
        return;
    gw_stream_set_state(s, GW_S_CLOSED);
    gw_upstream_cancel(s);
    if (s->timer)
        event_free(s->timer);
    s->timer = NULL;
    s->audit = gw_audit_stream_free(s->audit);   /* writes the "aborted" lines */
    s->h1 = gw_h1_free(s->h1);
    event_active(s->reap, EV_TIMEOUT, 0);
}

static void hs_result(struct gw_stream *s, enum gw_hs_result r)
{
    s->ctx->handshakes[r]++;
    if (r != GW_HS_OK)
        al_log(AL_INFO, "stream.handshake_failed", AL_U64("stream", s->id), AL_STR("result", hs_names[r]),
               AL_STR("sni", al_inner_sni(s->tls)));
}

/* Ciphertext waiting in the TLS session goes to the pipe. */
static int flush_out(struct gw_stream *s)
{
    char buf[IO_CHUNK];
    size_t n;
    while (s->state != GW_S_CLOSED && (n = al_inner_take_out(s->tls, buf, sizeof(buf))) > 0) {
        if (s->ops->write(s->pipe, buf, n) < 0) {
            stream_teardown(s);   /* the pipe is gone: no close() */
            return -EPIPE;
        }
    }
    return s->state == GW_S_CLOSED ? -EPIPE : 0;
}

void gw_stream_finish(struct gw_stream *s, bool abort)
{
    if (s->state == GW_S_CLOSED)
        return;
    if (!abort) {
        al_inner_shutdown(s->tls);
        if (flush_out(s) < 0)
            return;
    }
    s->ops->close(s->pipe, abort);
    stream_teardown(s);
}

static void observe(struct gw_stream *s, int dir, const void *data, size_t len)
{
    if (!s->h1 || gw_h1_failure(s->h1))
        return;
    if (gw_h1_feed(s->h1, dir, data, len) < 0) {
        s->ctx->observer_gave_up++;
        al_log(AL_INFO, "stream.observer_gave_up", AL_U64("stream", s->id), AL_STR("why", gw_h1_failure(s->h1)));
    }
}

int gw_stream_send_plain(struct gw_stream *s, const void *data, size_t len, bool observe_it)
{
    if (s->state == GW_S_CLOSED)
        return -EPIPE;
    if (al_inner_write(s->tls, data, len) < 0) {
        gw_stream_finish(s, true);
        return -EPROTO;
    }
    s->replied = true;
    int r = flush_out(s);
    if (r == 0 && observe_it)
        observe(s, 1, data, len);
    return r;
}

/* Credits the pipe with ciphertext that OpenSSL has taken in. */
static void credit(struct gw_stream *s)
{
    uint64_t done = s->fed - al_inner_pending_in(s->tls);
    if (s->state != GW_S_CLOSED && done > s->credited) {
        size_t n = (size_t) (done - s->credited);
        s->credited = done;
        s->ops->consumed(s->pipe, n);
    }
}

static int on_sni(void *arg, const char *name)
{
    struct gw_stream *s = arg;
    struct gw_ctx *ctx = s->ctx;
    s->route = gw_route_match(&ctx->routes, name, s->direct ? NULL : ctx->tunnel_hostname, s->direct);
    return s->route ? 0 : -ENOENT;
}

static void client_ended(struct gw_stream *s)
{
    s->client_eof = true;
    if (s->h1)
        gw_h1_eof(s->h1, 0);
    gw_upstream_shutdown_when_flushed(s);
}

static int handshake(struct gw_stream *s)
{
    int r = al_inner_handshake(s->tls);
    if (flush_out(s) < 0)
        return -EPIPE;
    if (r == 0)
        return 0;
    if (r < 0) {
        hs_result(s, r == -ENOENT ? GW_HS_UNKNOWN_SNI : GW_HS_FAILED);
        s->ops->close(s->pipe, false);   /* the alert goes out first */
        stream_teardown(s);
        return -EPROTO;
    }
    hs_result(s, GW_HS_OK);
    if (s->timer)
        event_free(s->timer);
    s->timer = NULL;
    gw_audit_stream_set_route(s->audit, s->route->name, s->route->url, al_inner_sni(s->tls));
    al_log(AL_DEBUG, "stream.routed", AL_U64("stream", s->id), AL_STR("route", s->route->name),
           AL_STR("tls", al_inner_version(s->tls)));
    gw_stream_set_state(s, GW_S_CONNECTING);
    gw_upstream_start(s);
    return s->state == GW_S_CLOSED ? -EPIPE : 1;
}

void gw_stream_pump_in(struct gw_stream *s)
{
    char buf[IO_CHUNK];

    if (s->state == GW_S_HANDSHAKE && handshake(s) <= 0) {
        if (s->state != GW_S_CLOSED) {
            credit(s);
            if (s->client_eof) {   /* EOF in the middle of the handshake */
                hs_result(s, GW_HS_EOF);
                gw_stream_finish(s, false);
            }
        }
        return;
    }
    while (s->state != GW_S_CLOSED && !s->client_eof) {
        if (evbuffer_get_length(bufferevent_get_output(s->up)) > GW_UP_OUT_HIGH) {
            s->in_paused = true;   /* the upstream write callback resumes us */
            break;
        }
        ssize_t n = al_inner_read(s->tls, buf, sizeof(buf));
        if (n == -EAGAIN)
            break;
        if (n == -EPROTO) {
            /* A TLS error, or the transport's EOF without close_notify: the
             * client is gone (crashed or aborted), so the request is too. */
            al_log(AL_DEBUG, "stream.client_abort", AL_U64("stream", s->id), AL_BOOL("eof", s->in_eof));
            gw_stream_finish(s, true);
            return;
        }
        if (n == 0) {   /* close_notify: the client sends nothing more */
            client_ended(s);
            break;
        }
        if (bufferevent_write(s->up, buf, (size_t) n) < 0) {
            gw_stream_finish(s, true);
            return;
        }
        observe(s, 0, buf, (size_t) n);
    }
    if (flush_out(s) == 0)   /* e.g. TLS 1.3 session tickets, key updates */
        credit(s);
}

static void on_hs_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct gw_stream *s = arg;
    hs_result(s, GW_HS_TIMEOUT);
    gw_stream_finish(s, true);
}

static char *client_ip_of(const char *addr)
{
    if (!addr)
        return NULL;
    if (addr[0] == '[') {
        const char *e = strchr(addr, ']');
        return e ? al_xstrndup(addr + 1, (size_t) (e - addr - 1)) : al_xstrdup(addr);
    }
    const char *c = strrchr(addr, ':');
    return c && strchr(addr, ':') == c ? al_xstrndup(addr, (size_t) (c - addr)) : al_xstrdup(addr);
}

struct gw_stream *gw_stream_open(struct gw_ctx *ctx, const struct gw_stream_meta *meta,
                                 const struct gw_pipe_ops *ops, void *pipe)
{
    struct gw_stream *s = al_xcalloc(1, sizeof(*s));

    s->ctx = ctx;
    s->ops = ops;
    s->pipe = pipe;
    s->id = meta->stream_id;
    s->direct = meta->tunnel_id == NULL;
    s->client_ip = client_ip_of(meta->client_addr);
    s->tls = al_inner_sess_new(ctx->tls, on_sni, s);
    s->reap = event_new(ctx->base, -1, 0, stream_reap, s);
    s->timer = evtimer_new(ctx->base, on_hs_timeout, s);
    if (!s->tls || !s->reap || !s->timer) {
        al_inner_sess_free(s->tls);
        if (s->reap)
            event_free(s->reap);
        if (s->timer)
            event_free(s->timer);
        free(s->client_ip);
        free(s);
        return NULL;
    }
    struct timeval tv = { GW_HANDSHAKE_TIMEOUT_S, 0 };
    evtimer_add(s->timer, &tv);
    struct gw_audit_stream_info info = {
        .tunnel = meta->tunnel_id, .conn = meta->conn_label, .client_ip = s->client_ip,
        .sni = meta->sni, .stream = meta->stream_id,
    };
    s->audit = gw_audit_stream_new(ctx->audit, &info, on_outcome, s);
    s->h1 = gw_h1_new(&gw_audit_h1_cb, s->audit);
    gw_audit_stream_set_h1(s->audit, s->h1);
    s->next = ctx->streams;
    if (s->next)
        s->next->prev = s;
    ctx->streams = s;
    ctx->streams_active++;
    ctx->streams_opened++;
    return s;
}

void gw_stream_input(struct gw_stream *s, const void *data, size_t len)
{
    if (s->state == GW_S_CLOSED || len == 0)
        return;
    al_inner_feed(s->tls, data, len);
    s->fed += len;
    if (!s->in_paused)
        gw_stream_pump_in(s);
}

void gw_stream_input_eof(struct gw_stream *s)
{
    if (s->state == GW_S_CLOSED || s->client_eof)
        return;
    al_inner_feed_eof(s->tls);
    s->in_eof = true;
    if (s->state == GW_S_HANDSHAKE) {
        s->client_eof = true;
        gw_stream_pump_in(s);
        return;
    }
    if (!s->in_paused)
        gw_stream_pump_in(s);
    if (s->state != GW_S_CLOSED && !s->client_eof && !s->in_paused)
        client_ended(s);
}

void gw_stream_reset(struct gw_stream *s)
{
    if (s->state == GW_S_CLOSED)
        return;
    al_log(AL_DEBUG, "stream.reset", AL_U64("stream", s->id));
    stream_teardown(s);
}

void gw_stream_output_drained(struct gw_stream *s)
{
    if (s->state == GW_S_CLOSED)
        return;
    gw_upstream_resume(s);
}
