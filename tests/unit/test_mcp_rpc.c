/* SPDX-License-Identifier: Apache-2.0 */
/* hub/mcp_rpc: the pure parts of the hub's MCP client. The response picker
 * against responses, notifications, server requests, batches and garbage;
 * the same messages as an SSE stream split at every byte; tool results and
 * JSON-RPC errors; initialize versions; header values; tunnel hostnames. */
#include "al_test.h"

#include "hub/mcp_rpc.c"   /* pure; not linked into the unit tests otherwise */
#include "lib/http/sse.h"

static int pick(const char *s, int64_t id, json_t **ret)
{
    return mcp_rpc_pick(s, strlen(s), id, ret);
}

static void test_pick(void **state)
{
    json_t *r = NULL;

    ASSERT_I64_EQ(pick("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"x\":1}}", 3, &r), 1);
    ASSERT_I64_EQ(json_integer_value(json_object_get(json_object_get(r, "result"), "x")), 1);
    json_decref(r);
    r = NULL;
    ASSERT_I64_EQ(pick("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-1,\"message\":\"m\"}}", 3, &r), 1);
    assert_non_null(json_object_get(r, "error"));
    json_decref(r);
    r = NULL;

    /* Not the response awaited: *ret untouched. */
    static const char *const other[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}",                          /* another id */
        "{\"jsonrpc\":\"2.0\",\"id\":\"3\",\"result\":{}}",                      /* a string id */
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}",          /* notification */
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}",                    /* server request, same id */
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"x\",\"result\":{}}",          /* has a method: not a response */
        "{\"jsonrpc\":\"2.0\",\"id\":3}",                                       /* neither result nor error */
        "[]",
        "[{\"id\":4,\"result\":{}}, 7, \"s\"]",
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(other); i++) {
        ASSERT_I64_EQ(pick(other[i], 3, &r), 0);
        assert_null(r);
    }

    /* A batch holding it. */
    ASSERT_I64_EQ(pick("[{\"method\":\"n\"},{\"id\":3,\"result\":{\"ok\":true}}]", 3, &r), 1);
    assert_true(json_is_true(json_object_get(json_object_get(r, "result"), "ok")));
    json_decref(r);
    r = NULL;

    static const char *const bad[] = { "", "null", "3", "\"s\"", "{", "{\"id\":3,\"result\":{}} x",
                                       "{\"id\":3,\"id\":3,\"result\":{}}" };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        ASSERT_RET(pick(bad[i], 3, &r), -EBADMSG);
        assert_null(r);
    }
    /* A NUL inside the span is not JSON. */
    ASSERT_RET(mcp_rpc_pick("{\"id\":3,\"result\":{}}\0", 21, 3, &r), -EBADMSG);
}

struct sse_pick {
    int64_t id;
    json_t *resp;
    int events;
};

static int on_event(const char *name, const char *data, size_t len, void *ud)
{
    struct sse_pick *p = ud;
    p->events++;
    if (p->resp)
        return 0;
    return mcp_rpc_pick(data, len, p->id, &p->resp) == 1 ? -ECONNABORTED : 0;
}

/* The stream a server sends for tools/call id 9: a notification, a server
 * request reusing the id, the response, then more. Fed in two pieces split
 * at every byte, the response is found, and found in the third event. */
static void test_sse_split(void **state)
{
    static const char stream[] =
        ": hello\r\n\r\n"
        "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\r\n\r\n"
        "data: {\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\"}\n\n"
        "id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\n"
        "data: \"result\":{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}}\n\n"
        "data: {\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{\"late\":true}}\n\n";
    size_t n = sizeof(stream) - 1;

    for (size_t cut = 0; cut <= n; cut++) {
        struct al_sse_reader rd;
        struct sse_pick p = { .id = 9 };
        al_sse_reader_init(&rd);
        int r = al_sse_reader_feed(&rd, stream, cut, on_event, &p);
        if (r == 0)
            r = al_sse_reader_feed(&rd, stream + cut, n - cut, on_event, &p);
        al_sse_reader_done(&rd);
        ASSERT_RET(r, -ECONNABORTED);
        ASSERT_I64_EQ(p.events, 3);
        json_t *content = NULL;
        bool is_error = true;
        char *msg = NULL;
        ASSERT_OK(mcp_rpc_tool_result(p.resp, &content, &is_error, &msg));
        assert_false(is_error);
        assert_null(msg);
        ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(content, 0), "text")), "hi");
        json_decref(content);
        json_decref(p.resp);
    }
}

