/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the gateway's stream side, shared by stream.c, direct.c,
 * route.c, cidr.c, http1.c, jcs.c and audit*.c (docs/internals/GATEWAY_STREAM.md).
 * Parsers here are pure: no I/O, bounded memory, fuzzed. Loop thread only,
 * except the audit writer's queue (audit_writer.c), which is locked. */
#pragma once

#include <event2/util.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../lib/base/buf.h"
#include "../lib/base/macro.h"

/* ---- cidr.c: allowed upstream addresses ---------------------------------- */

#define GW_ALLOWED_IPS_DEFAULT "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
#define GW_CIDR_MAX 256

struct gw_cidr {
    int family;                 /* AF_INET or AF_INET6 */
    uint8_t addr[16];           /* network address, host bits zero */
    unsigned bits;
};

struct gw_cidr_list {
    struct gw_cidr v[GW_CIDR_MAX];
    size_t n;
};

/* Parses "a.b.c.d/n,x::y/n,..." (a bare address is /32 or /128; spaces
 * around entries are allowed; host bits must be zero). Returns 0, or
 * -EINVAL with the offending entry in why. At most GW_CIDR_MAX entries. */
_must_check_ int gw_cidr_parse_list(const char *s, struct gw_cidr_list *out, char *why, size_t whylen);
/* Whether sa (AF_INET/AF_INET6; a v4-mapped v6 address is matched as v4)
 * falls in one of the list's networks. */
bool gw_cidr_allows(const struct gw_cidr_list *l, const struct sockaddr *sa);

/* ---- route.c: --route NAME=URL ------------------------------------------- */

struct gw_route {
    char *name;                 /* lower case */
    char *url;                  /* as configured, for the audit line */
    char *host;                 /* a name or an address literal (no brackets) */
    uint16_t port;
};

struct gw_routes {
    struct gw_route *v;
    size_t n;
};

/* Parses every "NAME=URL" (http://host[:port][/path]; https is refused for
 * now). Returns 0 or -EINVAL with an operator's message in why. */
_must_check_ int gw_routes_parse(char *const *specs, struct gw_routes *out, char *why, size_t whylen);
void gw_routes_clear(struct gw_routes *r);
/* The route for an inner SNI (lower case, may be NULL): NAME.<hostname>, or
 * plain NAME; with direct=true any SNI whose first label is NAME; a single
 * route also takes a missing SNI. NULL when none matches. */
const struct gw_route *gw_route_match(const struct gw_routes *r, const char *sni,
                                      const char *tunnel_hostname, bool direct);

/* ---- jcs.c: RFC 8785 canonical JSON -------------------------------------- */

/* Appends the JCS form of v to out. Returns 0, -EINVAL (NaN/Infinity, or a
 * string that is not valid UTF-8), or -EMSGSIZE (out's max reached). */
_must_check_ int gw_jcs_append(const json_t *v, struct al_buf *out);
/* The ECMAScript Number::toString of d (shortest round trip) into buf
 * (at least 32 bytes). Returns the length, or -EINVAL for NaN/Infinity. */
int gw_jcs_number(double d, char *buf, size_t len);

/* ---- http1.c: the HTTP/1.1 observer -------------------------------------- */

#define GW_H1_HEAD_MAX    (16 * 1024)   /* request/status line + headers */
#define GW_H1_HEADERS_MAX 100
#define GW_H1_PIPELINE_MAX 64           /* requests awaiting their response */
#define GW_H1_SSE_EVENT_MAX (1024 * 1024)

struct gw_h1_header {
    const char *name, *value;   /* NUL-terminated, borrowed for the callback */
};

struct gw_h1_head {
    const char *method, *target; /* requests */
    int status;                  /* responses */
    const struct gw_h1_header *h;
    size_t n;
};

/* Callbacks of the observer. dir is 0 for client→upstream (requests), 1 for
 * upstream→client (responses). Interim (1xx) responses are skipped. */
struct gw_h1_cb {
    void (*head)(void *arg, int dir, const struct gw_h1_head *head);
    void (*body)(void *arg, int dir, const void *data, size_t len);
    /* A complete SSE event of a text/event-stream response (data lines
     * joined by "\n"; truncated when over GW_H1_SSE_EVENT_MAX). */
    void (*sse_event)(void *arg, const char *event, const char *data, size_t len, bool truncated);
    void (*end)(void *arg, int dir);
};

