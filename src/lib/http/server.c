/* SPDX-License-Identifier: Apache-2.0 */
/* evhttp glue. Every request is dispatched through one generic callback to
 * the route table. A request that is parked keeps its evhttp_request until
 * the application replies or the connection closes; the close callback is
 * the only place where a parked request learns that its client is gone. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "../base/json.h"
#include "../base/log.h"
#include "../base/util.h"
#include "server.h"

struct al_http_server {
    struct event_base *base;
    struct evhttp *http;
    struct al_http_server_config cfg;
    uint64_t requests;
    uint64_t open;
    bool holding;
    struct al_req *held_head, **held_tail;
};

static void req_free(struct al_req *r)
{
    if (!r)
        return;
    free(r->path);
    for (size_t i = 0; i < AL_ROUTE_MAX_PARAMS; i++)
        free(r->params[i]);
    al_query_clear(&r->query);
    if (r->auth && r->srv->cfg.free_auth)
        r->srv->cfg.free_auth(r->auth);
    r->srv->open--;
    free(r);
}

/* Matches path against pattern; on success fills params (decoded, malloc'd). */
static bool route_match(const char *pattern, const char *path, char *params[AL_ROUTE_MAX_PARAMS])
{
    size_t np = 0;
    const char *p = pattern, *s = path;

    while (*p && *s) {
        if (*p != '/' || *s != '/')
            goto nomatch;
        p++;
        s++;
        const char *pe = strchrnul(p, '/'), *se = strchrnul(s, '/');
        if (*p == '{') {
            if (se == s || np == AL_ROUTE_MAX_PARAMS)
                goto nomatch;
            params[np++] = al_xstrndup(s, (size_t) (se - s));
        } else if (pe - p != se - s || memcmp(p, s, (size_t) (pe - p)) != 0)
            goto nomatch;
        p = pe;
        s = se;
    }
    if (*p || *s)
        goto nomatch;
    return true;
nomatch:
    for (size_t i = 0; i < np; i++) {
        free(params[i]);
        params[i] = NULL;
    }
    return false;
}

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    default: return "OTHER";
    }
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    struct al_http_server *s = arg;
    struct al_req *r = al_xcalloc(1, sizeof(*r));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *raw_path = evhttp_uri_get_path(uri), *raw_query = evhttp_uri_get_query(uri);

    s->requests++;
    s->open++;
    r->ev = ev;
    r->srv = s;
    r->start_us = al_mono_us();
    r->method = evhttp_request_get_command(ev);
    r->method_name = method_name(r->method);
    _cleanup_free_ char *rid = al_id_new("req");
    snprintf(r->request_id, sizeof(r->request_id), "%s", rid);

    r->path = al_percent_decode(raw_path ? raw_path : "/", strlen(raw_path ? raw_path : "/"), false);
    if (!r->path) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_path", "malformed percent-encoding in the path");
        return;
    }
    if (raw_query) {
        int q = al_query_parse(raw_query, strlen(raw_query), &r->query);
        if (q < 0) {
            al_reply_error(r, q == -E2BIG ? 414 : 400, "invalid_request_error", "invalid_query",
                           q == -E2BIG ? "query string too long" : "malformed query string");
            return;
        }
    }

    bool path_known = false;
    for (const struct al_route *rt = s->cfg.routes; rt->pattern; rt++) {
        char *params[AL_ROUTE_MAX_PARAMS] = { 0 };
        if (!route_match(rt->pattern, r->path, params))
            continue;
        path_known = true;
        if (strcmp(rt->method, r->method_name) != 0) {
            for (size_t i = 0; i < AL_ROUTE_MAX_PARAMS; i++)
                free(params[i]);
            continue;
        }
        memcpy(r->params, params, sizeof(params));
        r->route = rt;
        rt->fn(r, s->cfg.ud);
        return;
    }
    if (path_known)
        al_reply_error(r, 405, "invalid_request_error", "method_not_allowed", "method %s is not allowed on %s",
                       r->method_name, r->path);
    else
        al_reply_error(r, 404, "not_found_error", "route_not_found", "no such route: %s %s", r->method_name,
                       r->path);
}

/* A listening, non-blocking, close-on-exec socket on host:port with a
 * backlog deep enough for thousands of workers reconnecting at once
 * (evhttp's own bind uses 128), or -errno. */
static int listen_socket(const char *host, uint16_t port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char pbuf[8];
    int one = 1;

    snprintf(pbuf, sizeof(pbuf), "%u", port);
    if (getaddrinfo(*host ? host : NULL, pbuf, &hints, &ai) != 0 || !ai)
        return -EADDRNOTAVAIL;
    _cleanup_close_ int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int r = 0;
    if (fd < 0)
        r = -errno;
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
             bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0)
        r = -errno;
    freeaddrinfo(ai);
    return r < 0 ? r : TAKE_FD(fd);
}

int al_http_server_new(struct event_base *base, const char *addr, const struct al_http_server_config *cfg,
                       struct al_http_server **ret, char **ret_bound)
{
    _cleanup_free_ char *host = NULL;
    const char *colon = strrchr(addr, ':');
    int64_t port;

