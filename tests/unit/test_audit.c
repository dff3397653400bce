/* SPDX-License-Identifier: Apache-2.0 */
/* gateway/audit: the extractor fed by the HTTP/1.1 observer. Lines for
 * tools/call and resources/read, JSON-RPC errors in JSON and in SSE,
 * JWT claims, clientInfo, notifications, batches and aborts; argument text
 * and bearer tokens never appear in a line. */
#include "al_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "gateway/stream_internal.h"
#include "lib/base/util.h"
#include "lib/tls/crypto.h"

#define MARKER "ARG-MARKER-7f3a"
static const char key[] = "0123456789abcdef0123456789abcdef";

struct lines {
    char *v[16];
    size_t n;
};

static void sink(void *arg, const char *line)
{
    struct lines *l = arg;
    assert_true(l->n < AL_ELEMENTSOF(l->v));
    l->v[l->n++] = al_xstrdup(line);
}

struct fixture {
    struct lines lines;
    struct gw_audit *a;
    struct gw_audit_stream *s;
    struct gw_h1 *h1;
};

static int setup(void **state)
{
    struct fixture *f = al_xcalloc(1, sizeof(*f));
    struct gw_audit_stream_info info = { .tunnel = "tnl_1", .route = "docs", .upstream = "http://127.0.0.1:1",
                                         .conn = "c-1", .client_ip = "203.0.113.9", .sni = "docs.t.example",
                                         .stream = 5 };
    f->a = gw_audit_new_sink(key, sizeof(key) - 1, "k1", sink, &f->lines);
    f->s = gw_audit_stream_new(f->a, &info, NULL, NULL);
    f->h1 = gw_h1_new(&gw_audit_h1_cb, f->s);
    gw_audit_stream_set_h1(f->s, f->h1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    f->s = gw_audit_stream_free(f->s);
    f->h1 = gw_h1_free(f->h1);
    for (size_t i = 0; i < f->lines.n; i++) {
        assert_null(strstr(f->lines.v[i], MARKER));
        assert_null(strstr(f->lines.v[i], "eyJ"));   /* no token */
        free(f->lines.v[i]);
    }
    f->a = gw_audit_free(f->a);
    free(f);
    return 0;
}

static void request(struct fixture *f, const char *headers, const char *body)
{
    char *r = al_xasprintf("POST /mcp HTTP/1.1\r\nHost: docs\r\nContent-Type: application/json\r\n%s"
                           "Content-Length: %zu\r\n\r\n%s", headers, strlen(body), body);
    ASSERT_OK(gw_h1_feed(f->h1, 0, r, strlen(r)));
    free(r);
}

static void response_json(struct fixture *f, int status, const char *body)
{
    char *r = al_xasprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                           status, strlen(body), body);
    ASSERT_OK(gw_h1_feed(f->h1, 1, r, strlen(r)));
    free(r);
}

static json_t *line(struct fixture *f, size_t i)
{
    assert_true(i < f->lines.n);
    json_t *j = json_loads(f->lines.v[i], 0, NULL);
    assert_non_null(j);
    return j;
}

#define S(j, k) json_string_value(json_object_get((j), (k)))

