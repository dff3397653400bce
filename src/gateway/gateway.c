/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock gateway`: options (docs/internals/TUNNEL.md §5), start-up (the
 * stream side's context, outer TLS, --connections relay slots, the direct
 * listener, the admin address), the connector token (polled every second,
 * re-read on SIGHUP: new connections first, then the old ones drained), and
 * SIGTERM: /readyz 503 at once, GOAWAY, drain, exit 0. */
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/base/log.h"
#include "../lib/base/opt.h"
#include "../lib/base/util.h"
#include "../lib/h2/h2.h"
#include "../lib/http/server.h"
#include "../lib/tls/outer.h"
#include "conn.h"
#include "gateway.h"
#include "stream.h"

#define G(field) offsetof(struct gateway_config, field)
static const struct al_opt gateway_opts[] = {
    { "relay", AL_OPT_LIST, G(relay), NULL, "relay gateway address; connections are spread over them", "HOST:PORT" },
    { "relay-ca", AL_OPT_STR, G(relay_ca), NULL, "CA for the relay's certificate (default: the system store)", "FILE" },
    { "relay-name", AL_OPT_STR, G(relay_name), NULL, "SNI and verified name of the relay (default: the HOST of --relay)", "NAME" },
    { "token-file", AL_OPT_STR, G(token_file), NULL, "the connector token; re-read on change and on SIGHUP (required with --relay)", "FILE" },
    { "connections", AL_OPT_INT, G(connections), "4", "relay connections kept (1-8)", "N" },
    { "route", AL_OPT_LIST, G(route), NULL, "upstream http://host:port[/path] for SNI NAME.<tunnel hostname>", "NAME=URL" },
    { "cert", AL_OPT_STR, G(cert), NULL, "inner TLS certificate chain (reloaded on SIGHUP; required)", "FILE" },
    { "key", AL_OPT_STR, G(key), NULL, "inner TLS private key (required)", "FILE" },
    { "allowed-ips", AL_OPT_STR, G(allowed_ips), "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
      "upstream addresses allowed", "LIST" },
    { "audit-log", AL_OPT_STR, G(audit_log), NULL, "JSON Lines audit log, - for stdout", "FILE" },
    { "audit-key-file", AL_OPT_STR, G(audit_key_file), NULL, "HMAC key for argument digests (default: random per process)", "FILE" },
    { "audit-key-id", AL_OPT_STR, G(audit_key_id), "k0", "key id recorded with each digest", "ID" },
    { "admin-listen", AL_OPT_STR, G(admin_listen), NULL, "serve /healthz, /readyz and /metrics here", "ADDR" },
    { "listen-tls", AL_OPT_STR, G(listen_tls), NULL, "direct inner-TLS listener, no relay", "ADDR" },
    { "ready-fd", AL_OPT_INT, G(ready_fd), "-1", "write the first ready relay address (or the --listen-tls address) to fd N", "N" },
    { "ping-interval", AL_OPT_DURATION, G(ping_interval_us), "10s", "PING relay connections this often", "DURATION" },
    { "ping-timeout", AL_OPT_DURATION, G(ping_timeout_us), "15s", "a relay connection silent this long after a PING is dead", "DURATION" },
    { "drain-timeout", AL_OPT_DURATION, G(drain_timeout_us), "30s", "GOAWAY drain of replaced connections and on SIGTERM", "DURATION" },
    { "log-level", AL_OPT_STR, G(log_level), "info", "debug, info, warn or error", "LEVEL" },
    { 0 },
};

void gw_maybe_exit(struct gateway *gw)
{
    if (gw->stopping && !gw->conns)
        event_base_loopbreak(gw->base);
}

/* ---- the connector token ---- */

/* Reads the token file; returns 1 when the token changed, 0 when not, or
 * -errno (the old token stays). Never logs the token. */
static int token_load(struct gateway *gw)
{
    char buf[AL_TOKEN_MAX + 2];
    struct stat st;
    FILE *f = fopen(gw->cfg.token_file, "re");

    if (!f)
        return -errno;
    if (fstat(fileno(f), &st) < 0) {
        fclose(f);
        return -errno;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    gw->token_ino = st.st_ino;
    gw->token_mtime_ns = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    gw->token_size = st.st_size;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    bool ok = n > 0 && n <= AL_TOKEN_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = buf[i] > ' ' && buf[i] <= '~';
    if (!ok) {
        explicit_bzero(buf, sizeof(buf));
        return -EBADMSG;
    }
    bool changed = !gw->token || strcmp(gw->token, buf) != 0;
    if (changed) {
        if (gw->token)
            explicit_bzero(gw->token, strlen(gw->token));
        free(gw->token);
        gw->token = al_xstrdup(buf);
        gw->token_gen++;
        gw->token_loaded_us = al_now_us();
    }
    explicit_bzero(buf, sizeof(buf));
    return changed;
}

static void token_reload(struct gateway *gw, bool force)
{
    int k = token_load(gw);
    if (k < 0) {
        al_log(AL_WARN, "gw.token_unreadable", AL_STR("file", gw->cfg.token_file), AL_ERR(k));
        return;
    }
    if (k == 0 && !force)
        return;
    if (k == 0)
        gw->token_gen++;            /* SIGHUP: reconnect all the same, make-before-break */
    al_log(AL_INFO, "gw.token_reloaded", AL_BOOL("changed", k > 0), AL_U64("generation", gw->token_gen));
    gw_slots_rotate(gw);
}

static void on_token_poll(evutil_socket_t fd, short what, void *arg)
{
    struct gateway *gw = arg;
    struct stat st;

    if (gw->stopping || stat(gw->cfg.token_file, &st) < 0)
        return;
    int64_t mt = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (st.st_ino != gw->token_ino || mt != gw->token_mtime_ns || st.st_size != gw->token_size)
        token_reload(gw, false);
}

/* ---- signals ---- */

static void on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct gateway *gw = arg;
    al_log(AL_WARN, "gw.drain_timeout", AL_U64("connections", gw_conns_count(gw, GC_DRAINING)));
    event_base_loopbreak(gw->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct gateway *gw = arg;

    if (sig == SIGHUP) {
        int k = gw->ctx ? gw_ctx_reload_cert(gw->ctx) : 0;
        al_log(k < 0 ? AL_WARN : AL_INFO, "gw.sighup", AL_BOOL("cert_reloaded", k == 0), AL_ERR(k < 0 ? k : 0));
        if (gw->cfg.relay && !gw->stopping)
            token_reload(gw, true);
        return;
    }
    if (gw->stopping) {
        event_base_loopbreak(gw->base);      /* a second signal: now */
        return;
    }
    gw->stopping = true;
    al_log(AL_INFO, "gw.stopping", AL_U64("ready", gw_conns_count(gw, GC_READY)));
    gw_conns_stop(gw);
    struct timeval tv = { gw->cfg.drain_timeout_us / 1000000, gw->cfg.drain_timeout_us % 1000000 };
    evtimer_add(gw->stop_ev, &tv);
    gw_maybe_exit(gw);
}

/* ---- start-up ---- */

static int check_config(struct gateway *gw, enum al_log_level *lvl)
{
    const struct gateway_config *c = &gw->cfg;

    if (al_log_level_parse(c->log_level, lvl) < 0) {
        fprintf(stderr, "airlock: --log-level: expected debug, info, warn or error\n");
        return -EINVAL;
    }
    if (!c->cert || !c->key) {
        fprintf(stderr, "airlock: gateway: --cert and --key are required\n");
        return -EINVAL;
    }
    if (!c->relay && !c->listen_tls) {
        fprintf(stderr, "airlock: gateway: give --relay (with --token-file) or --listen-tls\n");
        return -EINVAL;
    }
    if (c->relay && !c->token_file) {
        fprintf(stderr, "airlock: gateway: --token-file is required with --relay\n");
        return -EINVAL;
    }
    if (c->connections < 1 || c->connections > GW_MAX_CONNECTIONS) {
        fprintf(stderr, "airlock: gateway: --connections must be between 1 and 8\n");
        return -EINVAL;
    }
    if (c->ping_interval_us < 100000 || c->ping_timeout_us < 100000 || c->drain_timeout_us < 0) {
        fprintf(stderr, "airlock: gateway: --ping-interval and --ping-timeout must be at least 100ms\n");
        return -EINVAL;
    }
    for (char **r = c->relay; r && *r; r++) {
        _cleanup_free_ char *h = NULL, *p = NULL;
        if (gw_split_hostport(*r, &h, &p) < 0) {
            fprintf(stderr, "airlock: gateway: --relay %s: expected HOST:PORT or [V6]:PORT\n", *r);
            return -EINVAL;
        }
    }
    return 0;
}

static int gateway_start(struct gateway *gw)
{
    char why[256];
    unsigned char rnd[16];
    int k;

    al_random(rnd, sizeof(rnd));
    al_hex(rnd, sizeof(rnd), gw->connector_id);
    gw->base = al_h2_event_base_new();
    if (!gw->base)
        return -ENOMEM;
    const struct gw_stream_config sc = {
        .routes = gw->cfg.route, .cert_file = gw->cfg.cert, .key_file = gw->cfg.key,
        .allowed_ips = gw->cfg.allowed_ips, .audit_path = gw->cfg.audit_log,
        .audit_key_file = gw->cfg.audit_key_file, .audit_key_id = gw->cfg.audit_key_id,
        .audit_queue_max = 4096, .tunnel_hostname = NULL,
    };
    gw->ctx = gw_ctx_new(gw->base, &sc);
    if (!gw->ctx)
        return -EINVAL;                       /* gw_ctx_new logged why */
    gw->stop_ev = evtimer_new(gw->base, on_stop_timeout, gw);
    gw->sigterm = evsignal_new(gw->base, SIGTERM, on_signal, gw);
    gw->sigint = evsignal_new(gw->base, SIGINT, on_signal, gw);
    gw->sighup = evsignal_new(gw->base, SIGHUP, on_signal, gw);
    if (!gw->stop_ev || !gw->sigterm || !gw->sigint || !gw->sighup)
        return -ENOMEM;
    event_add(gw->sigterm, NULL);
    event_add(gw->sigint, NULL);
    event_add(gw->sighup, NULL);
    if (gw_admin_start(gw) < 0)
        return -EINVAL;
    if (gw->cfg.listen_tls) {
        char bound[128];
        k = gw_direct_listen(gw->ctx, gw->cfg.listen_tls, bound, sizeof(bound));
        if (k < 0)
            return al_log_errno(AL_ERROR, k, "gw.listen_tls", AL_STR("addr", gw->cfg.listen_tls));
        gw->direct_addr = al_xstrdup(bound);
        al_log(AL_INFO, "gw.listening", AL_STR("listen_tls", bound));
        if (!gw->cfg.relay) {
            al_ready_notify(gw->ready_fd, bound);
            gw->ready_fd = -1;
        }
    }
    if (!gw->cfg.relay)
        return 0;
    k = al_outer_client_new(gw->cfg.relay_ca, &gw->tls, why, sizeof(why));
    if (k < 0)
        return al_log_errno(AL_ERROR, k, "gw.relay_tls", AL_STR("why", why));
    k = token_load(gw);
    if (k < 0)
        return al_log_errno(AL_ERROR, k, "gw.token_file", AL_STR("file", gw->cfg.token_file));
    gw->dns = evdns_base_new(gw->base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!gw->dns)
        gw->dns = evdns_base_new(gw->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    gw->token_ev = event_new(gw->base, -1, EV_PERSIST, on_token_poll, gw);
    if (!gw->dns || !gw->token_ev)
        return -ENOMEM;
    struct timeval tv = { 1, 0 };
    event_add(gw->token_ev, &tv);
    gw->nslots = (int) gw->cfg.connections;
    for (int i = 0; i < gw->nslots; i++) {
        gw->slots[i] = (struct gw_slot){ .gw = gw, .idx = i };
        gw_slot_start(&gw->slots[i]);
    }
    al_log(AL_INFO, "gw.started", AL_STR("connector", gw->connector_id), AL_I64("connections", gw->nslots),
           AL_STR("nghttp2", al_h2_version()));
    return 0;
}

static void gateway_done(struct gateway *gw)
{
    gw->stopping = true;
    gw_conns_free_all(gw);
    for (int i = 0; i < gw->nslots; i++)
        if (gw->slots[i].retry_ev)
            event_free(gw->slots[i].retry_ev);
    gw->admin = al_http_server_free(gw->admin);
    gw_ctx_free(gw->ctx);
    if (gw->dns)
        evdns_base_free(gw->dns, 1);   /* fails what is pending: each dial frees itself */
    struct event *evs[] = { gw->sigterm, gw->sigint, gw->sighup, gw->token_ev, gw->stop_ev };
    for (size_t i = 0; i < AL_ELEMENTSOF(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    if (gw->base)
        event_base_free(gw->base);
    gw->tls = al_outer_free(gw->tls);
    if (gw->token)
        explicit_bzero(gw->token, strlen(gw->token));
    free(gw->token);
    free(gw->tunnel_hostname);
    free(gw->direct_addr);
}

int al_gateway_main(int argc, char **argv)
{
    struct gateway gw = { .ready_fd = -1 };
    struct al_opts_result res;
    enum al_log_level lvl = AL_INFO;
    int rc = 1;

    if (al_opts_load(gateway_opts, &gw.cfg, argc, argv, &res) < 0)
        return 2;
    free(res.args);
    if (res.help) {
        al_opts_help(gateway_opts, "airlock gateway --relay HOST:PORT --token-file FILE --cert FILE --key FILE [OPTIONS]",
                     "Run the private side of an MCP tunnel: keep outbound connections to the relay, terminate\n"
                     "each client's inner TLS with the operator's certificate, proxy MCP HTTP to the routed\n"
                     "upstream, and write an audit line per MCP call.");
        al_opts_free(gateway_opts, &gw.cfg);
        return 0;
    }
    if (check_config(&gw, &lvl) < 0) {
        al_opts_free(gateway_opts, &gw.cfg);
        return 2;
    }
    gw.ready_fd = (int) gw.cfg.ready_fd;
    al_log_setup("gateway", lvl, 2);
    struct sigaction sa = { .sa_handler = SIG_IGN };
    sigaction(SIGPIPE, &sa, NULL);
    if (gateway_start(&gw) == 0) {
        event_base_dispatch(gw.base);
        rc = 0;
        al_log(AL_INFO, "gw.stopped");
    }
    gateway_done(&gw);
    al_opts_free(gateway_opts, &gw.cfg);
    return rc;
}