static void test_tool_result(void **state)
{
    json_error_t e;
    json_t *content = NULL;
    bool is_error = false;
    char *msg = NULL;

    json_t *r = json_loads("{\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"isError\":true}}", 0, &e);
    ASSERT_OK(mcp_rpc_tool_result(r, &content, &is_error, &msg));
    assert_true(is_error);
    ASSERT_I64_EQ(json_array_size(content), 1);
    json_decref(content);
    json_decref(r);

    /* No content: an empty array. */
    r = json_loads("{\"id\":1,\"result\":{}}", 0, &e);
    ASSERT_OK(mcp_rpc_tool_result(r, &content, &is_error, &msg));
    assert_false(is_error);
    assert_true(json_is_array(content) && json_array_size(content) == 0);
    json_decref(content);
    json_decref(r);

    /* A JSON-RPC error: code and message, outputs untouched. */
    content = NULL;
    r = json_loads("{\"id\":1,\"error\":{\"code\":-32602,\"message\":\"bad\\nargs\"}}", 0, &e);
    ASSERT_RET(mcp_rpc_tool_result(r, &content, &is_error, &msg), -EPROTO);
    ASSERT_STR_EQ(msg, "MCP error -32602: bad args");
    assert_null(content);
    free(msg);
    json_decref(r);

    /* A long message is cut, and stays valid UTF-8 ("é" is two bytes). */
    char big[2 * MCP_ERROR_TEXT_MAX + 64] = "{\"id\":1,\"error\":{\"message\":\"x";
    size_t l = strlen(big);
    for (size_t i = 0; i < MCP_ERROR_TEXT_MAX; i++, l += 2)
        memcpy(big + l, "\xc3\xa9", 2);
    memcpy(big + l, "\"}}", 4);
    r = json_loads(big, 0, &e);
    assert_non_null(r);
    ASSERT_RET(mcp_rpc_tool_result(r, &content, &is_error, &msg), -EPROTO);
    ASSERT_I64_EQ(strlen(msg), strlen("MCP error: x") + MCP_ERROR_TEXT_MAX - 2);   /* the cut é is dropped whole */
    assert_true(al_utf8_valid(msg, strlen(msg)));
    assert_null(strstr(msg, "\xef\xbf\xbd"));   /* no replacement character */
    free(msg);
    json_decref(r);

    static const char *const bad[] = { "{\"id\":1}", "{\"id\":1,\"result\":null}", "{\"id\":1,\"result\":3}",
                                       "{\"id\":1,\"result\":{\"content\":{}}}", "{\"id\":1,\"error\":\"x\"}" };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        r = json_loads(bad[i], 0, &e);
        ASSERT_RET(mcp_rpc_tool_result(r, &content, &is_error, &msg), -EBADMSG);
        assert_non_null(msg);
        assert_null(content);
        free(msg);
        msg = NULL;
        json_decref(r);
    }
}

static void test_init_version(void **state)
{
    json_error_t e;
    char *v = NULL, *msg = NULL;
    static const char *const ok[] = { "2025-11-25", "2025-06-18", "2025-03-26" };

    for (size_t i = 0; i < AL_ELEMENTSOF(ok); i++) {
        json_t *r = json_pack("{s:i, s:{s:s}}", "id", 1, "result", "protocolVersion", ok[i]);
        ASSERT_OK(mcp_rpc_init_version(r, &v, &msg));
        ASSERT_STR_EQ(v, ok[i]);
        free(v);
        json_decref(r);
    }
    json_t *r = json_loads("{\"id\":1,\"result\":{\"protocolVersion\":\"2024-11-05\"}}", 0, &e);
    v = NULL;
    ASSERT_RET(mcp_rpc_init_version(r, &v, &msg), -EPROTO);
    assert_null(v);
    assert_non_null(strstr(msg, "2024-11-05"));
    free(msg);
    json_decref(r);
    r = json_loads("{\"id\":1,\"result\":{}}", 0, &e);
    ASSERT_RET(mcp_rpc_init_version(r, &v, &msg), -EBADMSG);
    free(msg);
    json_decref(r);
    r = json_loads("{\"id\":1,\"error\":{\"code\":1,\"message\":\"no\"}}", 0, &e);
    ASSERT_RET(mcp_rpc_init_version(r, &v, &msg), -EPROTO);
    ASSERT_STR_EQ(msg, "MCP error 1: no");
    free(msg);
    json_decref(r);
}

