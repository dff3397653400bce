/* SPDX-License-Identifier: Apache-2.0 */
/* The audit extractor (stream_internal.h, docs/AUDIT.md "Audit log"): fed
 * by the HTTP/1.1 observer of one stream, it pairs JSON-RPC requests with
 * their responses (a JSON body, or events of an SSE response) and writes
 * one line per request. Argument values are only ever HMAC'd (over their
 * RFC 8785 form); bearer tokens are decoded for their claims and dropped.
 * Loop thread only; fuzzed by fuzz_audit.c. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "../lib/base/util.h"
#include "stream_internal.h"

#define CLAIM_MAX 256
#define ERRMSG_MAX 200

struct rpc_req {
    json_t *id;                 /* as sent; NULL for a notification */
    char *method, *tool, *uri, *args_hmac;
    size_t args_bytes;
    bool done;
};

struct exchange {
    struct exchange *next;
    int64_t ts_us, start_mono, ttfb_mono;
    char *proto_ver, *session, *user_agent, *mcp_name;
    char *client_info;          /* from initialize, _meta or the session table */
    json_t *claims;             /* iss, sub, client_id, azp (strings) */
    struct al_buf body, resp;
    bool body_truncated, resp_truncated, req_done, resp_started, resp_done, sse, init;
    int http_status;
    struct rpc_req *reqs;
    size_t nreqs;
    uint64_t bytes_in, bytes_out;
};

struct gw_audit_stream {
    struct gw_audit *a;
    char *tunnel, *route, *upstream, *conn, *client_ip, *sni, *client_info;
    uint64_t stream;
    gw_audit_outcome_fn outcome;
    void *outcome_arg;
    struct gw_h1 *h1;
    struct exchange *head, *tail;   /* FIFO in request order */
    struct exchange *req_cur, *resp_cur;
};

static char *dup_or_null(const char *s)
{
    return s ? al_xstrdup(s) : NULL;
}

struct gw_audit_stream *gw_audit_stream_new(struct gw_audit *a, const struct gw_audit_stream_info *info,
                                            gw_audit_outcome_fn outcome, void *outcome_arg)
{
    struct gw_audit_stream *s = al_xcalloc(1, sizeof(*s));
    s->a = a;
    s->tunnel = dup_or_null(info->tunnel);
    s->route = dup_or_null(info->route);
    s->upstream = dup_or_null(info->upstream);
    s->conn = dup_or_null(info->conn);
    s->client_ip = dup_or_null(info->client_ip);
    s->sni = dup_or_null(info->sni);
    s->stream = info->stream;
    s->outcome = outcome;
    s->outcome_arg = outcome_arg;
    return s;
}

void gw_audit_stream_set_route(struct gw_audit_stream *s, const char *route, const char *upstream, const char *sni)
{
    free(s->route);
    free(s->upstream);
    s->route = dup_or_null(route);
    s->upstream = dup_or_null(upstream);
    if (sni) {
        free(s->sni);
        s->sni = al_xstrdup(sni);
    }
}

void gw_audit_stream_set_h1(struct gw_audit_stream *s, struct gw_h1 *h1)
{
    s->h1 = h1;
}

static void exchange_free(struct exchange *e)
{
    for (size_t i = 0; i < e->nreqs; i++) {
        json_decref(e->reqs[i].id);
        free(e->reqs[i].method);
        free(e->reqs[i].tool);
        free(e->reqs[i].uri);
        free(e->reqs[i].args_hmac);
    }
    free(e->reqs);
    free(e->proto_ver);
    free(e->session);
    free(e->user_agent);
    free(e->mcp_name);
    free(e->client_info);
    json_decref(e->claims);
    al_buf_clear(&e->body);
    al_buf_clear(&e->resp);
    free(e);
}

/* ---- writing a record ---------------------------------------------------- */

static void set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static json_t *rpc_id_json(const json_t *id)
{
    char num[40];
    if (!id)
        return json_null();
    if (json_is_string(id))
        return json_string(json_string_value(id));
    if (json_is_number(id) && gw_jcs_number(json_number_value(id), num, sizeof(num)) > 0)
        return json_string(num);
    return json_null();
}

