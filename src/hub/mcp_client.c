/* SPDX-License-Identifier: Apache-2.0 */
/* The hub's MCP client (mcp_client.h): one state machine per tool call,
 * driven by curl_ev on the hub's loop. It never blocks and never writes the
 * store itself except through loop_mcp_resolve, which decides whether the
 * outcome still belongs to the session's current turn. Response bodies are
 * read as they arrive: application/json into a capped buffer,
 * text/event-stream through the incremental SSE reader, stopping at the
 * JSON-RPC response whose id matches (notifications and server requests in
 * between are ignored). Bearer tokens, arguments and results are never
 * logged. Loop thread only. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../lib/base/buf.h"
#include "../lib/base/log.h"
#include "../lib/base/map.h"
#include "../lib/base/util.h"
#include "../lib/http/curl_ev.h"
#include "../lib/http/sse.h"
#include "hub.h"
#include "mcp_client.h"
#include "mcp_rpc.h"

#define MCP_CONNS_MAX  4096          /* cached MCP sessions before idle ones are dropped */
#define MCP_GOT_IT     (-ECONNABORTED) /* on_body's way to stop once the response is in */
#define MCP_URL_MAX    2048

/* An MCP session with one server for one hub session. */
struct mcp_conn {
    char *session_id;      /* Mcp-Session-Id, NULL when the server keeps none */
    char *version;         /* negotiated protocol version; NULL until initialized */
    bool ready;            /* initialize and notifications/initialized went through */
    unsigned busy;         /* calls using it: never dropped while > 0 */
};

enum call_state {
    CALL_INITIALIZE,       /* initialize sent, its response awaited */
    CALL_INITIALIZED,      /* notifications/initialized sent */
    CALL_TOOL,             /* tools/call sent */
    _CALL_STATE_MAX,
};

static const char *const call_state_name[_CALL_STATE_MAX] = {
    [CALL_INITIALIZE] = "initialize", [CALL_INITIALIZED] = "initialized", [CALL_TOOL] = "tools_call",
};

struct mcp_client {
    struct hub *h;
    struct al_curl *curl;
    struct al_map *conns;  /* "<session>\n<server>\n<url>" -> struct mcp_conn */
    struct al_map *calls;  /* agent.mcp_tool_use id -> struct mcp_call */
    int64_t next_rpc_id;
    bool closing;
};

struct mcp_call {
    struct mcp_client *c;
    char *session_id, *call_id, *server, *tool, *url, *conn_key;
    json_t *arguments;
    struct mcp_conn *conn;
    enum call_state state;
    struct al_curl_xfer *xfer;
    int64_t deadline_us;   /* monotonic: the whole call, all requests */
    int64_t rpc_id;        /* id of the request in flight (0 for a notification) */
    bool reinitialized;    /* a 404 already made us initialize again once */
    bool cancelled;        /* mcp_call_cancel: the outcome goes nowhere */
    /* how to reach the server */
    char *connect_to;      /* tunnel: "::<relay host>:<relay port>" */
    char *ca_pem;          /* tunnel: the active CA certificates */
    size_t ca_pem_len;
    const char *cainfo;    /* elsewhere: --mcp-cacert (borrowed from the config) */
    /* the response being read */
    long status;
    enum mcp_body_kind kind;
    char *new_session_id;
    struct al_buf body;    /* application/json bodies */
    struct al_sse_reader sse;
    size_t bytes;
    json_t *resp;          /* the JSON-RPC response, once found */
};

static void call_set_state(struct mcp_call *k, enum call_state next)
{
    al_log(AL_DEBUG, "mcp.call.state", AL_STR("call", k->call_id), AL_STR("to", call_state_name[next]));
    k->state = next;
}

static struct mcp_conn *conn_free(struct mcp_conn *cn)
{
    if (cn) {
        free(cn->session_id);
        free(cn->version);
        free(cn);
    }
    return NULL;
}

static bool sweep_idle(const char *key, void *value, void *ud)
{
    struct mcp_conn *cn = value;
    if (cn->busy)
        return false;
    conn_free(cn);
    return true;
}

static bool sweep_all(const char *key, void *value, void *ud)
{
    conn_free(value);
    return true;
}

/* The cached conn for key, or a new one. The cache is bounded: when full,
 * the conns no call is using are dropped (they initialize again on their
 * next call; the servers' sessions expire on their own). */