static void test_tools_call(void **state)
{
    struct fixture *f = *state;
    /* payload {"iss":"https://auth.example","sub":"user-1","client_id":"cli","scope":"x"} */
    const char *claims = "{\"iss\":\"https://auth.example\",\"sub\":\"user-1\",\"client_id\":\"cli\",\"scope\":\"x\"}";
    char *payload = al_b64url_encode(claims, strlen(claims));
    char *hdrs = al_xasprintf("Authorization: Bearer eyJhbGciOiJub25lIn0.%s.sig\r\nMcp-Session-Id: sess-42\r\n"
                              "MCP-Protocol-Version: 2025-11-25\r\nUser-Agent: test-agent/1\r\nMcp-Name: search\r\n", payload);
    request(f, hdrs, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"search\","
                     "\"arguments\":{\"q\":\"" MARKER "\",\"n\":1.50,\"a\":[true]}}}");
    free(hdrs);
    free(payload);
    assert_int_equal(f->lines.n, 0);   /* written when the response completes */
    response_json(f, 200, "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[],\"isError\":true}}");
    assert_int_equal(f->lines.n, 1);

    json_t *j = line(f, 0);
    ASSERT_STR_EQ(S(j, "tunnel"), "tnl_1");
    ASSERT_STR_EQ(S(j, "route"), "docs");
    ASSERT_STR_EQ(S(j, "client_ip"), "203.0.113.9");
    ASSERT_STR_EQ(S(j, "proto_ver"), "2025-11-25");
    ASSERT_STR_EQ(S(j, "rpc_id"), "7");
    ASSERT_STR_EQ(S(j, "method"), "tools/call");
    ASSERT_STR_EQ(S(j, "tool"), "search");
    ASSERT_STR_EQ(S(j, "status"), "ok");
    assert_true(json_is_true(json_object_get(j, "is_error")));
    assert_true(json_is_null(json_object_get(j, "jsonrpc_error")));
    ASSERT_I64_EQ(json_integer_value(json_object_get(j, "http_status")), 200);
    assert_true(json_is_false(json_object_get(j, "sse")));
    assert_null(json_object_get(j, "mcp_name_mismatch"));
    assert_true(json_integer_value(json_object_get(j, "bytes_in")) > 100);
    assert_true(json_integer_value(json_object_get(j, "bytes_out")) > 60);

    /* The digest is over the RFC 8785 form of the arguments. */
    const char *canon = "{\"a\":[true],\"n\":1.5,\"q\":\"" MARKER "\"}";
    unsigned char d[AL_SHA256_LEN];
    char hex[2 * AL_SHA256_LEN + 1], want[128];
    al_hmac_sha256(key, sizeof(key) - 1, canon, strlen(canon), d);
    al_hex(d, sizeof(d), hex);
    snprintf(want, sizeof(want), "hmac-sha256:k1:%s", hex);
    ASSERT_STR_EQ(S(j, "args_hmac"), want);
    ASSERT_I64_EQ(json_integer_value(json_object_get(j, "args_bytes")), strlen(canon));

    al_hmac_sha256(key, sizeof(key) - 1, "sess-42", 7, d);
    al_hex(d, sizeof(d), hex);
    snprintf(want, sizeof(want), "hmac-sha256:k1:%s", hex);
    ASSERT_STR_EQ(S(j, "session"), want);

    json_t *agent = json_object_get(j, "agent");
    ASSERT_STR_EQ(S(agent, "iss"), "https://auth.example");
    ASSERT_STR_EQ(S(agent, "sub"), "user-1");
    ASSERT_STR_EQ(S(agent, "client_id"), "cli");
    assert_true(json_is_null(json_object_get(agent, "azp")));
    ASSERT_STR_EQ(S(agent, "user_agent"), "test-agent/1");
    assert_null(json_object_get(agent, "scope"));
    json_decref(j);
}