static double ms(int64_t us)
{
    return round((double) us / 100.0) / 10.0;
}

static void emit(struct gw_audit_stream *s, struct exchange *e, struct rpc_req *q, const char *status,
                 const json_t *error, bool is_error)
{
    char ts[AL_RFC3339_MAX];
    json_t *o = json_object(), *agent = json_object();
    int64_t now = al_mono_us();

    q->done = true;
    json_object_set_new(o, "ts", json_string(al_rfc3339(e->ts_us, ts)));
    set_str(o, "tunnel", s->tunnel);
    set_str(o, "route", s->route);
    set_str(o, "upstream", s->upstream);
    set_str(o, "conn", s->conn);
    json_object_set_new(o, "stream", json_integer((json_int_t) s->stream));
    set_str(o, "client_ip", s->client_ip);
    set_str(o, "sni", s->sni);
    set_str(o, "proto_ver", e->proto_ver);
    set_str(o, "session", e->session);
    json_object_set_new(o, "rpc_id", rpc_id_json(q->id));
    set_str(o, "method", q->method);
    if (q->tool)
        set_str(o, "tool", q->tool);
    if (q->uri)
        set_str(o, "uri", q->uri);
    set_str(o, "args_hmac", q->args_hmac);
    json_object_set_new(o, "args_bytes", q->args_hmac ? json_integer((json_int_t) q->args_bytes) : json_null());
    if (e->body_truncated)
        json_object_set_new(o, "truncated", json_true());
    if (e->mcp_name && (q->tool || q->uri) && strcmp(e->mcp_name, q->tool ? q->tool : q->uri) != 0)
        json_object_set_new(o, "mcp_name_mismatch", json_true());
    const char *claims[] = { "iss", "sub", "client_id", "azp" };
    for (size_t i = 0; i < AL_ELEMENTSOF(claims); i++)
        set_str(agent, claims[i], e->claims ? json_string_value(json_object_get(e->claims, claims[i])) : NULL);
    set_str(agent, "client_info", e->client_info ? e->client_info : s->client_info);
    set_str(agent, "user_agent", e->user_agent);
    json_object_set_new(o, "agent", agent);
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "is_error", json_boolean(is_error));
    json_object_set_new(o, "jsonrpc_error", error ? json_deep_copy(error) : json_null());
    json_object_set_new(o, "http_status", e->resp_started ? json_integer(e->http_status) : json_null());
    json_object_set_new(o, "sse", json_boolean(e->sse));
    json_object_set_new(o, "latency_ms", json_real(ms(now - e->start_mono)));
    json_object_set_new(o, "ttfb_ms", e->resp_started ? json_real(ms(e->ttfb_mono - e->start_mono)) : json_null());
    json_object_set_new(o, "bytes_in", json_integer((json_int_t) e->bytes_in));
    uint64_t out = e->bytes_out;
    if (e == s->resp_cur && s->h1)
        out = gw_h1_msg_bytes(s->h1, 1);
    json_object_set_new(o, "bytes_out", json_integer((json_int_t) out));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(o);
    if (!line)
        abort();
    gw_audit_emit_take(s->a, line);
    if (s->outcome)
        s->outcome(s->outcome_arg, q->method, status);
}

/* ---- requests ------------------------------------------------------------ */

static char *header_copy(const char *v, size_t max)
{
    return v ? al_xstrndup(v, AL_MIN(strlen(v), max)) : NULL;
}

/* Claims of a bearer JWT, decoded without verification (the upstream is
 * the authority). The token itself is never kept. */
static json_t *jwt_claims(const char *auth)
{
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return NULL;
    const char *t = auth + 7, *d1 = strchr(t, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2 || (size_t) (d2 - d1 - 1) > 8192)
        return NULL;
    _cleanup_free_ unsigned char *raw = NULL;
    size_t n;
    if (al_b64_decode(d1 + 1, (size_t) (d2 - d1 - 1), &raw, &n) < 0)
        return NULL;
    json_t *p = json_loadb((const char *) raw, n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        return NULL;
    }
    json_t *c = json_object();
    const char *keys[] = { "iss", "sub", "client_id", "azp" };
    for (size_t i = 0; i < AL_ELEMENTSOF(keys); i++) {
        const char *v = json_string_value(json_object_get(p, keys[i]));
        if (v)
            json_object_set_new(c, keys[i], json_stringn(v, AL_MIN(strlen(v), (size_t) CLAIM_MAX)));
    }
    json_decref(p);
    return c;
}

