/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock mcp-demo-server`: the small private MCP server `airlock up` puts
 * behind its gateway. MCP Streamable HTTP on POST /mcp with JSON answers
 * only (no SSE, no GET stream): initialize hands out an Mcp-Session-Id,
 * notifications and responses get 202, tools/list and tools/call serve two
 * read-only tools over a canned ticket table. Not a general MCP server and
 * not meant to face anyone but the gateway: it keeps no state beyond a
 * bounded session table. Every body is parsed by jansson (al_json_decode);
 * errors are JSON-RPC error objects, id null when there is no request id.
 * One libevent loop, evhttp directly (the hub's router speaks the
 * platform's error shape, which an MCP client does not expect). */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "../lib/base/json.h"
#include "../lib/base/log.h"
#include "../lib/base/opt.h"
#include "../lib/base/util.h"
#include "../lib/http/server.h"
#include "cli-internal.h"
#include "cli.h"

#define DEMO_MAX_BODY      (64u << 10)      /* a JSON-RPC message; more is 413 */
#define DEMO_MAX_BODY_HARD (1u << 20)       /* evhttp's own cut, above ours */
#define DEMO_MAX_SESSIONS  64               /* the least recently used one goes */
#define DEMO_SESSION_ID_LEN 32              /* hex characters */
#define DEMO_SERVER_NAME   "airlock-demo-tickets"
#define DEMO_SERVER_VERSION "0.1.0"

/* JSON-RPC 2.0 and MCP codes. */
#define RPC_PARSE_ERROR      (-32700)
#define RPC_INVALID_REQUEST  (-32600)
#define RPC_METHOD_NOT_FOUND (-32601)
#define RPC_INVALID_PARAMS   (-32602)
#define RPC_SERVER_ERROR     (-32000)       /* transport-level refusals, as the MCP SDKs send them */
#define RPC_SESSION_NOT_FOUND (-32001)

/* Newest first; the first is what a client that asks for something else gets. */
static const char *const protocol_versions[] = { "2025-11-25", "2025-06-18", "2025-03-26", NULL };

struct demo_cfg {
    char *listen;
    int64_t ready_fd;
    char *log_level;
};

struct demo_session {
    char id[DEMO_SESSION_ID_LEN + 1];        /* "" when the slot is free */
    char version[16];                        /* negotiated protocol version */
    int64_t used_us;                         /* monotonic, for eviction */
};

struct demo {
    struct demo_cfg cfg;
    struct event_base *base;
    struct evhttp *http;
    struct event *sigterm, *sigint;
    struct demo_session sessions[DEMO_MAX_SESSIONS];
    uint64_t calls;
};

#define O(n, t, f, def, meta, help) AL_OPT(n, t, struct demo_cfg, f, def, meta, help)
static const struct al_opt demo_opts[] = {
    O("listen", AL_OPT_STR, listen, "127.0.0.1:0", "ADDR", "HTTP address (port 0 picks a free one)"),
    O("ready-fd", AL_OPT_INT, ready_fd, "-1", "N", "write the base URL to fd N once listening, then close it"),
    O("log-level", AL_OPT_STR, log_level, "info", "LEVEL", "debug, info, warn or error"),
    { 0 },
};
#undef O

/* ---- the ticket table and the tools ------------------------------------ */

struct ticket {
    const char *id, *title, *status, *priority, *assignee, *updated, *note;
};

static const struct ticket tickets[] = {
    { "TCK-1040", "VPN drops every 30 minutes on the Lisbon office network", "closed", "medium", "noor",
      "2026-11-02", "fixed by raising the IKE lifetime; verified by the reporter" },
    { "TCK-1042", "Checkout fails for cards issued in the EU", "open", "high", "dana", "2026-11-24",
      "3-D Secure challenge times out after 10 s; the payment provider is looking at it" },
    { "TCK-1043", "Nightly invoice export is missing the VAT column", "pending", "medium", "sam", "2026-11-23",
      "waiting for finance to confirm the column order" },
    { "TCK-1047", "Staging database disk at 91%", "open", "low", "lee", "2026-11-25",
      "old WAL segments; a cleanup job is scheduled" },
};

/* A copy of s cut to at most max bytes on a UTF-8 boundary (s comes from
 * jansson, so it is valid UTF-8 and so is the copy). Caller frees. */
static char *cut(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max)
        return al_xstrdup(s);
    while (max > 0 && ((unsigned char) s[max] & 0xC0) == 0x80)
        max--;
    return al_xstrndup(s, max);
}

static const struct ticket *ticket_find(const char *id)
{
    for (size_t i = 0; i < AL_ELEMENTSOF(tickets); i++)
        if (!strcasecmp(tickets[i].id, id))
            return &tickets[i];
    return NULL;
}

static json_t *ticket_json(const struct ticket *t)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", t->id, "title", t->title, "status", t->status,
                     "priority", t->priority, "assignee", t->assignee, "updated", t->updated, "note", t->note);
}

/* A tools/call result: one text block (text is taken), and
 * structuredContent when given (stolen). */
static json_t *tool_result(bool is_error, json_t *structured, char *text)
{
    json_t *res = json_pack("{s:[{s:s,s:s}],s:b}", "content", "type", "text", "text", text, "isError", is_error);

    free(text);
    if (structured)
        json_object_set_new(res, "structuredContent", structured);
    return res;
}

/* Invalid arguments are a tool execution error (isError), not a protocol
 * error: the model reads the message and can correct itself. */
static json_t *tool_lookup_ticket(json_t *args)
{
    const char *id = json_string_value(json_object_get(args, "id"));

    if (!id || json_object_size(args) != 1)
        return tool_result(true, NULL,
                           al_xstrdup("lookup_ticket takes one argument, \"id\", a string such as \"TCK-1042\""));
    const struct ticket *t = ticket_find(id);
    if (!t) {
        _cleanup_free_ char *known = al_xstrdup("");
        for (size_t i = 0; i < AL_ELEMENTSOF(tickets); i++) {
            char *next = al_xasprintf("%s%s%s", known, i ? ", " : "", tickets[i].id);
            free(known);
            known = next;
        }
        _cleanup_free_ char *shown = cut(id, 40);
        return tool_result(true, NULL, al_xasprintf("no ticket %s (known tickets: %s)", shown, known));
    }
    return tool_result(false, json_pack("{s:o}", "ticket", ticket_json(t)),
                       al_xasprintf("%s [%s, %s priority] %s; assignee %s, updated %s: %s", t->id, t->status,
                                    t->priority, t->title, t->assignee, t->updated, t->note));
}

static json_t *tool_list_tickets(json_t *args)
{
    json_t *st = json_object_get(args, "status");
    const char *status = json_string_value(st);

    if ((st && !status) || json_object_size(args) > (st ? 1u : 0u) ||
        (status && strcmp(status, "open") && strcmp(status, "pending") && strcmp(status, "closed")))
        return tool_result(true, NULL, al_xstrdup("list_tickets takes an optional \"status\": \"open\", "
                                                  "\"pending\" or \"closed\""));
    json_t *list = json_array();
    _cleanup_free_ char *text = al_xstrdup("");
    for (size_t i = 0; i < AL_ELEMENTSOF(tickets); i++) {
        const struct ticket *t = &tickets[i];
        if (status && strcmp(status, t->status) != 0)
            continue;
        json_array_append_new(list, ticket_json(t));
        char *next = al_xasprintf("%s%s%s [%s] %s", text, *text ? "\n" : "", t->id, t->status, t->title);
        free(text);
        text = next;
    }
    size_t n = json_array_size(list);
    return tool_result(false, json_pack("{s:o}", "tickets", list),
                       al_xasprintf("%zu ticket%s%s%s", n, n == 1 ? "" : "s", n ? ":\n" : "", text));
}

static const struct {
    const char *name, *title, *description;
    json_t *(*fn)(json_t *args);
} tools[] = {
    { "lookup_ticket", "Look up a ticket",
      "Returns one support ticket of the private tracker by its id (e.g. TCK-1042): title, status, priority, "
      "assignee, last update and the latest note.", tool_lookup_ticket },
    { "list_tickets", "List tickets",
      "Lists the support tickets of the private tracker, optionally only those with a given status.",
      tool_list_tickets },
};

static json_t *tools_list(void)
{
    json_t *lookup_schema = json_pack(
        "{s:s,s:{s:{s:s,s:s,s:s}},s:[s],s:b}", "type", "object", "properties", "id", "type", "string", "description",
        "the ticket id, e.g. TCK-1042", "pattern", "^[A-Za-z]+-[0-9]+$", "required", "id", "additionalProperties", 0);
    json_t *list_schema = json_pack("{s:s,s:{s:{s:s,s:[s,s,s]}},s:b}", "type", "object", "properties", "status",
                                    "type", "string", "enum", "open", "pending", "closed", "additionalProperties", 0);
    json_t *schemas[] = { lookup_schema, list_schema };
    json_t *arr = json_array();

    for (size_t i = 0; i < AL_ELEMENTSOF(tools); i++)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o,s:{s:b,s:b}}", "name", tools[i].name, "title",
                                             tools[i].title, "description", tools[i].description, "inputSchema",
                                             schemas[i], "annotations", "readOnlyHint", 1, "openWorldHint", 0));
    return json_pack("{s:o}", "tools", arr);
}

/* ---- sessions ----------------------------------------------------------- */

static struct demo_session *session_find(struct demo *d, const char *id)
{
    if (strlen(id) != DEMO_SESSION_ID_LEN)
        return NULL;
    for (size_t i = 0; i < DEMO_MAX_SESSIONS; i++)
        if (d->sessions[i].id[0] && !strcmp(d->sessions[i].id, id))
            return &d->sessions[i];
    return NULL;
}

/* A free slot, or the least recently used one. */
static struct demo_session *session_new(struct demo *d, const char *version)
{
    struct demo_session *s = &d->sessions[0];
    unsigned char raw[DEMO_SESSION_ID_LEN / 2];

    for (size_t i = 0; i < DEMO_MAX_SESSIONS && s->id[0]; i++)
        if (!d->sessions[i].id[0] || d->sessions[i].used_us < s->used_us)
            s = &d->sessions[i];
    if (s->id[0])
        al_log(AL_INFO, "mcp.session_evicted", AL_STR("session", s->id));
    al_random(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++)
        (void) snprintf(s->id + 2 * i, 3, "%02x", raw[i]);
    (void) snprintf(s->version, sizeof(s->version), "%s", version);
    s->used_us = al_mono_us();
    return s;
}

/* ---- HTTP and JSON-RPC -------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    default: return "Internal Server Error";
    }
}

/* Sends status with body (stolen; NULL for none). */
static void reply(struct evhttp_request *req, int status, json_t *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = NULL;

    if (body) {
        _cleanup_free_ char *s = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        evhttp_add_header(h, "Content-Type", "application/json");
        b = evbuffer_new();
        if (s)
            evbuffer_add(b, s, strlen(s));
    }
    evhttp_send_reply(req, status, reason(status), b);
    if (b)
        evbuffer_free(b);
}

/* A JSON-RPC error object; id may be NULL (then null). */
static json_t *rpc_error(json_t *id, int code, const char *message)
{
    return json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error", "code", code,
                     "message", message);
}

static void reply_error(struct evhttp_request *req, int status, json_t *id, int code, const char *message)
{
    reply(req, status, rpc_error(id, code, message));
}

static bool header_has(const char *value, const char *token)
{
    return value && strcasestr(value, token);
}

/* DNS rebinding: a browser page must not reach this server through a name
 * that resolves to loopback. Requests without Origin (every non-browser
 * client, the gateway's included) pass. */
static bool origin_ok(const char *origin)
{
    static const char *const ok[] = { "http://localhost", "https://localhost", "http://127.0.0.1",
                                      "https://127.0.0.1", "http://[::1]", "https://[::1]" };

    if (!origin)
        return true;
    for (size_t i = 0; i < AL_ELEMENTSOF(ok); i++) {
        size_t n = strlen(ok[i]);
        if (!strncasecmp(origin, ok[i], n) && (origin[n] == '\0' || origin[n] == ':'))
            return true;
    }
    return false;
}

static const char *version_pick(const char *asked)
{
    for (size_t i = 0; asked && protocol_versions[i]; i++)
        if (!strcmp(asked, protocol_versions[i]))
            return protocol_versions[i];
    return protocol_versions[0];
}

static bool version_known(const char *v)
{
    for (size_t i = 0; protocol_versions[i]; i++)
        if (!strcmp(v, protocol_versions[i]))
            return true;
    return false;
}

static void on_initialize(struct demo *d, struct evhttp_request *req, json_t *msg)
{
    json_t *id = json_object_get(msg, "id");
    json_t *params = json_object_get(msg, "params");
    const char *asked = json_string_value(json_object_get(params, "protocolVersion"));

    if (!json_is_object(params) || !asked) {
        reply_error(req, 400, id, RPC_INVALID_PARAMS, "initialize: params.protocolVersion is required");
        return;
    }
    struct demo_session *s = session_new(d, version_pick(asked));
    const char *client = json_string_value(json_object_get(json_object_get(params, "clientInfo"), "name"));
    _cleanup_free_ char *client_cut = client ? cut(client, 64) : NULL;
    al_log(AL_INFO, "mcp.session_new", AL_STR("session", s->id), AL_STR("version", s->version),
           AL_STR("client", client_cut));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Mcp-Session-Id", s->id);
    reply(req, 200, json_pack("{s:s,s:O,s:{s:s,s:{s:{s:b}},s:{s:s,s:s,s:s},s:s}}", "jsonrpc", "2.0", "id", id,
                              "result", "protocolVersion", s->version, "capabilities", "tools", "listChanged", 0,
                              "serverInfo", "name", DEMO_SERVER_NAME, "title", "airlock demo ticket tracker",
                              "version", DEMO_SERVER_VERSION, "instructions",
                              "A private ticket tracker: look tickets up by id, or list them by status."));
}

static void on_tools_call(struct demo *d, struct evhttp_request *req, const struct demo_session *s, json_t *msg)
{
    json_t *id = json_object_get(msg, "id"), *params = json_object_get(msg, "params");
    const char *name = json_string_value(json_object_get(params, "name"));
    json_t *args = json_object_get(params, "arguments");

    if (!name || (args && !json_is_object(args))) {
        reply_error(req, 200, id, RPC_INVALID_PARAMS, "tools/call: params.name (a string) is required, and "
                                                      "params.arguments must be an object");
        return;
    }
    for (size_t i = 0; i < AL_ELEMENTSOF(tools); i++) {
        if (strcmp(name, tools[i].name) != 0)
            continue;
        _cleanup_json_ json_t *empty = json_object();
        json_t *res = tools[i].fn(args ? args : empty);
        d->calls++;
        al_log(AL_INFO, "mcp.tool_call", AL_STR("session", s->id), AL_STR("tool", tools[i].name),
               AL_BOOL("is_error", json_is_true(json_object_get(res, "isError"))));
        reply(req, 200, json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result", res));
        return;
    }
    _cleanup_free_ char *shown = cut(name, 64);
    _cleanup_free_ char *m = al_xasprintf("Unknown tool: %s", shown);
    reply_error(req, 200, id, RPC_INVALID_PARAMS, m);
}

/* A JSON-RPC message from a client with a valid session. */
static void on_session_message(struct demo *d, struct evhttp_request *req, struct demo_session *s, json_t *msg)
{
    json_t *id = json_object_get(msg, "id");
    const char *method = json_string_value(json_object_get(msg, "method"));

    s->used_us = al_mono_us();
    if (!id || !method) {             /* a notification, or a response to us: nothing to say */
        reply(req, 202, NULL);
        return;
    }
    if (!strcmp(method, "ping"))
        reply(req, 200, json_pack("{s:s,s:O,s:{}}", "jsonrpc", "2.0", "id", id, "result"));
    else if (!strcmp(method, "tools/list"))
        reply(req, 200, json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result", tools_list()));
    else if (!strcmp(method, "tools/call"))
        on_tools_call(d, req, s, msg);
    else if (!strcmp(method, "initialize"))
        reply_error(req, 400, id, RPC_INVALID_REQUEST, "initialize is not allowed within a session");
    else
        reply_error(req, 200, id, RPC_METHOD_NOT_FOUND, "Method not found");
}

/* Well-formed JSON-RPC 2.0: a request (method and a string or integer id), a
 * notification (method, no id) or a response (id and result or error). */
static bool rpc_shape_ok(json_t *msg)
{
    json_t *v = json_object_get(msg, "jsonrpc"), *id = json_object_get(msg, "id");
    json_t *method = json_object_get(msg, "method");

    if (!json_is_object(msg) || !json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0)
        return false;
    if (id && !json_is_string(id) && !json_is_integer(id))
        return false;
    if (method)
        return json_is_string(method);
    return id && (json_object_get(msg, "result") || json_object_get(msg, "error"));
}

static void on_post(struct demo *d, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *ctype = evhttp_find_header(in, "Content-Type"), *accept = evhttp_find_header(in, "Accept");
    const char *sid = evhttp_find_header(in, "Mcp-Session-Id");
    const char *pv = evhttp_find_header(in, "MCP-Protocol-Version");
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(body);
    _cleanup_json_ json_t *msg = NULL;
    char why[128];

    if (!ctype || strncasecmp(ctype, "application/json", 16) != 0) {
        reply_error(req, 415, NULL, RPC_SERVER_ERROR, "Unsupported Media Type: Content-Type must be application/json");
        return;
    }
    if (accept && !header_has(accept, "application/json") && !header_has(accept, "*/*") &&
        !header_has(accept, "application/*")) {
        reply_error(req, 406, NULL, RPC_SERVER_ERROR, "Not Acceptable: the client must accept application/json");
        return;
    }
    if (n > DEMO_MAX_BODY) {
        reply_error(req, 413, NULL, RPC_INVALID_REQUEST, "Payload Too Large: a message is at most 65536 bytes");
        return;
    }
    int r = al_json_decode(evbuffer_pullup(body, (ev_ssize_t) n), n, DEMO_MAX_BODY, &msg, why, sizeof(why));
    if (r < 0 || !msg) {
        reply_error(req, 400, NULL, RPC_PARSE_ERROR, "Parse error");
        return;
    }
    if (json_is_array(msg)) {
        reply_error(req, 400, NULL, RPC_INVALID_REQUEST, "Invalid Request: batches are not supported");
        return;
    }
    if (!rpc_shape_ok(msg)) {
        json_t *id = json_object_get(msg, "id");
        reply_error(req, 400, json_is_string(id) || json_is_integer(id) ? id : NULL, RPC_INVALID_REQUEST,
                    "Invalid Request");
        return;
    }
    const char *method = json_string_value(json_object_get(msg, "method"));
    if (method && !strcmp(method, "initialize") && json_object_get(msg, "id") && !sid) {
        on_initialize(d, req, msg);
        return;
    }
    if (!sid) {
        reply_error(req, 400, NULL, RPC_SERVER_ERROR, "Bad Request: Mcp-Session-Id header is required");
        return;
    }
    struct demo_session *s = session_find(d, sid);
    if (!s) {
        reply_error(req, 404, NULL, RPC_SESSION_NOT_FOUND, "Session not found");
        return;
    }
    if (pv && !version_known(pv)) {
        reply_error(req, 400, NULL, RPC_SERVER_ERROR, "Bad Request: unsupported MCP-Protocol-Version");
        return;
    }
    on_session_message(d, req, s, msg);
}

static void on_delete(struct demo *d, struct evhttp_request *req)
{
    const char *sid = evhttp_find_header(evhttp_request_get_input_headers(req), "Mcp-Session-Id");
    struct demo_session *s = sid ? session_find(d, sid) : NULL;

    if (!sid) {
        reply_error(req, 400, NULL, RPC_SERVER_ERROR, "Bad Request: Mcp-Session-Id header is required");
        return;
    }
    if (!s) {
        reply_error(req, 404, NULL, RPC_SESSION_NOT_FOUND, "Session not found");
        return;
    }
    al_log(AL_INFO, "mcp.session_end", AL_STR("session", s->id));
    memset(s, 0, sizeof(*s));
    reply(req, 204, NULL);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct demo *d = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type m = evhttp_request_get_command(req);

    if (!path || strcmp(path, "/mcp") != 0) {
        reply_error(req, 404, NULL, RPC_SERVER_ERROR, "Not Found: the MCP endpoint is /mcp");
        return;
    }
    if (!origin_ok(evhttp_find_header(evhttp_request_get_input_headers(req), "Origin"))) {
        reply_error(req, 403, NULL, RPC_SERVER_ERROR, "Forbidden: Origin not allowed");
        return;
    }
    if (m == EVHTTP_REQ_POST) {
        on_post(d, req);
    } else if (m == EVHTTP_REQ_DELETE) {
        on_delete(d, req);
    } else {
        /* No server-initiated stream: GET is refused, as the transport allows. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST, DELETE");
        reply_error(req, 405, NULL, RPC_SERVER_ERROR, "Method Not Allowed: POST a JSON-RPC message");
    }
}

/* ---- process ------------------------------------------------------------ */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct demo *d = arg;

    al_log(AL_INFO, "mcp.stopping", AL_I64("signal", sig), AL_U64("calls", d->calls));
    event_base_loopbreak(d->base);
}

/* Binds "HOST:PORT" / "[V6]:PORT"; *ret_url gets "http://HOST:PORT". */
static int demo_listen(struct demo *d, char **ret_url)
{
    const char *addr = d->cfg.listen, *colon = strrchr(addr, ':');
    int64_t port;

    if (!colon || colon == addr || al_parse_i64(colon + 1, 0, 65535, &port) < 0)
        return -EINVAL;
    _cleanup_free_ char *host = addr[0] == '[' && colon[-1] == ']' ? al_xstrndup(addr + 1, (size_t) (colon - addr - 2))
                                                                    : al_xstrndup(addr, (size_t) (colon - addr));
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(d->http, host, (uint16_t) port);
    if (!bs)
        return -EADDRNOTAVAIL;
    struct sockaddr_storage ss = { 0 };
    socklen_t sl = sizeof(ss);
    char h[INET6_ADDRSTRLEN], p[8];
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *) &ss, &sl) < 0)
        return -errno;
    if (getnameinfo((struct sockaddr *) &ss, sl, h, sizeof(h), p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV))
        return -EADDRNOTAVAIL;
    *ret_url = al_xasprintf(ss.ss_family == AF_INET6 ? "http://[%s]:%s" : "http://%s:%s", h, p);
    return 0;
}

static void demo_free(struct demo *d)
{
    if (d->sigterm)
        event_free(d->sigterm);
    if (d->sigint)
        event_free(d->sigint);
    if (d->http)
        evhttp_free(d->http);
    if (d->base)
        event_base_free(d->base);
    al_opts_free(demo_opts, &d->cfg);
}

int cmd_mcp_demo_server(int argc, char **argv)
{
    struct demo d = { 0 };
    struct al_opts_result res = { 0 };
    enum al_log_level lvl = AL_INFO;
    _cleanup_free_ char *url = NULL;

    if (al_opts_load(demo_opts, &d.cfg, argc, argv, &res) < 0) {
        al_opts_free(demo_opts, &d.cfg);
        return 2;
    }
    free(res.args);
    if (res.help || res.nargs > 0) {
        al_opts_help(demo_opts, "airlock mcp-demo-server [OPTIONS]",
                     "Internal: the small private MCP server of `airlock up` (Streamable HTTP, JSON answers, on\n"
                     "POST /mcp): a ticket tracker with the read-only tools lookup_ticket and list_tickets.");
        al_opts_free(demo_opts, &d.cfg);
        return res.help ? 0 : 2;
    }
    if (al_log_level_parse(d.cfg.log_level, &lvl) < 0) {
        fprintf(stderr, "airlock: --log-level: expected debug, info, warn or error\n");
        al_opts_free(demo_opts, &d.cfg);
        return 2;
    }
    al_log_setup("mcp-demo", lvl, 2);
    struct sigaction ign = { .sa_handler = SIG_IGN };
    sigaction(SIGPIPE, &ign, NULL);

    int rc = 1, r;
    d.base = event_base_new();
    d.http = d.base ? evhttp_new(d.base) : NULL;
    if (!d.http)
        goto out;
    evhttp_set_allowed_methods(d.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_PUT |
                                           EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
    evhttp_set_max_body_size(d.http, DEMO_MAX_BODY_HARD);
    evhttp_set_max_headers_size(d.http, 16 * 1024);
    evhttp_set_timeout(d.http, 60);
    evhttp_set_default_content_type(d.http, NULL);    /* a 202 or 204 carries no type */
    evhttp_set_gencb(d.http, on_request, &d);
    r = demo_listen(&d, &url);
    if (r < 0) {
        al_log_errno(AL_ERROR, r, "mcp.listen", AL_STR("addr", d.cfg.listen));
        goto out;
    }
    d.sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
    d.sigint = evsignal_new(d.base, SIGINT, on_signal, &d);
    if (!d.sigterm || !d.sigint || event_add(d.sigterm, NULL) < 0 || event_add(d.sigint, NULL) < 0)
        goto out;
    al_log(AL_INFO, "mcp.listening", AL_STR("url", url), AL_STR("endpoint", "/mcp"));
    al_ready_notify((int) d.cfg.ready_fd, url);
    event_base_dispatch(d.base);
    al_log(AL_INFO, "mcp.stopped", AL_U64("calls", d.calls));
    rc = 0;
out:
    demo_free(&d);
    return rc;
}