static void test_resources_read_sse_error(void **state)
{
    struct fixture *f = *state;
    request(f, "", "{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"resources/read\",\"params\":{\"uri\":\"file:///a.txt\"}}");
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    ASSERT_OK(gw_h1_feed(f->h1, 1, head, strlen(head)));
    const char *ev1 = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n";
    const char *ev2 = "data: {\"jsonrpc\":\"2.0\",\"id\":\"r1\",\n"
                      "data: \"error\":{\"code\":-32002,\"message\":\"Resource not found\"}}\n\n";
    char chunk[512];
    snprintf(chunk, sizeof(chunk), "%zx\r\n%s\r\n", strlen(ev1), ev1);
    ASSERT_OK(gw_h1_feed(f->h1, 1, chunk, strlen(chunk)));
    assert_int_equal(f->lines.n, 0);
    snprintf(chunk, sizeof(chunk), "%zx\r\n%s\r\n", strlen(ev2), ev2);
    /* Byte by byte: the line appears once the event's blank line arrives. */
    for (size_t i = 0; i < strlen(chunk); i++)
        ASSERT_OK(gw_h1_feed(f->h1, 1, chunk + i, 1));
    assert_int_equal(f->lines.n, 1);
    ASSERT_OK(gw_h1_feed(f->h1, 1, "0\r\n\r\n", 5));
    assert_int_equal(f->lines.n, 1);

    json_t *j = line(f, 0);
    ASSERT_STR_EQ(S(j, "method"), "resources/read");
    ASSERT_STR_EQ(S(j, "uri"), "file:///a.txt");
    assert_null(json_object_get(j, "tool"));
    ASSERT_STR_EQ(S(j, "rpc_id"), "r1");
    ASSERT_STR_EQ(S(j, "status"), "error");
    assert_true(json_is_true(json_object_get(j, "sse")));
    json_t *e = json_object_get(j, "jsonrpc_error");
    ASSERT_I64_EQ(json_integer_value(json_object_get(e, "code")), -32002);
    ASSERT_STR_EQ(S(e, "message"), "Resource not found");
    assert_true(json_is_null(json_object_get(j, "args_hmac")));
    json_decref(j);
}

static void test_json_error_and_http_error(void **state)
{
    struct fixture *f = *state;
    request(f, "", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{}}}");
    response_json(f, 200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"Unknown tool\"}}");
    request(f, "", "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    response_json(f, 401, "{\"error\":\"invalid_token\"}");
    assert_int_equal(f->lines.n, 2);
    json_t *a = line(f, 0), *b = line(f, 1);
    ASSERT_STR_EQ(S(a, "status"), "error");
    ASSERT_I64_EQ(json_integer_value(json_object_get(json_object_get(a, "jsonrpc_error"), "code")), -32602);
    ASSERT_STR_EQ(S(b, "status"), "error");
    ASSERT_STR_EQ(S(b, "method"), "tools/list");
    ASSERT_I64_EQ(json_integer_value(json_object_get(b, "http_status")), 401);
    assert_true(json_is_null(json_object_get(b, "jsonrpc_error")));
    json_decref(a);
    json_decref(b);
}