static struct mcp_conn *conn_get(struct mcp_client *c, const char *key)
{
    struct mcp_conn *cn = al_map_get(c->conns, key);
    if (cn)
        return cn;
    if (al_map_size(c->conns) >= MCP_CONNS_MAX)
        al_map_sweep(c->conns, sweep_idle, NULL);
    cn = al_xcalloc(1, sizeof(*cn));
    al_map_put(c->conns, key, cn);
    return cn;
}

/* Forgets what the conn knew: the next request initializes again. */
static void conn_reset(struct mcp_conn *cn)
{
    free(cn->session_id);
    free(cn->version);
    cn->session_id = cn->version = NULL;
    cn->ready = false;
}

static void response_reset(struct mcp_call *k)
{
    k->status = 0;
    k->kind = MCP_BODY_OTHER;
    free(k->new_session_id);
    k->new_session_id = NULL;
    al_buf_clear(&k->body);
    al_sse_reader_done(&k->sse);
    al_sse_reader_init(&k->sse);
    k->bytes = 0;
    json_decref(k->resp);
    k->resp = NULL;
}

static void call_free(struct mcp_call *k)
{
    if (!k)
        return;
    if (k->conn)
        k->conn->busy--;
    response_reset(k);
    al_sse_reader_done(&k->sse);
    free(k->session_id);
    free(k->call_id);
    free(k->server);
    free(k->tool);
    free(k->url);
    free(k->conn_key);
    free(k->connect_to);
    free(k->ca_pem);
    json_decref(k->arguments);
    free(k);
}

/* Hands the outcome to the loop and forgets the call. content is stolen. */
static void call_finish(struct mcp_call *k, json_t *content, bool is_error, const char *error_type, const char *msg)
{
    struct mcp_client *c = k->c;
    struct hub *h = c->h;

    if (error_type)
        h->m.mcp_calls_failed++;
    else if (is_error)
        h->m.mcp_calls_tool_error++;
    else
        h->m.mcp_calls_ok++;
    al_log(error_type ? AL_WARN : AL_INFO, "mcp.call.done", AL_STR("session", k->session_id),
           AL_STR("call", k->call_id), AL_STR("server", k->server), AL_BOOL("is_error", is_error),
           AL_STR("error_type", error_type));
    if (!content)
        content = json_pack("[{s:s, s:s}]", "type", "text", "text", msg ? msg : "MCP call failed");
    (void) al_map_remove(c->calls, k->call_id);
    loop_mcp_resolve(h, k->session_id, k->call_id, content, is_error, error_type, msg);
    call_free(k);
}

static void call_fail(struct mcp_call *k, const char *error_type, const char *fmt, ...) _printf_(3, 4);
static void call_fail(struct mcp_call *k, const char *error_type, const char *fmt, ...)
{
    va_list ap;
    _cleanup_free_ char *why = NULL, *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&why, fmt, ap) < 0)
        abort();
    va_end(ap);
    msg = al_xasprintf("MCP server \"%s\": %s", k->server, why);
    if (error_type && k->conn)
        conn_reset(k->conn);   /* whatever state the server is in, start afresh next time */
    call_finish(k, NULL, true, error_type, msg);
}

static const char *transport_why(int err)
{
    switch (err) {
    case -ETIMEDOUT:    return "timed out";
    case -ECONNREFUSED: return "connection refused";
    case -EHOSTUNREACH: return "host not found or unreachable";
    case -ECONNRESET:   return "connection closed before a complete answer";
    case -EPROTO:       return "TLS handshake failed (the server's certificate is not trusted for this host, or "
                               "the connection closed during the handshake)";
    case -EMSGSIZE:     return "response too large";
    case -EBADMSG:      return "malformed event stream";
    default:            return "transfer failed";
    }
}

/* ---- requests ------------------------------------------------------------ */

static void on_header(const char *line, size_t len, void *ud);
static int on_body(const char *p, size_t n, void *ud);
static void on_done(int err, long status, const char *body, size_t len, void *ud);

