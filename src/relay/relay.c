/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock relay`: options (docs/internals/TUNNEL.md §5), start-up (outer
 * TLS, the hub client, both listeners, --ready-fd, the admin address), the
 * periodic tunnel refresh, and SIGTERM: GOAWAY to every gateway connection,
 * no new clients, exit once streams are done or --drain-timeout passed. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/map.h"
#include "../lib/base/opt.h"
#include "../lib/base/util.h"
#include "../lib/h2/h2.h"
#include "../lib/http/curl_ev.h"
#include "../lib/http/server.h"
#include "../lib/tls/outer.h"
#include "relay.h"
#include "relay_internal.h"

#define R(field) offsetof(struct relay_config, field)
static const struct al_opt relay_opts[] = {
    { "listen", AL_OPT_STR, R(listen), "127.0.0.1:8443", "client listener (raw TCP; only the ClientHello is read)", "ADDR" },
    { "gateway-listen", AL_OPT_STR, R(gateway_listen), "127.0.0.1:7844", "gateway listener (outer TLS)", "ADDR" },
    { "cert", AL_OPT_STR, R(cert), NULL, "the relay's certificate chain for the gateway listener (required)", "FILE" },
    { "key", AL_OPT_STR, R(key), NULL, "its private key (required)", "FILE" },
    { "hub", AL_OPT_STR, R(hub), "http://127.0.0.1:8080", "hub URL where connector tokens are verified", "URL" },
    { "api-key-file", AL_OPT_STR, R(api_key_file), NULL, "hub API key file (AIRLOCK_API_KEY takes precedence)", "FILE" },
    { "hub-cacert", AL_OPT_STR, R(hub_cacert), NULL, "CA bundle for an https hub", "FILE" },
    { "admin-listen", AL_OPT_STR, R(admin_listen), NULL, "serve /healthz, /readyz and /metrics here", "ADDR" },
    { "ready-fd", AL_OPT_INT, R(ready_fd), "-1", "write \"CLIENT_ADDR GATEWAY_ADDR\" to fd N once listening", "N" },
    { "handshake-timeout", AL_OPT_DURATION, R(handshake_timeout_us), "5s", "the whole ClientHello must arrive within this", "DURATION" },
    { "max-pending-per-ip", AL_OPT_INT, R(max_pending_per_ip), "64", "pending (pre-SNI) client handshakes per source address", "N" },
    { "accept-rate", AL_OPT_INT, R(accept_rate), "50", "gateway connections accepted per second in the first 10 s, ramping up", "N" },
    { "drain-timeout", AL_OPT_DURATION, R(drain_timeout_us), "30s", "on SIGTERM, wait this long for open streams", "DURATION" },
    { "refresh", AL_OPT_DURATION, R(refresh_us), "5s", "re-read the state of connected tunnels from the hub", "DURATION" },
    { "log-level", AL_OPT_STR, R(log_level), "info", "debug, info, warn or error", "LEVEL" },
    { 0 },
};

void relay_format_addr(const void *sa_, char *out, size_t outlen)
{
    const struct sockaddr *sa = sa_;
    char ip[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = sa_;
        (void) inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        (void) snprintf(out, outlen, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = sa_;
        (void) inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        (void) snprintf(out, outlen, "%s:%u", ip, ntohs(s4->sin_port));
    } else {
        (void) snprintf(out, outlen, "unknown:0");
    }
}

int relay_listen_fd(const char *addr, int backlog)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    const char *colon = strrchr(addr, ':');
    int one = 1;

    if (!colon || colon == addr)
        return -EINVAL;
    _cleanup_free_ char *host = addr[0] == '[' && colon[-1] == ']' ? al_xstrndup(addr + 1, (size_t) (colon - addr - 2))
                                                                    : al_xstrndup(addr, (size_t) (colon - addr));
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai)
        return -EADDRNOTAVAIL;
    _cleanup_close_ int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int k = 0;
    if (fd < 0)
        k = -errno;
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
             bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0)
        k = -errno;
    freeaddrinfo(ai);
    return k < 0 ? k : TAKE_FD(fd);
}

void relay_maybe_finish(struct relay *r)
{
    if (r->draining && r->ngws == 0)
        event_base_loopbreak(r->base);
}

/* ---- admin ---- */

static void h_healthz(struct al_req *q, void *ud)
{
    al_reply_text(q, 200, "text/plain", "ok\n");
}

static void h_readyz(struct al_req *q, void *ud)
{
    const struct relay *r = ud;
    al_reply_text(q, r->draining ? 503 : 200, "text/plain", r->draining ? "draining\n" : "ready\n");
}

static void h_metrics(struct al_req *q, void *ud)
{
    const struct relay *r = ud;
    const struct relay_metrics *m = &r->m;
    size_t open = 0, draining = 0;

    for (const struct relay_gw *g = r->gws; g; g = g->next)
        if (g->state == RGW_OPEN)
            *(al_h2_conn_is_draining(g->h2) ? &draining : &open) += 1;
    _cleanup_free_ char *text = al_xasprintf(
        "# TYPE relay_tunnels_online gauge\nrelay_tunnels_online %zu\n"
        "# TYPE relay_gateway_connections gauge\nrelay_gateway_connections{state=\"ready\"} %zu\n"
        "relay_gateway_connections{state=\"draining\"} %zu\nrelay_gateway_connections{state=\"handshake\"} %zu\n"
        "# TYPE relay_gateway_accepts_total counter\nrelay_gateway_accepts_total{result=\"ok\"} %llu\n"
        "relay_gateway_accepts_total{result=\"auth\"} %llu\nrelay_gateway_accepts_total{result=\"bad_request\"} %llu\n"
        "relay_gateway_accepts_total{result=\"draining\"} %llu\nrelay_gateway_accepts_total{result=\"hub_error\"} %llu\n"
        "# TYPE relay_accept_ratelimited_total counter\nrelay_accept_ratelimited_total %llu\n"
        "# TYPE relay_clients gauge\nrelay_clients %zu\nrelay_clients_pending %zu\n"
        "# TYPE relay_clients_total counter\nrelay_clients_total{result=\"routed\"} %llu\n"
        "relay_clients_total{result=\"no_gateway\"} %llu\nrelay_clients_total{result=\"no_certificate\"} %llu\n"
        "relay_clients_total{result=\"stream_refused\"} %llu\nrelay_clients_total{result=\"pending_cap\"} %llu\n"
        "# TYPE relay_sni_unknown_total counter\nrelay_sni_unknown_total %llu\n"
        "# TYPE relay_clienthello_timeouts_total counter\nrelay_clienthello_timeouts_total %llu\n"
        "# TYPE relay_clienthello_bad_total counter\nrelay_clienthello_bad_total %llu\n"
        "# TYPE relay_clienthello_alpn_total counter\nrelay_clienthello_alpn_total{alpn=\"http/1.1\"} %llu\n"
        "relay_clienthello_alpn_total{alpn=\"h2\"} %llu\nrelay_clienthello_alpn_total{alpn=\"other\"} %llu\n"
        "relay_clienthello_alpn_total{alpn=\"none\"} %llu\n"
        "# TYPE relay_bytes_total counter\nrelay_bytes_total{dir=\"to_gateway\"} %llu\n"
        "relay_bytes_total{dir=\"from_gateway\"} %llu\n"
        "# TYPE relay_draining gauge\nrelay_draining %d\n",
        al_map_size(r->tunnels), open, draining, r->ngws - open - draining,
        (unsigned long long) m->gw_accepted, (unsigned long long) m->gw_rejected_auth,
        (unsigned long long) m->gw_rejected_bad, (unsigned long long) m->gw_draining_refused,
        (unsigned long long) m->gw_hub_errors, (unsigned long long) m->gw_ratelimited, r->nclients, r->npending,
        (unsigned long long) m->clients_routed, (unsigned long long) m->sni_no_gateway,
        (unsigned long long) m->sni_no_cert, (unsigned long long) m->streams_refused,
        (unsigned long long) m->pending_cap_refused, (unsigned long long) m->sni_unknown,
        (unsigned long long) m->hello_timeouts, (unsigned long long) m->hello_bad, (unsigned long long) m->alpn_h1,
        (unsigned long long) m->alpn_h2, (unsigned long long) m->alpn_other, (unsigned long long) m->alpn_none,
        (unsigned long long) m->bytes_to_gw, (unsigned long long) m->bytes_from_gw, r->draining ? 1 : 0);
    al_reply_text(q, 200, "text/plain; version=0.0.4", text);
}

static int admin_start(struct relay *r)
{
    static const struct al_route routes[] = {
        { "GET", "/healthz", h_healthz, 0 },
        { "GET", "/readyz", h_readyz, 0 },
        { "GET", "/metrics", h_metrics, 0 },
        { 0 },
    };
    struct al_http_server_config cfg = { .routes = routes, .ud = r, .max_body = 1024, .max_body_hard = 4096,
                                         .idle_timeout_s = 30 };
    _cleanup_free_ char *bound = NULL;

    if (!r->cfg.admin_listen)
        return 0;
    int k = al_http_server_new(r->base, r->cfg.admin_listen, &cfg, &r->admin, &bound);
    if (k < 0)
        return al_log_errno(AL_ERROR, k, "relay.admin_listen", AL_STR("addr", r->cfg.admin_listen));
    al_log(AL_INFO, "relay.admin", AL_STR("url", bound));
    return 0;
}

/* ---- signals and timers ---- */

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct relay *r = arg;
    al_log(AL_WARN, "relay.drain_timeout", AL_U64("gateway_connections", r->ngws));
    relay_gw_close_all(r);
    event_base_loopbreak(r->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct relay *r = arg;

    if (r->draining) {
        if (sig == SIGINT)
            event_base_loopbreak(r->base);
        return;
    }
    r->draining = true;
    al_log(AL_INFO, "relay.draining", AL_U64("gateway_connections", r->ngws), AL_U64("clients", r->nclients));
    relay_client_stop_accepting(r);
    relay_gw_goaway_all(r);
    r->drain_ev = evtimer_new(r->base, on_drain_timeout, r);
    struct timeval tv = { r->cfg.drain_timeout_us / 1000000, r->cfg.drain_timeout_us % 1000000 };
    if (r->drain_ev)
        evtimer_add(r->drain_ev, &tv);
    relay_maybe_finish(r);
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
    relay_tunnels_refresh(arg);
}

/* The verify endpoint answers 401 both for a bad token and for a bad API
 * key; one authenticated read at start tells the operator which it is. */
static void on_hub_check(int err, long status, const char *body, size_t len, void *ud)
{
    struct relay *r = ud;

    if (err == -ECANCELED)
        return;
    if (err == 0 && (status == 401 || status == 403))
        al_log(AL_ERROR, "relay.hub_auth_failed", AL_STR("hub", r->cfg.hub), AL_I64("status", status),
               AL_STR("hint", "check AIRLOCK_API_KEY / --api-key-file: every gateway will be refused"));
    else if (err < 0 || status >= 400)
        al_log(AL_WARN, "relay.hub_unreachable", AL_STR("hub", r->cfg.hub), AL_I64("status", status), AL_ERR(err));
    else
        al_log(AL_INFO, "relay.hub_ok", AL_STR("hub", r->cfg.hub));
}

static void hub_check(struct relay *r)
{
    _cleanup_free_ char *url = al_xasprintf("%s/v1/tunnels?limit=1", r->cfg.hub);
    struct al_curl_req_opts o = { .url = url, .bearer = r->api_key, .timeout_ms = 10000,
                                  .cainfo = r->cfg.hub_cacert, .max_response = 1 << 20 };
    if (al_curl_request(r->curl, &o, on_hub_check, r, NULL) < 0)
        al_log(AL_WARN, "relay.hub_unreachable", AL_STR("hub", r->cfg.hub));
}

/* ---- start-up ---- */

static int load_api_key(struct relay *r)
{
    const char *env = secure_getenv("AIRLOCK_API_KEY");
    char buf[512];

    if (env && env[0]) {
        r->api_key = al_xstrdup(env);
        return 0;
    }
    if (!r->cfg.api_key_file) {
        fprintf(stderr, "airlock: relay: the hub API key is needed: set AIRLOCK_API_KEY or --api-key-file\n");
        return -EINVAL;
    }
    FILE *f = fopen(r->cfg.api_key_file, "re");
    if (!f || !fgets(buf, sizeof(buf), f)) {
        if (f)
            fclose(f);
        fprintf(stderr, "airlock: relay: cannot read --api-key-file %s\n", r->cfg.api_key_file);
        return -EINVAL;
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    r->api_key = al_xstrdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

static int check_config(struct relay *r, enum al_log_level *lvl)
{
    if (al_log_level_parse(r->cfg.log_level, lvl) < 0) {
        fprintf(stderr, "airlock: --log-level: expected debug, info, warn or error\n");
        return -EINVAL;
    }
    if (!r->cfg.cert || !r->cfg.key) {
        fprintf(stderr, "airlock: relay: --cert and --key are required\n");
        return -EINVAL;
    }
    if (r->cfg.handshake_timeout_us < 100000 || r->cfg.refresh_us < 100000 || r->cfg.drain_timeout_us < 0 ||
        r->cfg.max_pending_per_ip < 1 || r->cfg.accept_rate < 0) {
        fprintf(stderr, "airlock: relay: --handshake-timeout/--refresh must be >= 100ms, "
                        "--max-pending-per-ip >= 1, --accept-rate >= 0\n");
        return -EINVAL;
    }
    size_t hl = strlen(r->cfg.hub);
    while (hl > 0 && r->cfg.hub[hl - 1] == '/')
        r->cfg.hub[--hl] = '\0';
    return 0;
}

static int relay_start(struct relay *r)
{
    char why[256];
    int k;

    k = al_outer_server_new(r->cfg.cert, r->cfg.key, &r->tls, why, sizeof(why));
    if (k < 0)
        return al_log_errno(AL_ERROR, k, "relay.tls", AL_STR("why", why));
    r->base = al_h2_event_base_new();
    r->curl = r->base ? al_curl_new(r->base) : NULL;
    if (!r->curl)
        return al_log_errno(AL_ERROR, -ENOMEM, "relay.init");
    r->tunnels = al_map_new();
    r->hostnames = al_map_new();
    r->pending = al_map_new();
    r->start_us = al_mono_us();
    k = relay_client_listen(r);
    if (k < 0)
        return al_log_errno(AL_ERROR, k, "relay.listen", AL_STR("addr", r->cfg.listen));
    k = relay_gw_listen(r);
    if (k < 0)
        return al_log_errno(AL_ERROR, k, "relay.gateway_listen", AL_STR("addr", r->cfg.gateway_listen));
    if (admin_start(r) < 0)
        return -EINVAL;
    r->sigterm = evsignal_new(r->base, SIGTERM, on_signal, r);
    r->sigint = evsignal_new(r->base, SIGINT, on_signal, r);
    r->refresh_ev = event_new(r->base, -1, EV_PERSIST, on_refresh, r);
    if (!r->sigterm || !r->sigint || !r->refresh_ev)
        return -ENOMEM;
    event_add(r->sigterm, NULL);
    event_add(r->sigint, NULL);
    struct timeval tv = { r->cfg.refresh_us / 1000000, r->cfg.refresh_us % 1000000 };
    event_add(r->refresh_ev, &tv);
    hub_check(r);
    return 0;
}

static void relay_done(struct relay *r)
{
    relay_gw_close_all(r);
    relay_clients_free_all(r);
    r->draining = false;
    if (r->client_l)
        evconnlistener_free(r->client_l);
    if (r->gw_l)
        evconnlistener_free(r->gw_l);
    r->admin = al_http_server_free(r->admin);
    r->curl = al_curl_free(r->curl);
    relay_tunnels_free(r);
    r->tunnels = al_map_free(r->tunnels);
    r->hostnames = al_map_free(r->hostnames);
    r->pending = al_map_free(r->pending);
    if (r->sigterm)
        event_free(r->sigterm);
    if (r->sigint)
        event_free(r->sigint);
    if (r->refresh_ev)
        event_free(r->refresh_ev);
    if (r->drain_ev)
        event_free(r->drain_ev);
    if (r->base)
        event_base_free(r->base);
    r->tls = al_outer_free(r->tls);
    if (r->api_key)
        explicit_bzero(r->api_key, strlen(r->api_key));
    free(r->api_key);
    free(r->client_addr);
    free(r->gateway_addr);
}

int al_relay_main(int argc, char **argv)
{
    struct relay r = { 0 };
    struct al_opts_result res;
    enum al_log_level lvl = AL_INFO;
    int rc = 1;

    if (al_opts_load(relay_opts, &r.cfg, argc, argv, &res) < 0)
        return 2;
    free(res.args);
    if (res.help) {
        al_opts_help(relay_opts, "airlock relay --cert FILE --key FILE [OPTIONS]",
                     "Run the public edge of the MCP tunnels: accept gateway connections (outer TLS and a\n"
                     "connector token checked with the hub), read only the SNI of client TLS connections, and\n"
                     "carry each one's raw bytes on an HTTP/2 stream of a gateway connection of its tunnel.");
        al_opts_free(relay_opts, &r.cfg);
        return 0;
    }
    if (check_config(&r, &lvl) < 0 || load_api_key(&r) < 0) {
        al_opts_free(relay_opts, &r.cfg);
        free(r.api_key);
        return 2;
    }
    al_log_setup("relay", lvl, 2);
    struct sigaction sa = { .sa_handler = SIG_IGN };
    sigaction(SIGPIPE, &sa, NULL);
    if (relay_start(&r) == 0) {
        al_log(AL_INFO, "relay.listening", AL_STR("listen", r.client_addr), AL_STR("gateway_listen", r.gateway_addr),
               AL_STR("hub", r.cfg.hub), AL_STR("nghttp2", al_h2_version()));
        _cleanup_free_ char *line = al_xasprintf("%s %s", r.client_addr, r.gateway_addr);
        al_ready_notify((int) r.cfg.ready_fd, line);
        event_base_dispatch(r.base);
        rc = 0;
        al_log(AL_INFO, "relay.stopped");
    }
    relay_done(&r);
    al_opts_free(relay_opts, &r.cfg);
    return rc;
}