static void test_headers(void **state)
{
    const char *v;
    size_t n;
    static const char l1[] = "Mcp-Session-Id:  abc-123 \t";
    assert_true(mcp_header_value(l1, strlen(l1), "mcp-session-id", &v, &n));
    ASSERT_I64_EQ(n, 7);
    assert_memory_equal(v, "abc-123", 7);
    assert_true(mcp_session_id_ok(v, n));
    assert_false(mcp_header_value(l1, strlen(l1), "mcp-session", &v, &n));
    assert_false(mcp_header_value("Mcp-Session-Idx: a", 18, "mcp-session-id", &v, &n));
    assert_true(mcp_header_value("content-type:", 13, "Content-Type", &v, &n));
    ASSERT_I64_EQ(n, 0);

    assert_false(mcp_session_id_ok("", 0));
    assert_false(mcp_session_id_ok("a b", 3));
    assert_false(mcp_session_id_ok("a\x7f", 2));
    assert_false(mcp_session_id_ok("\xc3\xa9", 2));
    char longid[MCP_SESSION_ID_MAX + 1];
    memset(longid, 'a', sizeof(longid));
    assert_true(mcp_session_id_ok(longid, MCP_SESSION_ID_MAX));
    assert_false(mcp_session_id_ok(longid, MCP_SESSION_ID_MAX + 1));

    ASSERT_I64_EQ(mcp_body_kind("application/json", 16), MCP_BODY_JSON);
    ASSERT_I64_EQ(mcp_body_kind("Application/JSON; charset=utf-8", 31), MCP_BODY_JSON);
    ASSERT_I64_EQ(mcp_body_kind("text/event-stream ;x", 20), MCP_BODY_SSE);
    ASSERT_I64_EQ(mcp_body_kind("application/jsonl", 17), MCP_BODY_OTHER);
    ASSERT_I64_EQ(mcp_body_kind("text/html", 9), MCP_BODY_OTHER);
    ASSERT_I64_EQ(mcp_body_kind("", 0), MCP_BODY_OTHER);
}

static void test_tunnel_hostname(void **state)
{
    char out[64];
    ASSERT_I64_EQ(mcp_tunnel_hostname("docs.0123456789abcdef.tunnel.test", "tunnel.test", out, sizeof(out)), 1);
    ASSERT_STR_EQ(out, "0123456789abcdef.tunnel.test");
    ASSERT_I64_EQ(mcp_tunnel_hostname("a.b.0123456789abcdef.tunnel.test", "tunnel.test", out, sizeof(out)), 1);
    ASSERT_STR_EQ(out, "0123456789abcdef.tunnel.test");
    ASSERT_I64_EQ(mcp_tunnel_hostname("0123456789abcdef.tunnel.test", "tunnel.test", out, sizeof(out)), 1);
    ASSERT_STR_EQ(out, "0123456789abcdef.tunnel.test");

    static const char *const outside[] = { "tunnel.test", ".tunnel.test", "docs..tunnel.test", "xtunnel.test",
                                           "docs.tunnel.testx", "example.com", "", "docs.tunnel.tes" };
    for (size_t i = 0; i < AL_ELEMENTSOF(outside); i++)
        ASSERT_I64_EQ(mcp_tunnel_hostname(outside[i], "tunnel.test", out, sizeof(out)), 0);
    ASSERT_I64_EQ(mcp_tunnel_hostname("docs.h.tunnel.test", "", out, sizeof(out)), 0);
    ASSERT_RET(mcp_tunnel_hostname("docs.0123456789abcdef.tunnel.test", "tunnel.test", out, 10), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_sse_split),
        cmocka_unit_test(test_tool_result),
        cmocka_unit_test(test_init_version),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_tunnel_hostname),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