/* Sends one JSON-RPC message: a request when id > 0, else a notification. */
static int call_send(struct mcp_call *k, const char *method, json_t *params, bool notification)
{
    struct mcp_client *c = k->c;
    struct hub *h = c->h;
    int64_t left_us = k->deadline_us - al_mono_us();
    _cleanup_free_ char *sid_hdr = NULL, *ver_hdr = NULL;
    const char *headers[4] = { "Accept: application/json, text/event-stream", NULL, NULL, NULL };
    size_t nh = 1;

    if (left_us <= 0) {
        json_decref(params);
        return -ETIMEDOUT;
    }
    k->rpc_id = notification ? 0 : ++c->next_rpc_id;
    json_t *msg = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (!notification)
        json_object_set_new(msg, "id", json_integer(k->rpc_id));
    if (params)
        json_object_set_new(msg, "params", params);
    _cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (k->conn->session_id) {
        sid_hdr = al_xasprintf("Mcp-Session-Id: %s", k->conn->session_id);
        headers[nh++] = sid_hdr;
    }
    if (k->conn->version) {
        ver_hdr = al_xasprintf("MCP-Protocol-Version: %s", k->conn->version);
        headers[nh++] = ver_hdr;
    }
    response_reset(k);
    k->body.max = (size_t) h->cfg.mcp_max_response;
    struct al_curl_req_opts o = {
        .method = "POST", .url = k->url, .content_type = "application/json", .body = text,
        .body_len = strlen(text), .timeout_ms = (long) ((left_us + 999) / 1000),
        .max_response = (size_t) h->cfg.mcp_max_response, .headers = headers, .cainfo = k->cainfo,
        .on_header = on_header, .on_body = on_body, .connect_to = k->connect_to, .ca_pem = k->ca_pem,
        .ca_pem_len = k->ca_pem_len,
    };
    al_log(AL_DEBUG, "mcp.request", AL_STR("call", k->call_id), AL_STR("method", method), AL_I64("rpc_id", k->rpc_id));
    return al_curl_request(c->curl, &o, on_done, k, &k->xfer);
}

static int send_initialize(struct mcp_call *k)
{
    call_set_state(k, CALL_INITIALIZE);
    return call_send(k, "initialize",
                     json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", MCP_PROTOCOL_VERSION, "capabilities",
                               "clientInfo", "name", "airlock-hub", "version", AL_HUB_VERSION),
                     false);
}

static int send_tool_call(struct mcp_call *k)
{
    call_set_state(k, CALL_TOOL);
    return call_send(k, "tools/call", json_pack("{s:s, s:O}", "name", k->tool, "arguments", k->arguments), false);
}

/* Sends the next request or, when that cannot start, fails the call. */
static void call_next(struct mcp_call *k, int (*send)(struct mcp_call *))
{
    int r = send(k);
    if (r < 0)
        call_fail(k, "mcp_connection_failed_error", "%s", transport_why(r));
}

/* ---- responses ------------------------------------------------------------ */

static void on_header(const char *line, size_t len, void *ud)
{
    struct mcp_call *k = ud;
    const char *v;
    size_t n;

    if (len > 5 && !strncmp(line, "HTTP/", 5)) {
        /* A new response (an interim 1xx comes first): its status. */
        const char *sp = memchr(line, ' ', len);
        k->status = 0;
        k->kind = MCP_BODY_OTHER;
        const char *p = sp ? sp + 1 : line + len;
        for (int digits = 0; digits < 3 && p < line + len && *p >= '0' && *p <= '9'; digits++, p++)
            k->status = k->status * 10 + (*p - '0');
        free(k->new_session_id);
        k->new_session_id = NULL;
    } else if (mcp_header_value(line, len, "content-type", &v, &n))
        k->kind = mcp_body_kind(v, n);
    else if (mcp_header_value(line, len, "mcp-session-id", &v, &n) && mcp_session_id_ok(v, n)) {
        free(k->new_session_id);
        k->new_session_id = al_xstrndup(v, n);
    }
}

static int on_sse_event(const char *name, const char *data, size_t len, void *ud)
{
    struct mcp_call *k = ud;
    json_t *resp = NULL;

    /* Only "message" events (the default) carry JSON-RPC; anything that is
     * not the response awaited is ignored. */
    if ((name && strcmp(name, "message")) || len == 0)
        return 0;
    if (mcp_rpc_pick(data, len, k->rpc_id, &resp) == 1) {
        k->resp = resp;
        return MCP_GOT_IT;
    }
    return 0;
}