static void on_request_head(struct gw_audit_stream *s, const struct gw_h1_head *h)
{
    struct exchange *e = al_xcalloc(1, sizeof(*e));

    e->ts_us = al_now_us();
    e->start_mono = al_mono_us();
    e->body.max = GW_AUDIT_BODY_MAX;
    e->resp.max = GW_AUDIT_RESP_MAX;
    for (size_t i = 0; i < h->n; i++) {
        const char *k = h->h[i].name, *v = h->h[i].value;
        if (strcasecmp(k, "mcp-protocol-version") == 0 && !e->proto_ver)
            e->proto_ver = header_copy(v, 64);
        else if (strcasecmp(k, "mcp-session-id") == 0 && !e->session)
            e->session = gw_audit_hmac(s->a, v, strlen(v));
        else if (strcasecmp(k, "user-agent") == 0 && !e->user_agent)
            e->user_agent = header_copy(v, CLAIM_MAX);
        else if (strcasecmp(k, "mcp-name") == 0 && !e->mcp_name)
            e->mcp_name = header_copy(v, 1024);
        else if (strcasecmp(k, "authorization") == 0 && !e->claims)
            e->claims = jwt_claims(v);
    }
    if (e->session) {
        const char *ci = gw_audit_session_get(s->a, e->session);
        if (ci)
            e->client_info = al_xstrdup(ci);
    }
    if (s->tail)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
    s->req_cur = e;
}

/* "name/version" of a clientInfo object, or NULL. */
static char *client_info_of(const json_t *ci)
{
    const char *n = json_string_value(json_object_get(ci, "name"));
    const char *v = json_string_value(json_object_get(ci, "version"));
    return n ? al_xasprintf("%.128s%s%.64s", n, v ? "/" : "", v ? v : "") : NULL;
}

static void add_request(struct gw_audit_stream *s, struct exchange *e, const json_t *m)
{
    const char *method = json_string_value(json_object_get(m, "method"));
    json_t *id = json_object_get(m, "id");
    json_t *params = json_object_get(m, "params");

    if (!method)
        return;   /* a client's response to a server request: no line */
    e->reqs = al_xrealloc(e->reqs, (e->nreqs + 1) * sizeof(*e->reqs));
    struct rpc_req *q = &e->reqs[e->nreqs++];
    memset(q, 0, sizeof(*q));
    q->method = al_xstrndup(method, AL_MIN(strlen(method), (size_t) 128));
    q->id = id && !json_is_null(id) ? json_incref(id) : NULL;
    if (strcmp(method, "tools/call") == 0 || strcmp(method, "prompts/get") == 0) {
        const char *name = json_string_value(json_object_get(params, "name"));
        q->tool = name ? al_xstrndup(name, AL_MIN(strlen(name), (size_t) 256)) : NULL;
    } else if (strcmp(method, "resources/read") == 0) {
        const char *uri = json_string_value(json_object_get(params, "uri"));
        q->uri = uri ? al_xstrndup(uri, AL_MIN(strlen(uri), (size_t) 1024)) : NULL;
    }
    json_t *args = json_object_get(params, "arguments");
    if (args) {
        struct al_buf c = { .max = GW_AUDIT_BODY_MAX };
        if (gw_jcs_append(args, &c) == 0) {
            q->args_hmac = gw_audit_hmac(s->a, c.data, c.len);
            q->args_bytes = c.len;
        }
        al_buf_clear(&c);
    }
    /* clientInfo: from initialize (kept for the stream and, once the
     * response names the session, for the session), or from _meta on each
     * request (stateless MCP, 2026-07-28). */
    char *ci = NULL;
    if (strcmp(method, "initialize") == 0)
        ci = client_info_of(json_object_get(params, "clientInfo"));
    if (!ci)
        ci = client_info_of(json_object_get(json_object_get(params, "_meta"), "io.modelcontextprotocol/clientInfo"));
    if (ci) {
        free(e->client_info);
        e->client_info = ci;
        if (strcmp(method, "initialize") == 0) {
            free(s->client_info);
            s->client_info = al_xstrdup(ci);
            e->init = true;
        }
    }
}