struct gw_h1;
struct gw_h1 *gw_h1_new(const struct gw_h1_cb *cb, void *arg);
struct gw_h1 *gw_h1_free(struct gw_h1 *h);   /* NULL-safe, returns NULL */
/* Observes len bytes of direction dir. Returns 0, or -EBADMSG once the
 * observer has given up on the stream (it then ignores everything). */
int gw_h1_feed(struct gw_h1 *h, int dir, const void *data, size_t len);
/* Direction dir ended; completes a response read until close. */
void gw_h1_eof(struct gw_h1 *h, int dir);
/* Why the observer gave up, or NULL. */
const char *gw_h1_failure(const struct gw_h1 *h);
/* Whether the current response is an SSE stream. */
bool gw_h1_sse(const struct gw_h1 *h);
/* Raw bytes of the current message of dir so far (head included). */
uint64_t gw_h1_msg_bytes(const struct gw_h1 *h, int dir);

/* ---- audit.c / audit_writer.c: the audit log ---------------------------- */

#define GW_AUDIT_BODY_MAX (8u * 1024 * 1024)   /* request bodies hashed up to this */
#define GW_AUDIT_RESP_MAX (1u * 1024 * 1024)   /* JSON responses parsed up to this */

struct gw_audit;   /* process-wide: key, writer, counters */

/* Where finished lines go: a writer thread on a file (path, "-" = stdout). */
_must_check_ int gw_audit_new(const char *path, const char *key_file, const char *key_id,
                              size_t queue_max, struct gw_audit **ret, char *why, size_t whylen);
/* A sink called with each line, for tests and fuzzing (no thread). */
struct gw_audit *gw_audit_new_sink(const void *key, size_t keylen, const char *key_id,
                                   void (*sink)(void *arg, const char *line), void *arg);
struct gw_audit *gw_audit_free(struct gw_audit *a);   /* flushes; NULL-safe */
/* Takes line (malloc'd, no newline). Queues it, or drops and counts it. */
void gw_audit_emit_take(struct gw_audit *a, char *line);
uint64_t gw_audit_records(const struct gw_audit *a);
uint64_t gw_audit_dropped(const struct gw_audit *a);
/* HMAC-SHA-256 with the audit key as "hmac-sha256:<key id>:<hex>". Caller frees. */
char *gw_audit_hmac(const struct gw_audit *a, const void *data, size_t len);
/* The clientInfo of a session (by its digest), learned from the initialize
 * exchange, for requests on other streams of that session. Bounded
 * (GW_AUDIT_SESSIONS_MAX, oldest replaced); loop thread only. */
#define GW_AUDIT_SESSIONS_MAX 1024
void gw_audit_session_put(struct gw_audit *a, const char *session, const char *client_info);
const char *gw_audit_session_get(const struct gw_audit *a, const char *session);

/* Identity of one stream, copied. */
struct gw_audit_stream_info {
    const char *tunnel, *route, *upstream, *conn, *client_ip, *sni;
    uint64_t stream;
};

/* Called for each finished record: method as sent (may be NULL) and status
 * ("ok", "error", "aborted", "notification"), for the metrics. */
typedef void (*gw_audit_outcome_fn)(void *arg, const char *method, const char *status);

struct gw_audit_stream;
struct gw_audit_stream *gw_audit_stream_new(struct gw_audit *a, const struct gw_audit_stream_info *info,
                                            gw_audit_outcome_fn outcome, void *outcome_arg);
/* Writes the lines of unanswered requests with status "aborted", then frees. */
struct gw_audit_stream *gw_audit_stream_free(struct gw_audit_stream *s);
/* Updates the route and upstream once they are known. */
void gw_audit_stream_set_route(struct gw_audit_stream *s, const char *route, const char *upstream,
                               const char *sni);
/* The observer callbacks that feed the extractor (arg = the audit stream). */
extern const struct gw_h1_cb gw_audit_h1_cb;
/* Tell the extractor which observer it listens to (for byte counts). */
void gw_audit_stream_set_h1(struct gw_audit_stream *s, struct gw_h1 *h1);

