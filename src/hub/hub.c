/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock hub`: configuration, the route table, start-up (store, API key,
 * listener, --ready-fd), the periodic tick (lease expiry, SSE pings) and
 * shutdown on SIGTERM/SIGINT. */
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "../lib/base/log.h"
#include "../lib/base/opt.h"
#include "../lib/base/util.h"
#include "../lib/tls/crypto.h"
#include "hub.h"
#include "mcp_client.h"

#define H(field) offsetof(struct hub_config, field)
const struct al_opt hub_opts[] = {
    { "listen", AL_OPT_STR, H(listen), "127.0.0.1:8080", "HTTP listen address (port 0 picks a free one)", "ADDR" },
    { "data-dir", AL_OPT_STR, H(data_dir), "./var/hub", "directory of the SQLite store and the generated API key", "DIR" },
    { "api-key-file", AL_OPT_STR, H(api_key_file), NULL, "read the API key from FILE (AIRLOCK_API_KEY takes precedence)", "FILE" },
    { "ready-fd", AL_OPT_INT, H(ready_fd), "-1", "write the base URL to fd N once listening, then close it", "N" },
    { "log-level", AL_OPT_STR, H(log_level), "info", "debug, info, warn or error", "LEVEL" },
    { "sync-full", AL_OPT_BOOL, H(sync_full), "false", "fsync every commit (survive power loss, not only kill -9)", NULL },
    { "lease-ttl", AL_OPT_DURATION, H(lease_ttl_us), "90s", "work lease TTL reported to workers (10s..600s)", "DURATION" },
    { "ping-interval", AL_OPT_DURATION, H(ping_interval_us), "15s", "SSE keep-alive ping interval", "DURATION" },
    { "idle-timeout", AL_OPT_DURATION, H(idle_timeout_us), "120s", "close idle connections, and clients that stop reading, after this (whole seconds)", "DURATION" },
    { "max-body", AL_OPT_INT, H(max_body), "4194304", "largest JSON request body, bytes", "BYTES" },
    { "max-poll-waiters", AL_OPT_INT, H(max_poll_waiters), "20000", "parked long-polls before polls answer at once", "N" },
    { "max-streams", AL_OPT_INT, H(max_streams), "20000", "open event streams before new ones get 503", "N" },
    { "tunnel-domain", AL_OPT_STR, H(tunnel_domain), "tunnels.localhost", "tunnel hostnames are <16 hex>.DOMAIN", "DOMAIN" },
    { "tunnel-relay", AL_OPT_STR, H(tunnel_relay), NULL, "the relay's client address: MCP servers under the tunnel domain are reached through it", "HOST:PORT" },
    { "mcp-cacert", AL_OPT_STR, H(mcp_cacert), NULL, "CA bundle for https MCP servers outside tunnels (default: the system store)", "FILE" },
    { "mcp-timeout", AL_OPT_DURATION, H(mcp_timeout_us), "60s", "limit for one MCP tool call, all of its requests together", "DURATION" },
    { "mcp-max-response", AL_OPT_INT, H(mcp_max_response), "4194304", "largest MCP response body, bytes", "BYTES" },
    { 0 },
};
#undef H

static const struct al_route routes[] = {
    { "GET", "/healthz", NULL, 0 },   /* filled in below: handlers live in this file */
    { "GET", "/metrics", NULL, 0 },
    { "POST", "/v1/environments", h_env_create, 0 },
    { "GET", "/v1/environments", h_env_list, 0 },
    { "GET", "/v1/environments/{id}", h_env_get, 0 },
    { "POST", "/v1/environments/{id}", h_env_update, 0 },
    { "POST", "/v1/environments/{id}/archive", h_env_archive, 0 },
    { "DELETE", "/v1/environments/{id}", h_env_delete, 0 },
    { "POST", "/v1/environments/{id}/keys", h_env_key_create, 0 },
    { "GET", "/v1/environments/{id}/keys", h_env_key_list, 0 },
    { "POST", "/v1/environments/{id}/keys/{key}/revoke", h_env_key_revoke, 0 },
    { "GET", "/v1/environments/{id}/work/poll", h_work_poll, 0 },
    { "GET", "/v1/environments/{id}/work/stats", h_work_stats, 0 },
    { "POST", "/v1/environments/{id}/work/healthcheck", h_work_healthcheck, 0 },
    { "GET", "/v1/environments/{id}/work", h_work_list, 0 },
    { "GET", "/v1/environments/{id}/work/{work}", h_work_get, 0 },
    { "POST", "/v1/environments/{id}/work/{work}", h_work_update, 0 },
    { "POST", "/v1/environments/{id}/work/{work}/ack", h_work_ack, 0 },
    { "POST", "/v1/environments/{id}/work/{work}/heartbeat", h_work_heartbeat, 0 },
    { "POST", "/v1/environments/{id}/work/{work}/stop", h_work_stop, 0 },
    { "POST", "/v1/agents", h_agent_create, 0 },
    { "GET", "/v1/agents", h_agent_list, 0 },
    { "GET", "/v1/agents/{id}", h_agent_get, 0 },
    { "POST", "/v1/agents/{id}", h_agent_update, 0 },
    { "POST", "/v1/agents/{id}/archive", h_agent_archive, 0 },
    { "GET", "/v1/agents/{id}/versions", h_agent_versions, 0 },
    { "POST", "/v1/sessions", h_session_create, 0 },
    { "GET", "/v1/sessions", h_session_list, 0 },
    { "GET", "/v1/sessions/{id}", h_session_get, 0 },
    { "POST", "/v1/sessions/{id}", h_session_update, 0 },
    { "POST", "/v1/sessions/{id}/archive", h_session_archive, 0 },
    { "DELETE", "/v1/sessions/{id}", h_session_delete, 0 },
    { "GET", "/v1/sessions/{id}/events", h_events_list, 0 },
    { "POST", "/v1/sessions/{id}/events", h_events_send, 0 },
    { "GET", "/v1/sessions/{id}/events/stream", h_events_stream, 0 },
    { "POST", "/v1/skills", h_skill_create, 32u << 20 },
    { "GET", "/v1/skills", h_skill_list, 0 },
    { "GET", "/v1/skills/{id}", h_skill_get, 0 },
    { "POST", "/v1/skills/{id}/versions", h_skill_version_create, 32u << 20 },
    { "GET", "/v1/skills/{id}/versions", h_skill_version_list, 0 },
    { "GET", "/v1/skills/{id}/versions/{version}", h_skill_version_get, 0 },
    { "GET", "/v1/skills/{id}/versions/{version}/content", h_skill_version_content, 0 },
    /* connect/verify before every /v1/tunnels/{id}/... pattern, so that no
     * later route can read "connect" as a tunnel id. */
    { "POST", "/v1/tunnels/connect/verify", h_tunnel_verify, 0 },
    { "POST", "/v1/tunnels", h_tunnel_create, 0 },
    { "GET", "/v1/tunnels", h_tunnel_list, 0 },
    { "GET", "/v1/tunnels/{id}", h_tunnel_get, 0 },
    { "POST", "/v1/tunnels/{id}/archive", h_tunnel_archive, 0 },
    { "POST", "/v1/tunnels/{id}/reveal_token", h_tunnel_reveal_token, 0 },
    { "POST", "/v1/tunnels/{id}/rotate_token", h_tunnel_rotate_token, 0 },
    { "POST", "/v1/tunnels/{id}/certificates", h_tunnel_cert_create, 64u << 10 },
    { "GET", "/v1/tunnels/{id}/certificates", h_tunnel_cert_list, 0 },
    { "GET", "/v1/tunnels/{id}/certificates/{cert}", h_tunnel_cert_get, 0 },
    { "POST", "/v1/tunnels/{id}/certificates/{cert}/archive", h_tunnel_cert_archive, 0 },
    { 0 },
};

static void h_healthz(struct al_req *r, void *ud)
{
    struct hub *h = ud;
    int64_t v = al_store_schema_version(h->store);
    al_reply_json(r, 200, json_pack("{s:s, s:I}", "status", "ok", "schema_version", (json_int_t) v));
}

static void h_metrics(struct al_req *r, void *ud)
{
    struct hub *h = ud;
    _cleanup_free_ char *text = al_xasprintf(
        "# TYPE airlock_hub_http_requests_total counter\nairlock_hub_http_requests_total %llu\n"
        "# TYPE airlock_hub_http_open_requests gauge\nairlock_hub_http_open_requests %llu\n"
        "# TYPE airlock_hub_polls_total counter\nairlock_hub_polls_total %llu\n"
        "# TYPE airlock_hub_polls_empty_total counter\nairlock_hub_polls_empty_total %llu\n"
        "# TYPE airlock_hub_polls_woken_total counter\nairlock_hub_polls_woken_total %llu\n"
        "# TYPE airlock_hub_poll_waiters gauge\nairlock_hub_poll_waiters %zu\n"
        "# TYPE airlock_hub_acks_total counter\nairlock_hub_acks_total %llu\n"
        "# TYPE airlock_hub_heartbeats_total counter\nairlock_hub_heartbeats_total %llu\n"
        "# TYPE airlock_hub_heartbeat_precondition_failed_total counter\n"
        "airlock_hub_heartbeat_precondition_failed_total %llu\n"
        "# TYPE airlock_hub_stops_total counter\nairlock_hub_stops_total %llu\n"
        "# TYPE airlock_hub_leases_expired_total counter\nairlock_hub_leases_expired_total %llu\n"
        "# TYPE airlock_hub_events_appended_total counter\nairlock_hub_events_appended_total %llu\n"
        "# TYPE airlock_hub_event_streams gauge\nairlock_hub_event_streams %zu\n"
        "# TYPE airlock_hub_sse_frames_total counter\nairlock_hub_sse_frames_total %llu\n"
        "# TYPE airlock_hub_sse_dropped_total counter\nairlock_hub_sse_dropped_total %llu\n"
        "# TYPE airlock_hub_auth_failures_total counter\nairlock_hub_auth_failures_total %llu\n"
        "# TYPE airlock_hub_store_commits_total counter\nairlock_hub_store_commits_total %llu\n"
        "# TYPE airlock_hub_tunnel_verifications_total counter\n"
        "airlock_hub_tunnel_verifications_total{result=\"ok\"} %llu\n"
        "airlock_hub_tunnel_verifications_total{result=\"rejected\"} %llu\n"
        "# TYPE airlock_hub_mcp_calls_total counter\n"
        "airlock_hub_mcp_calls_total{result=\"ok\"} %llu\n"
        "airlock_hub_mcp_calls_total{result=\"tool_error\"} %llu\n"
        "airlock_hub_mcp_calls_total{result=\"failed\"} %llu\n"
        "# TYPE airlock_hub_mcp_sessions_initialized_total counter\n"
        "airlock_hub_mcp_sessions_initialized_total %llu\n",
        (unsigned long long) al_http_server_requests(h->http),
        (unsigned long long) al_http_server_open_requests(h->http), (unsigned long long) h->m.polls,
        (unsigned long long) h->m.polls_empty, (unsigned long long) h->m.polls_woken, h->nwaiters,
        (unsigned long long) h->m.acks, (unsigned long long) h->m.heartbeats,
        (unsigned long long) h->m.heartbeat_412, (unsigned long long) h->m.stops,
        (unsigned long long) h->m.leases_expired, (unsigned long long) h->m.events_appended, h->nsubs,
        (unsigned long long) h->m.sse_frames, (unsigned long long) h->m.sse_dropped,
        (unsigned long long) h->m.auth_failures, (unsigned long long) h->m.passes,
        (unsigned long long) h->m.tunnel_verify_ok, (unsigned long long) h->m.tunnel_verify_rejected,
        (unsigned long long) h->m.mcp_calls_ok, (unsigned long long) h->m.mcp_calls_tool_error,
        (unsigned long long) h->m.mcp_calls_failed, (unsigned long long) h->m.mcp_sessions_initialized);
    al_reply_text(r, 200, "text/plain; version=0.0.4", text);
}

/* Every /v1 route authenticates first; the handler then checks scope. */
static struct al_route *build_routes(void)
{
    struct al_route *rt = al_xcalloc(AL_ELEMENTSOF(routes), sizeof(*rt));
    memcpy(rt, routes, sizeof(routes));
    rt[0].fn = h_healthz;
    rt[1].fn = h_metrics;
    return rt;
}

static int mkdir_p(const char *path, mode_t mode)
{
    _cleanup_free_ char *p = al_xstrdup(path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
            *s = '/';
        }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int read_key_file(const char *path, char **ret)
{
    char buf[512];
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (strlen(buf) < 16)
        return -EINVAL;
    *ret = al_xstrdup(buf);
    return 0;
}

/* AIRLOCK_API_KEY, else --api-key-file, else <data dir>/api.key, created
 * on first start (mode 0600). Only the key's digest is kept in memory. */
static int load_api_key(struct hub *h)
{
    const char *env = secure_getenv("AIRLOCK_API_KEY");
    _cleanup_free_ char *key = NULL, *path = NULL;
    int r;

    if (env && *env) {
        if (strlen(env) < 16)
            return al_log_errno(AL_ERROR, -EINVAL, "hub.api_key_too_short", AL_STR("source", "AIRLOCK_API_KEY"));
        key = al_xstrdup(env);
    } else if (h->cfg.api_key_file) {
        r = read_key_file(h->cfg.api_key_file, &key);
        if (r < 0)
            return al_log_errno(AL_ERROR, r, "hub.api_key_file", AL_STR("path", h->cfg.api_key_file));
    } else {
        path = al_xasprintf("%s/api.key", h->cfg.data_dir);
        r = read_key_file(path, &key);
        if (r == -ENOENT) {
            key = al_secret_new("al-api-");
            _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0)
                return al_log_errno(AL_ERROR, -errno, "hub.api_key_create", AL_STR("path", path));
            _cleanup_free_ char *line = al_xasprintf("%s\n", key);
            if (write(fd, line, strlen(line)) != (ssize_t) strlen(line) || fsync(fd) < 0)
                return al_log_errno(AL_ERROR, -errno, "hub.api_key_create", AL_STR("path", path));
            al_log(AL_INFO, "hub.api_key_generated", AL_STR("path", path));
        } else if (r < 0)
            return al_log_errno(AL_ERROR, r, "hub.api_key_file", AL_STR("path", path));
        else
            al_log(AL_INFO, "hub.api_key_loaded", AL_STR("path", path));
    }
    if (!key)
        return -EINVAL;
    al_sha256(key, strlen(key), h->api_key_hash);
    explicit_bzero(key, strlen(key));
    return 0;
}

/* A DNS name of lowercase labels (1-63 of [a-z0-9-], no '-' at either
 * end) that leaves room for the 17 characters of "<16 hex>.". */
static bool tunnel_domain_ok(const char *d)
{
    size_t n = strlen(d), label = 0;
    if (n == 0 || n > 253 - 17 || d[n - 1] == '.')
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = d[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || d[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0))
            label++;
        else
            return false;
    }
    return true;
}

/* HOST:PORT for CURLOPT_CONNECT_TO: a name or IPv4 address, or an IPv6
 * address in brackets, then a port 1-65535; nothing curl could read as a
 * second entry. */
static bool relay_addr_ok(const char *a)
{
    const char *colon = strrchr(a, ':');
    int64_t port;
    if (!colon || colon == a || al_parse_i64(colon + 1, 1, 65535, &port) < 0)
        return false;
    size_t n = (size_t) (colon - a);
    if (a[0] == '[')
        return n > 2 && a[n - 1] == ']' && strspn(a + 1, "0123456789abcdefABCDEF:.") == n - 2;
    return strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct hub *h = arg;
    static int64_t last_ping;
    int64_t now = al_mono_us();

    work_tick(h);
    if (now - last_ping >= h->cfg.ping_interval_us) {
        last_ping = now;
        streams_ping(h);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct hub *h = arg;
    al_log(AL_INFO, "hub.stopping", AL_I64("signal", sig));
    event_base_loopexit(h->base, NULL);
}

static void free_auth(void *p) { principal_free(p); }

/* Parked long-polls and event streams are one descriptor each: take the
 * hard limit so that tens of thousands of them fit. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int hub_main(int argc, char **argv)
{
    struct hub h = { 0 };
    struct al_opts_result res;
    enum al_log_level lvl = AL_INFO;
    _cleanup_free_ char *db = NULL;
    _cleanup_free_ struct al_route *rt = NULL;
    int r, rc = 1;

    if (al_opts_load(hub_opts, &h.cfg, argc, argv, &res) < 0)
        return 2;
    if (res.help) {
        al_opts_help(hub_opts, "airlock hub [OPTIONS]",
                     "Run the control plane: environments, agents, sessions and their events, the work queue,\n"
                     "skills, tunnels, and the agent loop, on an embedded SQLite store. The agent loop calls the\n"
                     "agents' MCP servers itself: directly, or through --tunnel-relay for servers under --tunnel-domain.");
        free(res.args);
        al_opts_free(hub_opts, &h.cfg);
        return 0;
    }
    free(res.args);
    if (al_log_level_parse(h.cfg.log_level, &lvl) < 0) {
        fprintf(stderr, "airlock: --log-level: expected debug, info, warn or error\n");
        goto out;
    }
    if (h.cfg.idle_timeout_us < 1000000) {
        fprintf(stderr, "airlock: --idle-timeout: must be at least 1s\n");
        goto out;
    }
    if (h.cfg.lease_ttl_us < 10000000 || h.cfg.lease_ttl_us > 600000000) {
        fprintf(stderr, "airlock: --lease-ttl: must be between 10s and 600s\n");
        goto out;
    }
    if (!tunnel_domain_ok(h.cfg.tunnel_domain)) {
        fprintf(stderr, "airlock: --tunnel-domain: expected a lowercase DNS name such as tunnels.example.com\n");
        goto out;
    }
    if (h.cfg.tunnel_relay && !relay_addr_ok(h.cfg.tunnel_relay)) {
        fprintf(stderr, "airlock: --tunnel-relay: expected HOST:PORT (an IPv6 address in brackets)\n");
        goto out;
    }
    if (h.cfg.mcp_timeout_us < 1000000 || h.cfg.mcp_timeout_us > 3600000000) {
        fprintf(stderr, "airlock: --mcp-timeout: must be between 1s and 1h\n");
        goto out;
    }
    if (h.cfg.mcp_max_response < 4096 || h.cfg.mcp_max_response > (64 << 20)) {
        fprintf(stderr, "airlock: --mcp-max-response: must be between 4096 and 67108864\n");
        goto out;
    }
    al_log_setup("hub", lvl, 2);
    raise_nofile();
    /* The store holds session histories and credential digests: files the
     * hub creates are its own only, whatever the caller's umask. */
    umask(077);
    struct sigaction sa = { .sa_handler = SIG_IGN };
    sigaction(SIGPIPE, &sa, NULL);

    r = mkdir_p(h.cfg.data_dir, 0700);
    if (r < 0) {
        al_log_errno(AL_ERROR, r, "hub.data_dir", AL_STR("path", h.cfg.data_dir));
        goto out;
    }
    if (load_api_key(&h) < 0 || tunnels_init(&h) < 0)
        goto out;
    db = al_xasprintf("%s/airlock.db", h.cfg.data_dir);
    r = al_store_open(db, h.cfg.sync_full, &h.store);
    if (r < 0) {
        al_log_errno(AL_ERROR, r, "hub.store_open", AL_STR("path", db));
        goto out;
    }
    h.base = event_base_new();
    rt = build_routes();
    struct al_http_server_config hc = {
        .routes = rt, .ud = &h, .max_body = (size_t) h.cfg.max_body, .max_body_hard = 40u << 20,
        .idle_timeout_s = h.cfg.idle_timeout_us / 1000000, .free_auth = free_auth,
    };
    r = al_http_server_new(h.base, h.cfg.listen, &hc, &h.http, &h.url);
    if (r < 0) {
        al_log_errno(AL_ERROR, r, "hub.listen", AL_STR("addr", h.cfg.listen));
        goto out;
    }
    h.tick = event_new(h.base, -1, EV_PERSIST, on_tick, &h);
    struct timeval tv = { 0, 250000 };
    event_add(h.tick, &tv);
    h.sigterm = evsignal_new(h.base, SIGTERM, on_signal, &h);
    h.sigint = evsignal_new(h.base, SIGINT, on_signal, &h);
    event_add(h.sigterm, NULL);
    event_add(h.sigint, NULL);

    events_init(&h);
    hub_tx_init(&h);
    work_restart_grace(&h);
    work_tick(&h);
    if (mcp_client_init(&h) < 0) {
        al_log(AL_ERROR, "hub.mcp_client_init");
        goto out;
    }
    loop_start(&h);
    al_log(AL_INFO, "hub.listening", AL_STR("url", h.url), AL_STR("data_dir", h.cfg.data_dir),
           AL_STR("tunnel_domain", h.cfg.tunnel_domain), AL_STR("tunnel_relay", h.cfg.tunnel_relay),
           AL_I64("schema_version", al_store_schema_version(h.store)));
    al_ready_notify((int) h.cfg.ready_fd, h.url);

    event_base_dispatch(h.base);
    rc = 0;
    al_log(AL_INFO, "hub.stopped");
out:
    mcp_client_done(&h);
    hub_tx_done(&h);
    loop_stop(&h);
    work_poll_waiters_free(&h);
    events_done(&h);
    auth_cache_free(&h);
    if (h.tick)
        event_free(h.tick);
    if (h.sigterm)
        event_free(h.sigterm);
    if (h.sigint)
        event_free(h.sigint);
    h.http = al_http_server_free(h.http);
    h.store = al_store_close(h.store);
    if (h.base)
        event_base_free(h.base);
    free(h.url);
    tunnels_done(&h);
    al_opts_free(hub_opts, &h.cfg);
    return rc;
}