static void request_end(struct gw_audit_stream *s, struct exchange *e)
{
    e->req_done = true;
    e->bytes_in = s->h1 ? gw_h1_msg_bytes(s->h1, 0) : e->body.len;
    if (e->body_truncated) {
        /* Too large to parse: one record, digest of the first bytes. */
        e->reqs = al_xcalloc(1, sizeof(*e->reqs));
        e->nreqs = 1;
        e->reqs[0].args_hmac = gw_audit_hmac(s->a, e->body.data, e->body.len);
        e->reqs[0].args_bytes = e->body.len;
    } else if (e->body.len > 0) {
        json_t *b = json_loadb(e->body.data, e->body.len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
        if (json_is_object(b)) {
            add_request(s, e, b);
        } else if (json_is_array(b)) {
            for (size_t i = 0; i < json_array_size(b) && i < 1024; i++)
                if (json_is_object(json_array_get(b, i)))
                    add_request(s, e, json_array_get(b, i));
        }
        json_decref(b);
    }
    al_buf_clear(&e->body);
}

/* ---- responses ----------------------------------------------------------- */

static bool id_eq(const json_t *a, const json_t *b)
{
    if (!a || !b)
        return false;
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b)) == 0;
    return json_is_number(a) && json_is_number(b) && json_number_value(a) == json_number_value(b);
}

static void on_rpc_response(struct gw_audit_stream *s, struct exchange *e, const json_t *m)
{
    json_t *id = json_object_get(m, "id");
    if (!id || json_object_get(m, "method"))
        return;   /* a server request or notification on the SSE stream */
    for (size_t i = 0; i < e->nreqs; i++) {
        struct rpc_req *q = &e->reqs[i];
        if (q->done || !q->id || !id_eq(q->id, id))
            continue;
        json_t *err = json_object_get(m, "error");
        if (json_is_object(err)) {
            json_t *ej = json_object();
            json_t *code = json_object_get(err, "code");
            const char *msg = json_string_value(json_object_get(err, "message"));
            json_object_set_new(ej, "code", json_is_number(code) ? json_integer((json_int_t) json_number_value(code)) : json_null());
            json_object_set_new(ej, "message", msg ? json_stringn(msg, AL_MIN(strlen(msg), (size_t) ERRMSG_MAX)) : json_null());
            emit(s, e, q, "error", ej, false);
            json_decref(ej);
        } else {
            json_t *res = json_object_get(m, "result");
            emit(s, e, q, "ok", NULL, json_is_true(json_object_get(res, "isError")));
        }
        return;
    }
}

static void on_rpc_body(struct gw_audit_stream *s, struct exchange *e, const char *data, size_t len)
{
    json_t *b = json_loadb(data, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    if (json_is_object(b)) {
        on_rpc_response(s, e, b);
    } else if (json_is_array(b)) {
        for (size_t i = 0; i < json_array_size(b) && i < 1024; i++)
            if (json_is_object(json_array_get(b, i)))
                on_rpc_response(s, e, json_array_get(b, i));
    }
    json_decref(b);
}

/* Writes what is left of a finished exchange and drops it. */
static void exchange_finish(struct gw_audit_stream *s, struct exchange *e, bool aborted)
{
    for (size_t i = 0; i < e->nreqs; i++) {
        struct rpc_req *q = &e->reqs[i];
        if (q->done)
            continue;
        /* Unanswered: the response ended (or the stream died) before a
         * JSON-RPC response with this id came. A body too large to parse
         * is judged by its HTTP status alone. */
        const char *st = !q->id && q->method ? "notification"
                         : aborted ? "aborted"
                         : e->http_status >= 400 ? "error"
                         : e->body_truncated ? "ok" : "aborted";
        emit(s, e, q, st, NULL, false);
    }
    struct exchange **pp = &s->head, *prev = NULL;
    while (*pp && *pp != e)
        prev = *pp, pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    if (s->tail == e)
        s->tail = prev;
    if (s->req_cur == e)
        s->req_cur = NULL;
    if (s->resp_cur == e)
        s->resp_cur = NULL;
    exchange_free(e);
}

static void on_response_head(struct gw_audit_stream *s, const struct gw_h1_head *h)
{
    struct exchange *e = s->head;
    while (e && e->resp_started)
        e = e->next;
    if (!e)
        return;
    e->resp_started = true;
    e->ttfb_mono = al_mono_us();
    e->http_status = h->status;
    e->sse = s->h1 ? gw_h1_sse(s->h1) : false;
    s->resp_cur = e;
    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->h[i].name, "mcp-session-id") != 0)
            continue;
        /* The initialize response names the session: its line carries it,
         * and later requests of the session get its clientInfo. */
        if (!e->session)
            e->session = gw_audit_hmac(s->a, h->h[i].value, strlen(h->h[i].value));
        if (e->init && e->client_info)
            gw_audit_session_put(s->a, e->session, e->client_info);
        break;
    }
}