static int on_body(const char *p, size_t n, void *ud)
{
    struct mcp_call *k = ud;

    if (k->bytes + n > k->body.max)
        return -EMSGSIZE;
    k->bytes += n;
    if (k->status < 200 || k->status > 299 || k->rpc_id == 0)
        return 0;   /* error bodies and answers to notifications are not read */
    if (k->kind == MCP_BODY_SSE) {
        int r = al_sse_reader_feed(&k->sse, p, n, on_sse_event, k);
        return r == -EMSGSIZE ? -EBADMSG : r;
    }
    if (k->kind == MCP_BODY_JSON)
        return al_buf_append(&k->body, p, n);
    return 0;
}

static void handle_initialize(struct mcp_call *k)
{
    _cleanup_free_ char *version = NULL, *why = NULL;
    if (mcp_rpc_init_version(k->resp, &version, &why) < 0) {
        call_fail(k, "mcp_connection_failed_error", "initialize failed: %s", why);
        return;
    }
    conn_reset(k->conn);
    k->conn->version = TAKE_PTR(version);
    k->conn->session_id = TAKE_PTR(k->new_session_id);
    k->c->h->m.mcp_sessions_initialized++;
    al_log(AL_DEBUG, "mcp.initialized", AL_STR("call", k->call_id), AL_STR("version", k->conn->version),
           AL_BOOL("session", k->conn->session_id != NULL));
    call_set_state(k, CALL_INITIALIZED);
    int r = call_send(k, "notifications/initialized", NULL, true);
    if (r < 0)
        call_fail(k, "mcp_connection_failed_error", "%s", transport_why(r));
}

static void handle_tool_result(struct mcp_call *k)
{
    json_t *content = NULL;
    bool is_error = false;
    _cleanup_free_ char *why = NULL;
    int r = mcp_rpc_tool_result(k->resp, &content, &is_error, &why);
    if (r < 0) {
        /* The server answered: a tool-level failure, not a connection one. */
        _cleanup_free_ char *msg = al_xasprintf("MCP server \"%s\": %s", k->server, why);
        call_finish(k, NULL, true, NULL, msg);
        return;
    }
    call_finish(k, content, is_error, NULL, NULL);
}

static void on_done(int err, long status, const char *body, size_t len, void *ud)
{
    struct mcp_call *k = ud;

    k->xfer = NULL;
    if (k->c->closing)
        return;   /* mcp_client_done frees the call */
    if (k->cancelled) {
        (void) al_map_remove(k->c->calls, k->call_id);
        if (k->conn)
            conn_reset(k->conn);   /* the server may still be working in that session */
        al_log(AL_INFO, "mcp.call.cancelled", AL_STR("session", k->session_id), AL_STR("call", k->call_id));
        call_free(k);
        return;
    }
    if (!k->resp && err == 0 && k->rpc_id && k->status >= 200 && k->status <= 299 && k->kind == MCP_BODY_JSON &&
        mcp_rpc_pick(k->body.data ? k->body.data : "", k->body.len, k->rpc_id, &k->resp) != 1)
        k->resp = NULL;
    if (k->resp) {
        if (k->state == CALL_INITIALIZE)
            handle_initialize(k);
        else
            handle_tool_result(k);
        return;
    }
    if (err < 0) {
        call_fail(k, "mcp_connection_failed_error", "%s", transport_why(err));
        return;
    }
    if (status == 401 || status == 403) {
        call_fail(k, "mcp_authentication_failed_error", "HTTP %ld from the server (authentication)", status);
        return;
    }
    if (status == 404 && k->conn->session_id && !k->reinitialized) {
        /* The server forgot the MCP session: start a new one, once. */
        al_log(AL_INFO, "mcp.session_expired", AL_STR("call", k->call_id), AL_STR("server", k->server));
        k->reinitialized = true;
        conn_reset(k->conn);
        call_next(k, send_initialize);
        return;
    }
    if (status < 200 || status > 299) {
        call_fail(k, "mcp_connection_failed_error", "HTTP %ld from the server", status);
        return;
    }
    switch (k->state) {
    case CALL_INITIALIZED:
        k->conn->ready = true;
        call_next(k, send_tool_call);
        return;
    case CALL_INITIALIZE:
    case CALL_TOOL:
        if (k->kind == MCP_BODY_SSE)
            call_fail(k, "mcp_connection_failed_error", "the event stream ended without the response to %s",
                      call_state_name[k->state]);
        else if (k->kind == MCP_BODY_JSON)
            call_fail(k, "mcp_connection_failed_error", "no JSON-RPC response to %s in the answer",
                      call_state_name[k->state]);
        else
            call_fail(k, "mcp_connection_failed_error", "answered %s without a JSON or event-stream body",
                      call_state_name[k->state]);
        return;
    default:
        call_fail(k, "mcp_connection_failed_error", "internal state error");
    }
}

