/* SPDX-License-Identifier: Apache-2.0 */
/* The gateway's admin address (--admin-listen): /healthz (the loop runs),
 * /readyz (200 iff at least one relay connection is ready and we are not
 * stopping; direct mode: iff listening), /metrics (Prometheus text: the
 * transport's counters, then gw_ctx_metrics()). Bind it to loopback. */
#include <stdio.h>
#include <string.h>

#include "../lib/base/buf.h"
#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "../lib/http/server.h"
#include "conn.h"
#include "stream.h"

static const double ping_bounds[8] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5 };

void gw_metrics_ping(struct gateway *gw, double rtt_s)
{
    gw->m.ping_count++;
    gw->m.ping_sum_s += rtt_s;
    for (size_t i = 0; i < AL_ELEMENTSOF(ping_bounds); i++)
        if (rtt_s <= ping_bounds[i])
            gw->m.ping_buckets[i]++;
}

static void h_healthz(struct al_req *r, void *ud)
{
    al_reply_text(r, 200, "text/plain", "ok\n");
}

static void h_readyz(struct al_req *r, void *ud)
{
    const struct gateway *gw = ud;
    size_t ready = gw_conns_count(gw, GC_READY);
    bool ok = !gw->stopping && (ready > 0 || (!gw->cfg.relay && gw->direct_addr));
    _cleanup_free_ char *body = al_xasprintf("{\"ready\":%s,\"readyConnections\":%zu,\"connectorId\":\"%s\"}\n",
                                             ok ? "true" : "false", ready, gw->connector_id);
    al_reply_text(r, ok ? 200 : 503, "application/json", body);
}

static void add(struct al_buf *b, const char *s)
{
    if (al_buf_append(b, s, strlen(s)) < 0)
        return;                    /* past the cap: the text is cut, not the process */
}

_printf_(2, 3) static void addf(struct al_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && al_buf_append(b, line, AL_MIN((size_t) n, sizeof(line) - 1)) < 0)
        return;
}

static void h_metrics(struct al_req *r, void *ud)
{
    struct gateway *gw = ud;
    const struct gateway_metrics *m = &gw->m;
    struct al_buf b = { .max = 1 << 20 };
    static const char *const res[_GW_RES_MAX] = { "ok", "dns", "tcp", "proxy", "tls", "auth", "refused", "protocol" };

    add(&b, "# TYPE tunnel_connections gauge\n");
    addf(&b, "tunnel_connections{state=\"connecting\"} %zu\n",
         gw_conns_count(gw, GC_DIAL) + gw_conns_count(gw, GC_TLS) + gw_conns_count(gw, GC_UPGRADE));
    addf(&b, "tunnel_connections{state=\"ready\"} %zu\n", gw_conns_count(gw, GC_READY));
    addf(&b, "tunnel_connections{state=\"draining\"} %zu\n", gw_conns_count(gw, GC_DRAINING));
    add(&b, "# TYPE tunnel_connect_attempts_total counter\n");
    for (int i = 0; i < _GW_RES_MAX; i++)
        addf(&b, "tunnel_connect_attempts_total{result=\"%s\"} %llu\n", res[i], (unsigned long long) m->attempts[i]);
    add(&b, "# TYPE tunnel_reconnects_total counter\n");
    addf(&b, "tunnel_reconnects_total{reason=\"error\"} %llu\n", (unsigned long long) m->reconnects_error);
    addf(&b, "tunnel_reconnects_total{reason=\"goaway\"} %llu\n", (unsigned long long) m->reconnects_goaway);
    addf(&b, "tunnel_reconnects_total{reason=\"rotation\"} %llu\n", (unsigned long long) m->reconnects_rotation);
    add(&b, "# TYPE tunnel_connect_seconds summary\n");
    addf(&b, "tunnel_connect_seconds_sum %.6f\ntunnel_connect_seconds_count %llu\n", m->connect_sum_s,
         (unsigned long long) m->connect_count);
    add(&b, "# TYPE tunnel_ping_rtt_seconds histogram\n");
    for (size_t i = 0; i < AL_ELEMENTSOF(ping_bounds); i++)
        addf(&b, "tunnel_ping_rtt_seconds_bucket{le=\"%g\"} %llu\n", ping_bounds[i],
             (unsigned long long) m->ping_buckets[i]);
    addf(&b, "tunnel_ping_rtt_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long) m->ping_count);
    addf(&b, "tunnel_ping_rtt_seconds_sum %.6f\ntunnel_ping_rtt_seconds_count %llu\n", m->ping_sum_s,
         (unsigned long long) m->ping_count);
    add(&b, "# TYPE tunnel_streams_active gauge\n");
    addf(&b, "tunnel_streams_active %llu\n", (unsigned long long) m->streams_active);
    add(&b, "# TYPE tunnel_streams_opened_total counter\n");
    addf(&b, "tunnel_streams_opened_total %llu\n", (unsigned long long) m->streams_opened);
    addf(&b, "tunnel_streams_rejected_total %llu\n", (unsigned long long) m->streams_rejected);
    add(&b, "# TYPE tunnel_bytes_total counter\n");
    addf(&b, "tunnel_bytes_total{dir=\"in\"} %llu\n", (unsigned long long) gw_conns_bytes(gw, true));
    addf(&b, "tunnel_bytes_total{dir=\"out\"} %llu\n", (unsigned long long) gw_conns_bytes(gw, false));
    add(&b, "# TYPE token_loaded_timestamp_seconds gauge\n");
    addf(&b, "token_loaded_timestamp_seconds %lld\n", (long long) (gw->token_loaded_us / 1000000));
    add(&b, "# TYPE tunnel_stopping gauge\n");
    addf(&b, "tunnel_stopping %d\n", gw->stopping ? 1 : 0);
    if (gw->ctx)
        gw_ctx_metrics(gw->ctx, &b);
    al_reply_bytes(r, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
    al_buf_clear(&b);
}

int gw_admin_start(struct gateway *gw)
{
    static const struct al_route routes[] = {
        { "GET", "/healthz", h_healthz, 0 },
        { "GET", "/readyz", h_readyz, 0 },
        { "GET", "/metrics", h_metrics, 0 },
        { 0 },
    };
    struct al_http_server_config cfg = { .routes = routes, .ud = gw, .max_body = 1024, .max_body_hard = 4096,
                                         .idle_timeout_s = 30 };
    _cleanup_free_ char *bound = NULL;

    if (!gw->cfg.admin_listen)
        return 0;
    int k = al_http_server_new(gw->base, gw->cfg.admin_listen, &cfg, &gw->admin, &bound);
    if (k < 0)
        return al_log_errno(AL_ERROR, k, "gw.admin_listen", AL_STR("addr", gw->cfg.admin_listen));
    al_log(AL_INFO, "gw.admin", AL_STR("url", bound));
    return 0;
}