static void cb_head(void *arg, int dir, const struct gw_h1_head *h)
{
    if (dir == 0)
        on_request_head(arg, h);
    else
        on_response_head(arg, h);
}

static void cb_body(void *arg, int dir, const void *data, size_t len)
{
    struct gw_audit_stream *s = arg;
    struct exchange *e = dir == 0 ? s->req_cur : s->resp_cur;
    if (!e)
        return;
    if (dir == 0) {
        size_t room = e->body.max - e->body.len;
        if (e->body_truncated)
            return;
        if (len > room || al_buf_append(&e->body, data, len) < 0) {
            if (al_buf_append(&e->body, data, room) < 0)
                al_buf_clear(&e->body);
            e->body_truncated = true;
        }
    } else if (!e->sse && !e->resp_truncated && al_buf_append(&e->resp, data, len) < 0) {
        e->resp_truncated = true;
        al_buf_clear(&e->resp);
    }
}

static void cb_sse(void *arg, const char *event, const char *data, size_t len, bool truncated)
{
    struct gw_audit_stream *s = arg;
    if (s->resp_cur && !truncated && strcmp(event, "message") == 0)
        on_rpc_body(s, s->resp_cur, data, len);
}

static void cb_end(void *arg, int dir)
{
    struct gw_audit_stream *s = arg;
    struct exchange *e = dir == 0 ? s->req_cur : s->resp_cur;
    if (!e)
        return;
    if (dir == 0) {
        request_end(s, e);
        s->req_cur = NULL;
        if (e->resp_done) {
            if (!e->sse && !e->resp_truncated && e->resp.len > 0)
                on_rpc_body(s, e, e->resp.data, e->resp.len);
            exchange_finish(s, e, false);
        }
        return;
    }
    e->bytes_out = s->h1 ? gw_h1_msg_bytes(s->h1, 1) : e->resp.len;
    if (!e->sse && !e->resp_truncated && e->resp.len > 0 && e->req_done)
        on_rpc_body(s, e, e->resp.data, e->resp.len);
    e->resp_done = true;
    s->resp_cur = NULL;
    if (e->req_done)
        exchange_finish(s, e, false);
    /* else: the server answered before the request ended (e.g. 413); the
     * line is written when the request ends. The JSON body was not matched
     * against requests it could not yet know, so keep it for then. */
}

const struct gw_h1_cb gw_audit_h1_cb = {
    .head = cb_head,
    .body = cb_body,
    .sse_event = cb_sse,
    .end = cb_end,
};

struct gw_audit_stream *gw_audit_stream_free(struct gw_audit_stream *s)
{
    if (!s)
        return NULL;
    while (s->head) {
        struct exchange *e = s->head;
        if (!e->req_done && e->body.len > 0 && !e->body_truncated)
            request_end(s, e);   /* the whole request arrived but the stream died */
        exchange_finish(s, e, true);
    }
    free(s->tunnel);
    free(s->route);
    free(s->upstream);
    free(s->conn);
    free(s->client_ip);
    free(s->sni);
    free(s->client_info);
    free(s);
    return NULL;
}
