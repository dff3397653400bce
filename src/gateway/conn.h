/* SPDX-License-Identifier: Apache-2.0 */
/* The gateway's relay side (docs/internals/TUNNEL.md §2, §3, §5): the
 * process state, relay connection slots (dial, outer TLS, upgrade, HTTP/2
 * server session), CONNECT streams handed to the stream side (stream.h),
 * and the pure parser of a stream's metadata. Internal to src/gateway;
 * one loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/base/macro.h"
#include "../lib/h2/upgrade.h"

struct event;
struct event_base;
struct evdns_base;
struct bufferevent;
struct al_h2_conn;
struct al_h2_header;
struct al_outer_ctx;
struct al_http_server;
struct gw_ctx;

#define GW_MAX_CONNECTIONS 8
#define GW_CLIENT_ADDR_MAX 56

struct gateway_config {
    char **relay, **route;
    char *relay_ca, *relay_name, *token_file, *cert, *key, *allowed_ips, *audit_log, *audit_key_file,
        *audit_key_id, *admin_listen, *listen_tls, *log_level;
    int64_t connections, ready_fd, ping_interval_us, ping_timeout_us, drain_timeout_us;
};

/* Connection attempt outcomes, for metrics (§5.10 tunnel_connect_attempts_total). */
enum gw_result { GW_RES_OK, GW_RES_DNS, GW_RES_TCP, GW_RES_PROXY, GW_RES_TLS, GW_RES_AUTH, GW_RES_REFUSED,
                 GW_RES_PROTO, _GW_RES_MAX };

enum gw_conn_state { GC_DIAL, GC_TLS, GC_UPGRADE, GC_READY, GC_DRAINING, GC_CLOSED, _GC_STATE_MAX };

struct gw_slot {
    struct gateway *gw;
    int idx;
    struct gw_conn *cur;          /* connecting or ready */
    struct gw_conn *old;          /* ready, to be drained once cur is ready (rotation) */
    unsigned attempt;             /* backoff exponent */
    unsigned dials;               /* for round-robin over --relay */
    struct event *retry_ev;
};

struct gw_conn {
    struct gateway *gw;
    struct gw_slot *slot;         /* NULL once draining */
    uint64_t id;
    char label[16];               /* "c-<id>" */
    enum gw_conn_state state;
    const char *relay;            /* borrowed from the config: HOST:PORT */
    char *host, *port;
    struct gw_dial *dial;
    struct bufferevent *bev;      /* until the h2 connection takes it */
    struct al_h2_conn *h2;
    struct event *deadline;       /* handshake, then drain */
    uint64_t token_gen;
    int64_t started_us, ready_us;
    char tunnel_id[AL_TUNNEL_ID_MAX + 1];
    size_t streams;
    struct gw_conn *next, *prev;
};

struct gateway_metrics {
    uint64_t attempts[_GW_RES_MAX];
    uint64_t reconnects_error, reconnects_goaway, reconnects_rotation;
    uint64_t streams_opened, streams_rejected, streams_active;
    uint64_t bytes_in_closed, bytes_out_closed;   /* of connections already gone */
    uint64_t ping_count;
    double ping_sum_s;
    double ping_buckets[8];                       /* cumulative counts per le bound */
    uint64_t connect_count;
    double connect_sum_s;
};

struct gateway {
    struct gateway_config cfg;
    struct event_base *base;
    struct evdns_base *dns;
    struct al_outer_ctx *tls;
    struct gw_ctx *ctx;
    char *token;
    uint64_t token_gen;
    int64_t token_loaded_us;
    ino_t token_ino;
    int64_t token_mtime_ns;
    off_t token_size;
    char connector_id[33];
    char *tunnel_hostname;
    struct gw_slot slots[GW_MAX_CONNECTIONS];
    int nslots;
    struct gw_conn *conns;
    uint64_t next_id;
    struct al_http_server *admin;
    char *direct_addr;
    int ready_fd;
    bool stopping;
    struct event *sigterm, *sigint, *sighup, *token_ev, *stop_ev;
    struct gateway_metrics m;
};

/* conn.c */
void gw_slot_start(struct gw_slot *s);
void gw_slots_rotate(struct gateway *gw);
void gw_conns_stop(struct gateway *gw);
void gw_conns_free_all(struct gateway *gw);   /* at exit: at once, no drain */
size_t gw_conns_count(const struct gateway *gw, enum gw_conn_state st);
uint64_t gw_conns_bytes(const struct gateway *gw, bool in);
void gw_maybe_exit(struct gateway *gw);

/* dial.c: TCP (directly or through an HTTPS_PROXY CONNECT) to host:port.
 * done fires once, never from inside gw_dial_start: fd >= 0 is a connected
 * socket the callee now owns; otherwise fd is -1 and result says where it
 * failed (GW_RES_DNS/TCP/PROXY). */
struct gw_dial;
typedef void (*gw_dial_done_fn)(int fd, enum gw_result result, int err, void *ud);
struct gw_dial *gw_dial_start(struct event_base *base, struct evdns_base *dns, const char *host, const char *port,
                              gw_dial_done_fn done, void *ud);
void gw_dial_cancel(struct gw_dial *d);     /* done never fires after this */
/* Splits "HOST:PORT" / "[V6]:PORT"; returns 0 or -EINVAL. Caller frees. */
_must_check_ int gw_split_hostport(const char *s, char **ret_host, char **ret_port);
/* True when host:port must bypass the proxy by NO_PROXY (list as in curl). */
bool gw_no_proxy_match(const char *no_proxy, const char *host);

/* conn_meta.c: the stream-metadata parser (§3). Pure; fuzzed. */
struct gw_meta {
    char tunnel_id[AL_TUNNEL_ID_MAX + 1];
    char sni[AL_HOSTNAME_MAX + 1];
    char client_addr[GW_CLIENT_ADDR_MAX];
    uint64_t stream_id;
};
/* Returns 0 with *ret filled, or -EBADMSG: not exactly one CONNECT with an
 * :authority of "<airlock-sni>:443", :scheme/:path present, a missing,
 * duplicated or malformed airlock-tunnel, airlock-sni (lower-case DNS name),
 * airlock-client-addr ("a.b.c.d:port" / "[v6]:port") or airlock-stream. */
_must_check_ int gw_meta_parse(const struct al_h2_header *h, size_t n, struct gw_meta *ret);

/* admin.c */
_must_check_ int gw_admin_start(struct gateway *gw);
void gw_metrics_ping(struct gateway *gw, double rtt_s);
