/* SPDX-License-Identifier: Apache-2.0 */
/* Shared state of `airlock relay` (docs/internals/TUNNEL.md): the config,
 * the tunnel registry (tunnel -> gateway connections, hostname -> tunnel),
 * gateway connections, and client connections. One loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/base/macro.h"
#include "../lib/h2/upgrade.h"

struct event;
struct event_base;
struct evconnlistener;
struct bufferevent;
struct al_map;
struct al_curl;
struct al_curl_xfer;
struct al_h2_conn;
struct al_h2_stream;
struct al_outer_ctx;
struct al_http_server;
struct relay_client;

struct relay_config {
    char *listen, *gateway_listen, *cert, *key, *hub, *api_key_file, *hub_cacert, *admin_listen, *log_level;
    int64_t ready_fd, max_pending_per_ip, accept_rate;
    int64_t handshake_timeout_us, drain_timeout_us, refresh_us;
};

struct relay_tunnel {
    char id[AL_TUNNEL_ID_MAX + 1];
    char hostname[AL_HOSTNAME_MAX + 1];
    int64_t active_certificates;
    struct relay_gw *conns;          /* open gateway connections of this tunnel */
    size_t nconns;
    struct al_curl_xfer *refresh;    /* GET /v1/tunnels/{id} in flight */
};

enum relay_gw_state { RGW_HEAD, RGW_VERIFY, RGW_ANSWER, RGW_OPEN, RGW_CLOSED };

struct relay_gw {
    struct relay *r;
    uint64_t id;
    enum relay_gw_state state;
    struct bufferevent *bev;         /* until the h2 connection takes it */
    struct al_h2_conn *h2;
    struct event *deadline;
    struct al_curl_xfer *verify;
    struct relay_tunnel *tunnel;
    struct relay_gw *tnext, *tprev;  /* in tunnel->conns */
    struct relay_gw *next, *prev;    /* in relay->gws */
    char connector_id[AL_CONNECTOR_ID_MAX + 1];
    int slot;
    char peer[64];
    uint64_t streams_opened;
};

struct relay_metrics {
    uint64_t gw_accepted, gw_rejected_auth, gw_rejected_bad, gw_ratelimited, gw_draining_refused, gw_hub_errors;
    uint64_t clients_accepted, clients_routed, sni_unknown, sni_no_gateway, sni_no_cert, hello_timeouts,
        hello_bad, pending_cap_refused, streams_refused;
    uint64_t alpn_h1, alpn_h2, alpn_other, alpn_none;
    uint64_t bytes_to_gw, bytes_from_gw;
};

struct relay {
    struct relay_config cfg;
    struct event_base *base;
    struct al_outer_ctx *tls;
    struct al_curl *curl;
    char *api_key;
    char *client_addr, *gateway_addr;
    struct evconnlistener *client_l, *gw_l;
    struct al_http_server *admin;
    struct al_map *tunnels;          /* id -> struct relay_tunnel */
    struct al_map *hostnames;        /* hostname -> struct relay_tunnel */
    struct al_map *pending;          /* client ip -> (uintptr_t) pending handshakes */
    struct relay_gw *gws;
    size_t ngws;
    struct relay_client *clients;
    size_t nclients, npending;
    uint64_t next_id;
    int64_t start_us;
    int64_t rate_window_s;           /* accept rate limiting: current second */
    int64_t rate_count;
    bool draining;
    struct event *sigterm, *sigint, *refresh_ev, *drain_ev;
    struct relay_metrics m;
};

/* gwconn.c */
_must_check_ int relay_gw_listen(struct relay *r);
void relay_gw_close(struct relay_gw *g, int err);
void relay_gw_close_all(struct relay *r);
void relay_gw_goaway_all(struct relay *r);

/* tunnel.c */
struct relay_tunnel *relay_tunnel_get(struct relay *r, const char *id, const char *hostname);
void relay_tunnel_attach(struct relay_tunnel *t, struct relay_gw *g);
void relay_tunnel_detach(struct relay_gw *g);
/* The tunnel for an SNI "<route>.<hostname>", or NULL. */
struct relay_tunnel *relay_tunnel_by_sni(struct relay *r, const char *sni);
/* The least-loaded ready, non-draining connection, or NULL. */
struct relay_gw *relay_tunnel_pick(struct relay_tunnel *t);
void relay_tunnels_refresh(struct relay *r);
void relay_tunnels_free(struct relay *r);

/* client.c */
_must_check_ int relay_client_listen(struct relay *r);
void relay_client_stop_accepting(struct relay *r);
void relay_clients_free_all(struct relay *r);   /* at exit */

/* relay.c */
void relay_maybe_finish(struct relay *r);
/* A listening non-blocking socket on a numeric "host:port" / "[v6]:port"
 * (port 0 picks one), or -errno. */
_must_check_ int relay_listen_fd(const char *addr, int backlog);
/* "ip:port" / "[v6]:port" of a sockaddr. */
void relay_format_addr(const void *sa, char *out, size_t outlen);