    if (!colon)
        return -EINVAL;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (!rb || rb + 1 != colon)
            return -EINVAL;
        host = al_xstrndup(addr + 1, (size_t) (rb - addr - 1));
    } else
        host = al_xstrndup(addr, (size_t) (colon - addr));
    if (al_parse_i64(colon + 1, 0, 65535, &port) < 0)
        return -EINVAL;

    struct al_http_server *s = al_xcalloc(1, sizeof(*s));
    s->base = base;
    s->cfg = *cfg;
    s->http = evhttp_new(base);
    if (!s->http) {
        free(s);
        return -ENOMEM;
    }
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_max_body_size(s->http, (ev_ssize_t) cfg->max_body_hard);
    evhttp_set_max_headers_size(s->http, 64 * 1024);
    evhttp_set_timeout(s->http, (int) (cfg->idle_timeout_s > 0 ? cfg->idle_timeout_s : 120));
    evhttp_set_default_content_type(s->http, "application/json");
    evhttp_set_gencb(s->http, on_request, s);

    int fd = listen_socket(host, (uint16_t) port);
    struct evhttp_bound_socket *bs = fd >= 0 ? evhttp_accept_socket_with_handle(s->http, fd) : NULL;
    if (!bs) {
        int e = fd < 0 ? -fd : EADDRNOTAVAIL;
        if (fd >= 0)
            (void) close(fd);
        evhttp_free(s->http);
        free(s);
        return -e;
    }
    struct sockaddr_storage ss = { 0 };
    socklen_t sl = sizeof(ss);
    char hbuf[INET6_ADDRSTRLEN] = "";
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *) &ss, &sl) < 0) {
        int e = errno;
        evhttp_free(s->http);
        free(s);
        return -e;
    }
    char sbuf[16] = "";
    if (getnameinfo((struct sockaddr *) &ss, sl, hbuf, sizeof(hbuf), sbuf, sizeof(sbuf), NI_NUMERICHOST | NI_NUMERICSERV)) {
        evhttp_free(s->http);
        free(s);
        return -EADDRNOTAVAIL;
    }
    *ret_bound = al_xasprintf(ss.ss_family == AF_INET6 ? "http://[%s]:%s" : "http://%s:%s", hbuf, sbuf);
    *ret = s;
    return 0;
}

struct al_http_server *al_http_server_free(struct al_http_server *s)
{
    if (!s)
        return NULL;
    evhttp_free(s->http);
    free(s);
    return NULL;
}

uint64_t al_http_server_requests(const struct al_http_server *s) { return s->requests; }
uint64_t al_http_server_open_requests(const struct al_http_server *s) { return s->open; }