static void test_initialize_notification_batch(void **state)
{
    struct fixture *f = *state;
    request(f, "", "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"clientInfo\":"
                   "{\"name\":\"claude-agent\",\"version\":\"1.2\"}}}");
    response_json(f, 200, "{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}");
    request(f, "", "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    response_json(f, 202, "");
    /* a client's answer to a server request: no line */
    request(f, "", "{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":{}}");
    response_json(f, 202, "");
    request(f, "", "[{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"},{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/list\"}]");
    response_json(f, 200, "[{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}},{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}]");
    assert_int_equal(f->lines.n, 4);
    json_t *j = line(f, 1);
    ASSERT_STR_EQ(S(j, "status"), "notification");
    ASSERT_STR_EQ(S(j, "method"), "notifications/initialized");
    assert_true(json_is_null(json_object_get(j, "rpc_id")));
    ASSERT_STR_EQ(S(json_object_get(j, "agent"), "client_info"), "claude-agent/1.2");
    json_decref(j);
    j = line(f, 2);
    ASSERT_STR_EQ(S(j, "rpc_id"), "4");
    ASSERT_STR_EQ(S(j, "status"), "ok");
    json_decref(j);
    j = line(f, 3);
    ASSERT_STR_EQ(S(j, "rpc_id"), "3");
    ASSERT_STR_EQ(S(j, "method"), "ping");
    json_decref(j);
}

static void test_abort(void **state)
{
    struct fixture *f = *state;
    request(f, "", "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"slow\",\"arguments\":{\"s\":\"" MARKER "\"}}}");
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n: keepalive\n\n";
    ASSERT_OK(gw_h1_feed(f->h1, 1, head, strlen(head)));
    assert_int_equal(f->lines.n, 0);
    f->s = gw_audit_stream_free(f->s);   /* the stream died */
    assert_int_equal(f->lines.n, 1);
    json_t *j = line(f, 0);
    ASSERT_STR_EQ(S(j, "status"), "aborted");
    ASSERT_STR_EQ(S(j, "tool"), "slow");
    assert_true(json_is_true(json_object_get(j, "sse")));
    json_decref(j);
}

static void test_mcp_name_mismatch(void **state)
{
    struct fixture *f = *state;
    request(f, "Mcp-Name: other\r\n", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}");
    response_json(f, 200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
    json_t *j = line(f, 0);
    assert_true(json_is_true(json_object_get(j, "mcp_name_mismatch")));
    json_decref(j);
}

static void test_client_info_across_streams(void **state)
{
    struct fixture *f = *state;
    request(f, "", "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"clientInfo\":"
                   "{\"name\":\"sdk-client\",\"version\":\"2.0\"}}}");
    const char *resp = "HTTP/1.1 200 OK\r\nMcp-Session-Id: S-1\r\nContent-Type: application/json\r\n"
                       "Content-Length: 36\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}";
    ASSERT_OK(gw_h1_feed(f->h1, 1, resp, strlen(resp)));
    assert_int_equal(f->lines.n, 1);
    json_t *init = line(f, 0);
    assert_true(json_is_string(json_object_get(init, "session")));   /* from the response */

    /* Another connection of the same session (the SDK pools connections). */
    struct gw_audit_stream_info info = { .route = "docs", .stream = 6 };
    struct gw_audit_stream *s2 = gw_audit_stream_new(f->a, &info, NULL, NULL);
    struct gw_h1 *h2 = gw_h1_new(&gw_audit_h1_cb, s2);
    gw_audit_stream_set_h1(s2, h2);
    const char *b = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}";
    char *req = al_xasprintf("POST /mcp HTTP/1.1\r\nMcp-Session-Id: S-1\r\nContent-Length: %zu\r\n\r\n%s", strlen(b), b);
    ASSERT_OK(gw_h1_feed(h2, 0, req, strlen(req)));
    free(req);
    const char *r2 = "HTTP/1.1 200 OK\r\nContent-Length: 36\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}";
    ASSERT_OK(gw_h1_feed(h2, 1, r2, strlen(r2)));
    /* Stateless MCP: clientInfo in _meta of the request itself. */
    b = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{\"_meta\":"
        "{\"io.modelcontextprotocol/clientInfo\":{\"name\":\"meta-client\",\"version\":\"3\"}}}}";
    req = al_xasprintf("POST /mcp HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s", strlen(b), b);
    ASSERT_OK(gw_h1_feed(h2, 0, req, strlen(req)));
    free(req);
    r2 = "HTTP/1.1 200 OK\r\nContent-Length: 36\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}";
    ASSERT_OK(gw_h1_feed(h2, 1, r2, strlen(r2)));
    s2 = gw_audit_stream_free(s2);
    h2 = gw_h1_free(h2);
    assert_int_equal(f->lines.n, 3);
    json_t *j = line(f, 1);
    ASSERT_STR_EQ(S(json_object_get(j, "agent"), "client_info"), "sdk-client/2.0");
    ASSERT_STR_EQ(S(j, "session"), S(init, "session"));
    json_decref(init);
    json_decref(j);
    j = line(f, 2);
    ASSERT_STR_EQ(S(json_object_get(j, "agent"), "client_info"), "meta-client/3");
    json_decref(j);
}

static void test_truncated_body(void **state)
{
    struct fixture *f = *state;
    size_t n = GW_AUDIT_BODY_MAX + 4096;
    char *body = al_xmalloc(n + 1);
    const char *pre = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"big\",\"arguments\":{\"x\":\"";
    memset(body, 'A', n);
    memcpy(body, pre, strlen(pre));
    memcpy(body + n - 4, "\"}}}", 4);
    body[n] = '\0';
    request(f, "", body);
    response_json(f, 200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
    assert_int_equal(f->lines.n, 1);
    json_t *j = line(f, 0);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    ASSERT_I64_EQ(json_integer_value(json_object_get(j, "args_bytes")), GW_AUDIT_BODY_MAX);
    /* the digest covers the first 8 MiB as sent */
    unsigned char d[AL_SHA256_LEN];
    char hex[2 * AL_SHA256_LEN + 1], want[128];
    al_hmac_sha256(key, sizeof(key) - 1, body, GW_AUDIT_BODY_MAX, d);
    al_hex(d, sizeof(d), hex);
    snprintf(want, sizeof(want), "hmac-sha256:k1:%s", hex);
    ASSERT_STR_EQ(S(j, "args_hmac"), want);
    ASSERT_STR_EQ(S(j, "status"), "ok");
    ASSERT_I64_EQ(json_integer_value(json_object_get(j, "bytes_in")), n + strlen("POST /mcp HTTP/1.1\r\nHost: docs\r\n"
                  "Content-Type: application/json\r\nContent-Length: 8392704\r\n\r\n"));
    json_decref(j);
    free(body);
}

static void test_bad_tokens(void **state)
{
    struct fixture *f = *state;
    const char *auths[] = { "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.!!!.c",
                            "Bearer eyJhbGciOiJub25lIn0.WzEsMl0.x" /* payload is an array */ };
    for (size_t i = 0; i < AL_ELEMENTSOF(auths); i++) {
        char *h = al_xasprintf("Authorization: %s\r\n", auths[i]);
        request(f, h, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}");
        free(h);
        response_json(f, 200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
        json_t *j = line(f, i);
        assert_true(json_is_null(json_object_get(json_object_get(j, "agent"), "iss")));
        assert_null(strstr(f->lines.v[i], "dXNlcjpwYXNz"));
        assert_null(strstr(f->lines.v[i], "not-a-jwt"));
        json_decref(j);
    }
}

static void *drain(void *arg)
{
    char buf[65536];
    int fd = *(int *) arg;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    return NULL;
}

/* A writer stuck on a full pipe: the queue stays bounded and the rest is
 * dropped and counted; nothing blocks the caller. */
static void test_queue_bound(void **state)
{
    int p[2];
    char path[64], why[256];
    struct gw_audit *a = NULL;

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_true(fcntl(p[1], F_SETPIPE_SZ, 65536) >= 65536);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", p[1]);
    ASSERT_OK(gw_audit_new(path, NULL, "k0", 4, &a, why, sizeof(why)));
    close(p[1]);
    char *line = al_xmalloc(1024);
    memset(line, 'x', 1023);
    memcpy(line, "{\"x\":\"", 6);
    memcpy(line + 1021, "\"}", 2);
    line[1023] = '\0';
    for (int i = 0; i < 1000; i++)
        gw_audit_emit_take(a, al_xstrdup(line));
    free(line);
    /* at most a pipe buffer (64 KiB = 64 lines) plus two batches of 4 got through */
    assert_true(gw_audit_dropped(a) >= 1000 - 64 - 8);
    ASSERT_I64_EQ(gw_audit_records(a) + gw_audit_dropped(a), 1000);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drain, &p[0]), 0);
    a = gw_audit_free(a);   /* flushes what was queued, then the pipe's last writer closes */
    pthread_join(t, NULL);
    close(p[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tools_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resources_read_sse_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_error_and_http_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initialize_notification_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mcp_name_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_info_across_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_tokens, setup, teardown),
        cmocka_unit_test(test_queue_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