/* ---- where a server is ---------------------------------------------------- */

static json_t *find_server(json_t *session, const char *name)
{
    json_t *servers = json_object_get(json_object_get(session, "agent"), "mcp_servers"), *s;
    size_t i;
    json_array_foreach(servers, i, s) {
        if (!strcmp(json_string_value(json_object_get(s, "name")) ?: "", name))
            return s;
    }
    return NULL;
}

/* The active CA certificates of tunnel id, concatenated; *ret NULL if none. */
static int tunnel_cas(struct hub *h, const char *tunnel_id, char **ret, size_t *ret_len)
{
    struct al_list_query q = { .kind = AL_KIND_TUNNEL_CERT, .parent = tunnel_id, .limit = 100 };
    json_t *certs = json_array(), *cert;
    int64_t next = 0;
    size_t i, n = 0;
    char *out = NULL;

    int e = al_store_list(h->store, &q, certs, &next);
    json_array_foreach(certs, i, cert) {
        const char *pem = json_string_value(json_object_get(cert, "_pem"));
        if (e < 0 || !pem || json_is_string(json_object_get(cert, "archived_at")))
            continue;
        size_t l = strlen(pem);
        out = al_xrealloc(out, n + l + 2);
        memcpy(out + n, pem, l);
        n += l;
        out[n++] = '\n';
        out[n] = '\0';
    }
    json_decref(certs);
    if (e < 0) {
        free(out);
        return e;
    }
    *ret = out;
    *ret_len = n;
    return 0;
}

/* Fills in how k reaches its server. Returns 0, 1 with *ret_msg (and
 * *ret_error_type) when it cannot be reached, or -errno. */
static int call_route(struct hub *h, struct mcp_call *k, char **ret_msg, const char **ret_error_type)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int ret = 1;

    if (!u)
        abort();
    if (strlen(k->url) > MCP_URL_MAX || curl_url_set(u, CURLUPART_URL, k->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
        *ret_msg = al_xasprintf("MCP server \"%s\" has no usable http(s) URL", k->server);
        goto out;
    }
    for (char *p = host; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char) (*p - 'A' + 'a');
    char tunnel_host[256];
    int t = mcp_tunnel_hostname(host, h->cfg.tunnel_domain, tunnel_host, sizeof(tunnel_host));
    if (t == 0) {
        if (!strcmp(scheme, "https"))
            k->cainfo = h->cfg.mcp_cacert;
        ret = 0;
        goto out;
    }
    *ret_error_type = "mcp_connection_failed_error";
    if (t < 0) {
        *ret_msg = al_xasprintf("MCP server \"%s\": no tunnel has a name this long", k->server);
        goto out;
    }
    if (strcmp(scheme, "https")) {
        *ret_msg = al_xasprintf("MCP server \"%s\": servers behind a tunnel are reached over https only", k->server);
        goto out;
    }
    json_t *tunnel = NULL;
    int e = al_store_get_by_hash(h->store, AL_KIND_TUNNEL, tunnel_host, &tunnel);
    if (e == -ENOENT) {
        *ret_msg = al_xasprintf("MCP server \"%s\": no tunnel has the hostname %s", k->server, tunnel_host);
        goto out;
    }
    if (e < 0) {
        ret = e;
        goto out;
    }
    const char *tid = json_string_value(json_object_get(tunnel, "id")) ?: "?";
    e = json_is_string(json_object_get(tunnel, "archived_at")) ? 0 : tunnel_cas(h, tid, &k->ca_pem, &k->ca_pem_len);
    if (e < 0)
        ret = e;
    else if (!k->ca_pem)
        *ret_msg = al_xasprintf("MCP server \"%s\": tunnel %s has no active CA certificate%s", k->server, tid,
                                json_is_string(json_object_get(tunnel, "archived_at")) ? " (it is archived)" : "");
    else if (!h->cfg.tunnel_relay)
        *ret_msg = al_xasprintf("MCP server \"%s\": tunnel %s, but this hub has no --tunnel-relay", k->server, tid);
    else {
        k->connect_to = al_xasprintf("::%s", h->cfg.tunnel_relay);
        ret = 0;
    }
    json_decref(tunnel);
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ret;
}