const char *al_req_header(const struct al_req *r, const char *name)
{
    if (!r->ev)
        return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

const unsigned char *al_req_body(struct al_req *r, size_t *ret_len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t n = evbuffer_get_length(in);
    *ret_len = n;
    if (n == 0)
        return NULL;
    return evbuffer_pullup(in, (ev_ssize_t) n);
}

int al_req_json(struct al_req *r, json_t **ret)
{
    size_t cap = r->route && r->route->max_body ? r->route->max_body : r->srv->cfg.max_body;
    size_t n;
    const unsigned char *body = al_req_body(r, &n);
    char why[256];
    int e = al_json_decode(body, n, cap, ret, why, sizeof(why));

    if (e == -EMSGSIZE)
        al_reply_error(r, 413, "invalid_request_error", "request_too_large", "%s", why);
    else if (e < 0)
        al_reply_error(r, 400, "invalid_request_error", "invalid_json", "%s", why);
    return e;
}

static void finish(struct al_req *r)
{
    if (r->ev)
        evhttp_connection_set_closecb(evhttp_request_get_connection(r->ev), NULL, NULL);
    r->ev = NULL;
    r->replied = true;
    req_free(r);
}

static void common_headers(struct al_req *r, const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(h, "request-id", r->request_id);
    if (content_type)
        evhttp_add_header(h, "Content-Type", content_type);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

void al_req_add_header(struct al_req *r, const char *name, const char *value)
{
    if (r->ev)
        evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

static void send_now(struct al_req *r, int status, const char *content_type, const void *data, size_t n)
{
    if (r->ev) {
        common_headers(r, content_type);
        if (n || content_type) {
            struct evbuffer *b = evbuffer_new();
            if (n)
                evbuffer_add(b, data, n);
            evhttp_send_reply(r->ev, status, reason(status), b);
            evbuffer_free(b);
        } else
            evhttp_send_reply(r->ev, status, reason(status), NULL);
    }
    finish(r);
}

void al_reply_bytes(struct al_req *r, int status, const char *content_type, const void *data, size_t n)
{
    struct al_http_server *s = r->srv;
    if (!s->holding || !r->ev) {
        send_now(r, status, content_type, data, n);
        return;
    }
    r->held_status = status;
    r->held_type = content_type;
    r->held_len = n;
    r->held_body = n ? al_xmalloc(n) : NULL;
    if (n)
        memcpy(r->held_body, data, n);
    r->held_next = NULL;
    *s->held_tail = r;
    s->held_tail = &r->held_next;
}

void al_http_server_hold(struct al_http_server *s)
{
    if (s->holding)
        return;
    s->holding = true;
    s->held_head = NULL;
    s->held_tail = &s->held_head;
}

void al_http_server_release(struct al_http_server *s, bool ok)
{
    struct al_req *r = s->held_head, *next;
    s->holding = false;
    s->held_head = NULL;
    s->held_tail = &s->held_head;
    for (; r; r = next) {
        next = r->held_next;
        void *body = TAKE_PTR(r->held_body);
        if (!ok && r->held_status < 400) {
            /* Nothing of what this answer reports was made durable. */
            free(body);
            al_reply_error(r, 500, "api_error", "store_error", "the store could not complete the request");
            continue;
        }
        send_now(r, r->held_status, r->held_type, body, r->held_len);
        free(body);
    }
}

void al_reply_text(struct al_req *r, int status, const char *content_type, const char *text)
{
    al_reply_bytes(r, status, content_type, text, strlen(text));
}

void al_reply_json(struct al_req *r, int status, json_t *body)
{
    char *s = json_dumps(body ? body : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    al_reply_bytes(r, status, "application/json", s, strlen(s));
    free(s);
}

void al_reply_empty(struct al_req *r, int status)
{
    al_reply_bytes(r, status, NULL, NULL, 0);
}

void al_reply_error_details(struct al_req *r, int status, const char *type, const char *message,
                            json_t *details, bool retry_false)
{
    json_t *err = json_pack("{s:s, s:s}", "type", type, "message", message);
    if (details)
        json_object_set_new(err, "details", details);
    json_t *body = json_pack("{s:s, s:o, s:s}", "type", "error", "error", err, "request_id", r->request_id);
    if (retry_false)
        al_req_add_header(r, "x-should-retry", "false");
    if (status >= 500 || status == 413 || status == 405)
        al_log(status >= 500 ? AL_ERROR : AL_INFO, "http.error", AL_STR("request_id", r->request_id),
               AL_I64("status", status), AL_STR("method", r->method_name), AL_STR("path", r->path));
    al_reply_json(r, status, body);
}

void al_reply_error(struct al_req *r, int status, const char *type, const char *code, const char *fmt, ...)
{
    va_list ap;
    char msg[512];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    al_reply_error_details(r, status, type, msg, code ? json_pack("{s:s}", "error_code", code) : NULL,
                           false);
}

static void on_conn_close(struct evhttp_connection *conn, void *arg)
{
    struct al_req *r = arg;
    (void) conn;
    /* On a client's EOF, libevent 2.1 detaches a request that was not
     * finished (a streaming reply) from its connection and leaves freeing
     * it to us; one that is still attached is freed with the connection. */
    if (r->ev && !evhttp_request_get_connection(r->ev))
        evhttp_request_free(r->ev);
    r->ev = NULL;
    if (r->on_close)
        r->on_close(r);
    r->replied = true;
    req_free(r);
}

void al_req_park(struct al_req *r, void (*on_close)(struct al_req *r), void *state)
{
    r->on_close = on_close;
    r->parked = state;
    evhttp_connection_set_closecb(evhttp_request_get_connection(r->ev), on_conn_close, r);
}

void al_reply_stream_start(struct al_req *r, const char *content_type)
{
    common_headers(r, content_type);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(r->ev, 200, "OK");
    r->streaming = true;
    /* A stream's client sends nothing after its request: only a write that
     * stalls (a client that stopped reading) may time the connection out,
     * not the silence evhttp's idle timeout would take for a dead peer. */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(r->ev));
    struct timeval wt = { r->srv->cfg.idle_timeout_s > 0 ? r->srv->cfg.idle_timeout_s : 120, 0 };
    bufferevent_set_timeouts(bev, NULL, &wt);
}

int al_reply_stream_write(struct al_req *r, const void *data, size_t n, size_t cap)
{
    if (!r->ev)
        return -ENOTCONN;
    struct evhttp_connection *c = evhttp_request_get_connection(r->ev);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c);
    if (cap && evbuffer_get_length(bufferevent_get_output(bev)) > cap)
        return -ENOBUFS;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, data, n);
    evhttp_send_reply_chunk(r->ev, b);
    evbuffer_free(b);
    return 0;
}

void al_reply_stream_end(struct al_req *r)
{
    if (r->ev) {
        evhttp_connection_set_closecb(evhttp_request_get_connection(r->ev), NULL, NULL);
        evhttp_send_reply_end(r->ev);
    }
    r->ev = NULL;
    r->replied = true;
    req_free(r);
}

void al_ready_notify(int fd, const char *line)
{
    if (fd < 0)
        return;
    _cleanup_free_ char *l = al_xasprintf("%s\n", line);
    (void) !write(fd, l, strlen(l));
    (void) close(fd);
}
