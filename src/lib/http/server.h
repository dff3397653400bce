/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 server on libevent's evhttp: a router with {param} segments,
 * JSON bodies with a size cap, the platform's error body, request ids, and
 * requests that stay open (long-poll, SSE) with exactly-once close
 * notification. Loop thread only. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../base/macro.h"
#include "query.h"

struct event_base;
struct evhttp_request;
struct al_http_server;

#define AL_ROUTE_MAX_PARAMS 4

struct al_req {
    struct evhttp_request *ev;    /* NULL once the client has gone */
    struct al_http_server *srv;
    int method;                   /* enum evhttp_cmd_type */
    const char *method_name;
    char *path;                   /* decoded path, no query */
    char *params[AL_ROUTE_MAX_PARAMS];
    struct al_query query;
    const struct al_route *route;
    char request_id[40];
    int64_t start_us;             /* monotonic */
    void *auth;                   /* set by the application's handler */
    void (*on_close)(struct al_req *r);  /* client went away while parked */
    void *parked;                 /* application state of a parked request */
    bool replied;
    bool streaming;               /* reply_start was sent */
    /* A reply held until the server is released (see al_http_server_hold). */
    struct al_req *held_next;
    int held_status;
    const char *held_type;        /* static content type */
    void *held_body;
    size_t held_len;
};

typedef void (*al_handler_fn)(struct al_req *r, void *ud);

struct al_route {
    const char *method;           /* "GET", "POST", "DELETE" */
    const char *pattern;          /* "/v1/sessions/{id}/events" */
    al_handler_fn fn;
    size_t max_body;              /* 0 = the server default */
};

struct al_http_server_config {
    const struct al_route *routes;    /* terminated by { 0 } */
    void *ud;
    size_t max_body;                  /* default JSON body cap */
    size_t max_body_hard;             /* evhttp's connection-level cap */
    int64_t idle_timeout_s;
    void (*free_auth)(void *auth);    /* releases al_req.auth at request end */
};

/* Binds addr ("127.0.0.1:0", "[::1]:8080") and starts serving. *ret_bound
 * receives "http://HOST:PORT" (caller frees). Returns 0 or -errno. */
_must_check_ int al_http_server_new(struct event_base *base, const char *addr,
                                    const struct al_http_server_config *cfg,
                                    struct al_http_server **ret, char **ret_bound);
struct al_http_server *al_http_server_free(struct al_http_server *s);
/* While held, finished replies are queued rather than sent; release sends
 * them in order. With ok false, each queued reply below 400 becomes a 500
 * error instead: the transaction behind it did not commit. Streaming writes
 * are never held. */
void al_http_server_hold(struct al_http_server *s);
void al_http_server_release(struct al_http_server *s, bool ok);
uint64_t al_http_server_requests(const struct al_http_server *s);
uint64_t al_http_server_open_requests(const struct al_http_server *s);

const char *al_req_header(const struct al_req *r, const char *name);
/* Parses the body as JSON. On failure replies (400/413) and returns < 0. */
_must_check_ int al_req_json(struct al_req *r, json_t **ret);
/* Raw body; *ret_len is its size. Returns NULL when empty. Borrowed. */
const unsigned char *al_req_body(struct al_req *r, size_t *ret_len);

/* Replies take ownership of body (may be NULL for "null"). */
void al_reply_json(struct al_req *r, int status, json_t *body);
void al_reply_empty(struct al_req *r, int status);
void al_reply_bytes(struct al_req *r, int status, const char *content_type, const void *data, size_t n);
void al_reply_text(struct al_req *r, int status, const char *content_type, const char *text);
/* {"type":"error","error":{"type":TYPE,"message":MSG,"details":{"error_code":CODE}},"request_id":...}.
 * code may be NULL (no details). details, if given, is stolen and merged. */
_printf_(5, 6) void al_reply_error(struct al_req *r, int status, const char *type, const char *code,
                                   const char *fmt, ...);
void al_reply_error_details(struct al_req *r, int status, const char *type, const char *message,
                            json_t *details, bool retry_false);
void al_req_add_header(struct al_req *r, const char *name, const char *value);

/* Streaming (SSE): start a 200 reply with headers, then write chunks. A
 * chunk write returns -ENOBUFS when the client has more than the cap queued. */
void al_reply_stream_start(struct al_req *r, const char *content_type);
_must_check_ int al_reply_stream_write(struct al_req *r, const void *data, size_t n, size_t cap);
/* Ends the stream and frees r. */
void al_reply_stream_end(struct al_req *r);

/* Park: the handler returns without replying; r stays valid until a reply is
 * sent. If the client disconnects first, on_close runs (once) and then r is
 * freed: the application must drop every pointer to r inside on_close. */
void al_req_park(struct al_req *r, void (*on_close)(struct al_req *r), void *state);

/* Writes "line\n" to fd and closes it; used for --ready-fd. */
void al_ready_notify(int fd, const char *line);