/* ---- the module's face ---------------------------------------------------- */

int mcp_call_start(struct hub *h, json_t *session, const char *call_id, const char *server, const char *tool,
                   json_t *input, char **ret_msg, const char **ret_error_type)
{
    struct mcp_client *c = h->mcp;
    json_t *srv = find_server(session, server);
    const char *url = json_string_value(json_object_get(srv, "url"));
    const char *type = json_string_value(json_object_get(srv, "type"));

    *ret_error_type = NULL;
    if (!srv) {
        *ret_msg = al_xasprintf("MCP server \"%s\" is not one of this agent's mcp_servers", server);
        return 1;
    }
    if (!url || (type && strcmp(type, "url"))) {
        *ret_msg = al_xasprintf("MCP server \"%s\" is not a {\"type\":\"url\"} server with a url", server);
        return 1;
    }
    if (!c || c->closing) {
        *ret_msg = al_xstrdup("the hub's MCP client is not running");
        return 1;
    }
    struct mcp_call *k = al_xcalloc(1, sizeof(*k));
    k->c = c;
    k->session_id = al_xstrdup(json_string_value(json_object_get(session, "id")));
    k->call_id = al_xstrdup(call_id);
    k->server = al_xstrdup(server);
    k->tool = al_xstrdup(tool);
    k->url = al_xstrdup(url);
    k->arguments = json_incref(input);
    k->deadline_us = al_mono_us() + h->cfg.mcp_timeout_us;
    al_sse_reader_init(&k->sse);
    int r = call_route(h, k, ret_msg, ret_error_type);
    if (r != 0) {
        if (r == 1)
            h->m.mcp_calls_failed += *ret_error_type != NULL;
        call_free(k);
        return r;
    }
    k->conn_key = al_xasprintf("%s\n%s\n%s", k->session_id, server, url);
    k->conn = conn_get(c, k->conn_key);
    k->conn->busy++;
    al_map_put(c->calls, call_id, k);
    al_log(AL_INFO, "mcp.call.start", AL_STR("session", k->session_id), AL_STR("call", call_id),
           AL_STR("server", server), AL_BOOL("tunnel", k->connect_to != NULL), AL_BOOL("reuse", k->conn->ready));
    r = k->conn->ready ? send_tool_call(k) : send_initialize(k);
    if (r < 0) {
        (void) al_map_remove(c->calls, call_id);
        *ret_msg = al_xasprintf("MCP server \"%s\": %s", server, transport_why(r));
        *ret_error_type = "mcp_connection_failed_error";
        h->m.mcp_calls_failed++;
        call_free(k);
        return 1;
    }
    return 0;
}

void mcp_call_cancel(struct hub *h, const char *call_id)
{
    struct mcp_call *k = h->mcp && call_id ? al_map_get(h->mcp->calls, call_id) : NULL;
    if (!k || k->cancelled)
        return;
    k->cancelled = true;
    al_curl_cancel(k->xfer);   /* on_done runs on a later pass, with -ECANCELED, and frees k */
}

bool mcp_call_in_flight(struct hub *h, const char *call_id)
{
    return h->mcp && call_id && al_map_get(h->mcp->calls, call_id) != NULL;
}

int mcp_client_init(struct hub *h)
{
    struct mcp_client *c = al_xcalloc(1, sizeof(*c));
    c->h = h;
    c->curl = al_curl_new(h->base);
    if (!c->curl) {
        free(c);
        return -ENOMEM;
    }
    c->conns = al_map_new();
    c->calls = al_map_new();
    h->mcp = c;
    return 0;
}

static bool sweep_calls(const char *key, void *value, void *ud)
{
    call_free(value);
    return true;
}

void mcp_client_done(struct hub *h)
{
    struct mcp_client *c = h->mcp;
    if (!c)
        return;
    c->closing = true;
    c->curl = al_curl_free(c->curl);   /* every on_done fires now and returns at once */
    if (al_map_size(c->calls))
        al_log(AL_INFO, "mcp.calls_abandoned", AL_I64("calls", (int64_t) al_map_size(c->calls)));
    al_map_sweep(c->calls, sweep_calls, NULL);
    al_map_sweep(c->conns, sweep_all, NULL);
    c->calls = al_map_free(c->calls);
    c->conns = al_map_free(c->conns);
    free(c);
    h->mcp = NULL;
}