/* ---- stream.c / upstream.c / direct.c ------------------------------------ */

struct event;
struct bufferevent;
struct evdns_base;
struct al_inner_ctx;
struct al_inner_sess;
struct gw_direct;

#define GW_PIPE_HIGH     (256 * 1024)  /* pipe queued() above this: stop reading upstream */
#define GW_UP_OUT_HIGH   (256 * 1024)  /* upstream output above this: stop decrypting input */
#define GW_UP_OUT_LOW    (64 * 1024)   /* ... and resume below this */
#define GW_HANDSHAKE_TIMEOUT_S 10

enum gw_upstream_error { GW_UPERR_DNS, GW_UPERR_IP_NOT_ALLOWED, GW_UPERR_CONNECT, _GW_UPERR_MAX };
enum gw_hs_result { GW_HS_OK, GW_HS_UNKNOWN_SNI, GW_HS_FAILED, GW_HS_EOF, GW_HS_TIMEOUT, _GW_HS_MAX };
#define GW_OUTCOMES 4   /* ok, error, aborted, notification */

struct gw_ctx {
    struct event_base *base;
    struct evdns_base *dns;
    struct al_inner_ctx *tls;
    char *cert_file, *key_file, *tunnel_hostname;
    struct gw_routes routes;
    struct gw_cidr_list allowed;
    struct gw_audit *audit;
    struct gw_stream *streams;          /* every open stream, for gw_ctx_free */
    struct gw_direct *directs;          /* direct listeners */
    uint64_t streams_active, streams_opened, observer_gave_up;
    uint64_t handshakes[_GW_HS_MAX];
    uint64_t *upstream_errors;          /* [route][_GW_UPERR_MAX] */
    uint64_t *mcp;                      /* [route][method][GW_OUTCOMES] */
};

enum gw_stream_state { GW_S_HANDSHAKE, GW_S_CONNECTING, GW_S_OPEN, GW_S_CLOSED };

struct gw_resolve;

struct gw_stream {
    struct gw_ctx *ctx;
    struct gw_stream *prev, *next;
    const struct gw_pipe_ops *ops;
    void *pipe;
    enum gw_stream_state state;
    struct al_inner_sess *tls;
    const struct gw_route *route;
    bool direct;
    uint64_t id, fed, credited;
    struct bufferevent *up;
    struct gw_resolve *resolve;
    struct evutil_addrinfo *addrs, *addr;   /* the upstream's addresses, the one being dialled */
    struct event *reap, *timer;
    struct gw_h1 *h1;
    struct gw_audit_stream *audit;
    bool client_eof, in_eof, up_shut, replied, up_paused, in_paused;
    char *client_ip;
};

/* upstream.c: resolve the route's host, check --allowed-ips, connect. */
void gw_upstream_start(struct gw_stream *s);
void gw_upstream_cancel(struct gw_stream *s);
/* Resumes reading the upstream (the pipe drained). */
void gw_upstream_resume(struct gw_stream *s);
/* Half-closes the upstream once its output is flushed (client EOF). */
void gw_upstream_shutdown_when_flushed(struct gw_stream *s);

/* direct.c: closes every direct listener and connection. */
void gw_direct_free_all(struct gw_ctx *ctx);

/* stream.c, for upstream.c */
/* The one state setter (logs each transition at debug level). */
void gw_stream_set_state(struct gw_stream *s, enum gw_stream_state next);
size_t gw_route_index(const struct gw_ctx *ctx, const struct gw_route *r);
/* Plaintext toward the client (encrypted, written to the pipe, observed). */
int gw_stream_send_plain(struct gw_stream *s, const void *data, size_t len, bool observe);
/* Decrypts more client input (after the upstream's output drained). */
void gw_stream_pump_in(struct gw_stream *s);
/* The upstream refused or failed before sending anything: count, answer 502,
 * close. */
void gw_stream_upstream_failed(struct gw_stream *s, enum gw_upstream_error why, const char *detail);
/* The upstream ended: close_notify and a clean close. abort=true resets. */
void gw_stream_finish(struct gw_stream *s, bool abort);
