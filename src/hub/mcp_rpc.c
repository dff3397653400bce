/* SPDX-License-Identifier: Apache-2.0 */
/* Pure helpers of the hub's MCP client: JSON-RPC response picking, tool
 * results, header values, tunnel hostnames. See mcp_rpc.h. No I/O. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "../lib/base/utf8.h"
#include "../lib/base/util.h"
#include "mcp_rpc.h"

static bool is_response_to(json_t *m, int64_t id)
{
    json_t *jid = json_object_get(m, "id");
    if (!json_is_object(m) || !json_is_integer(jid) || json_integer_value(jid) != id)
        return false;
    /* A request from the server carries "method"; a response never does. */
    if (json_object_get(m, "method"))
        return false;
    return json_object_get(m, "result") != NULL || json_object_get(m, "error") != NULL;
}

int mcp_rpc_pick(const char *buf, size_t len, int64_t id, json_t **ret)
{
    json_error_t err;
    json_t *m = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err), *v;
    size_t i;
    int r = 0;

    if (!json_is_object(m) && !json_is_array(m)) {
        json_decref(m);
        return -EBADMSG;
    }
    if (is_response_to(m, id)) {
        *ret = m;
        return 1;
    }
    if (json_is_array(m))
        json_array_foreach(m, i, v) {
            if (is_response_to(v, id)) {
                *ret = json_incref(v);
                r = 1;
                break;
            }
        }
    json_decref(m);
    return r;
}

/* "<prefix>: <text>" with text cut to MCP_ERROR_TEXT_MAX bytes and made
 * valid UTF-8 (a cut may fall inside a character). */
static char *describe(const char *prefix, const char *text)
{
    size_t n = strnlen(text, MCP_ERROR_TEXT_MAX), fixed_len;
    while (n > 0 && ((unsigned char) text[n] & 0xc0) == 0x80)
        n--;   /* cut before a continuation byte, not inside a character */
    _cleanup_free_ char *fixed = al_utf8_repair(text, n, &fixed_len);
    for (size_t i = 0; i < fixed_len; i++)
        if ((unsigned char) fixed[i] < 0x20)
            fixed[i] = ' ';   /* one line in events and logs */
    return al_xasprintf("%s: %s", prefix, fixed);
}

static int rpc_error(json_t *resp, char **ret_msg)
{
    json_t *e = json_object_get(resp, "error");
    if (!json_is_object(e)) {
        *ret_msg = al_xstrdup("the MCP server's response has neither a result nor an error object");
        return -EBADMSG;
    }
    json_t *code = json_object_get(e, "code");
    const char *msg = json_string_value(json_object_get(e, "message"));
    _cleanup_free_ char *prefix = json_is_integer(code) ? al_xasprintf("MCP error %lld", (long long) json_integer_value(code))
                                                        : al_xstrdup("MCP error");
    *ret_msg = describe(prefix, msg ? msg : "(no message)");
    return -EPROTO;
}

int mcp_rpc_tool_result(json_t *resp, json_t **ret_content, bool *ret_is_error, char **ret_msg)
{
    json_t *res = json_object_get(resp, "result");
    if (!res || json_is_null(res))
        return rpc_error(resp, ret_msg);
    if (!json_is_object(res)) {
        *ret_msg = al_xstrdup("the MCP server's tools/call result is not an object");
        return -EBADMSG;
    }
    json_t *content = json_object_get(res, "content");
    if (content && !json_is_array(content)) {
        *ret_msg = al_xstrdup("the MCP server's tools/call result has a content that is not an array");
        return -EBADMSG;
    }
    *ret_content = content ? json_incref(content) : json_array();
    *ret_is_error = json_is_true(json_object_get(res, "isError"));
    return 0;
}

int mcp_rpc_init_version(json_t *resp, char **ret_version, char **ret_msg)
{
    static const char *const known[] = { "2025-11-25", "2025-06-18", "2025-03-26" };
    json_t *res = json_object_get(resp, "result");
    if (!res || json_is_null(res))
        return rpc_error(resp, ret_msg);
    const char *v = json_string_value(json_object_get(res, "protocolVersion"));
    if (!json_is_object(res) || !v) {
        *ret_msg = al_xstrdup("the MCP server's initialize result has no protocolVersion");
        return -EBADMSG;
    }
    for (size_t i = 0; i < AL_ELEMENTSOF(known); i++)
        if (!strcmp(v, known[i])) {
            *ret_version = al_xstrdup(v);
            return 0;
        }
    *ret_msg = describe("the MCP server speaks an unsupported protocol version", v);
    return -EPROTO;
}

static bool ows(char c) { return c == ' ' || c == '\t'; }

bool mcp_header_value(const char *line, size_t len, const char *name, const char **ret_val, size_t *ret_len)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n))
        return false;
    const char *v = line + n + 1, *end = line + len;
    while (v < end && ows(*v))
        v++;
    while (end > v && ows(end[-1]))
        end--;
    *ret_val = v;
    *ret_len = (size_t) (end - v);
    return true;
}

bool mcp_session_id_ok(const char *v, size_t n)
{
    if (n == 0 || n > MCP_SESSION_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) v[i] < 0x21 || (unsigned char) v[i] > 0x7e)
            return false;
    return true;
}

enum mcp_body_kind mcp_body_kind(const char *v, size_t n)
{
    size_t m = 0;
    while (m < n && v[m] != ';')
        m++;
    while (m > 0 && ows(v[m - 1]))
        m--;
    if (m == 16 && !strncasecmp(v, "application/json", 16))
        return MCP_BODY_JSON;
    if (m == 17 && !strncasecmp(v, "text/event-stream", 17))
        return MCP_BODY_SSE;
    return MCP_BODY_OTHER;
}

int mcp_tunnel_hostname(const char *host, const char *domain, char *out, size_t outsz)
{
    size_t hl = strlen(host), dl = strlen(domain);
    if (dl == 0 || hl < dl + 2 || strcmp(host + hl - dl, domain) || host[hl - dl - 1] != '.')
        return 0;
    size_t end = hl - dl - 1, start = end;   /* the label just before ".<domain>" */
    while (start > 0 && host[start - 1] != '.')
        start--;
    if (start == end)
        return 0;   /* an empty label: "..<domain>" */
    size_t n = hl - start;
    if (n + 1 > outsz)
        return -ENAMETOOLONG;
    memcpy(out, host + start, n + 1);
    return 1;
}
