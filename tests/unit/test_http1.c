/* SPDX-License-Identifier: Apache-2.0 */
/* gateway/http1: the HTTP/1.1 observer. Each case is fed whole, then split
 * in two at every byte (and byte by byte), and must give the same
 * transcript of heads, bodies, SSE events and message ends. */
#include "al_test.h"

#include "gateway/stream_internal.h"

struct rec {
    struct al_buf t;           /* transcript */
    struct al_buf body[2];     /* current message bodies */
};

static void tput(struct rec *r, const char *s)
{
    assert_int_equal(al_buf_append(&r->t, s, strlen(s)), 0);
}

static void on_head(void *arg, int dir, const struct gw_h1_head *h)
{
    struct rec *r = arg;
    char line[512];
    if (dir == 0)
        snprintf(line, sizeof(line), "[REQ %s %s", h->method, h->target);
    else
        snprintf(line, sizeof(line), "[RESP %d", h->status);
    tput(r, line);
    for (size_t i = 0; i < h->n; i++) {
        snprintf(line, sizeof(line), " %s=%s", h->h[i].name, h->h[i].value);
        tput(r, line);
    }
    tput(r, "]");
}

static void on_body(void *arg, int dir, const void *data, size_t len)
{
    struct rec *r = arg;
    assert_int_equal(al_buf_append(&r->body[dir], data, len), 0);
}

static void on_sse(void *arg, const char *event, const char *data, size_t len, bool truncated)
{
    struct rec *r = arg;
    tput(r, "[SSE ");
    tput(r, event);
    tput(r, ":");
    assert_int_equal(al_buf_append(&r->t, data, len), 0);
    tput(r, truncated ? " T]" : "]");
}

static void on_end(void *arg, int dir)
{
    struct rec *r = arg;
    tput(r, dir == 0 ? "[END0 " : "[END1 ");
    if (r->body[dir].len)
        assert_int_equal(al_buf_append(&r->t, r->body[dir].data, r->body[dir].len), 0);
    tput(r, "]");
    r->body[dir].len = 0;
}

static const struct gw_h1_cb rec_cb = { on_head, on_body, on_sse, on_end };

/* Feeds req then resp (each split at cut, or byte by byte when cut is
 * SIZE_MAX); returns the transcript (caller frees) and the failure. */
static char *run(const char *req, const char *resp, size_t cut, const char **failure)
{
    struct rec r = { .t.max = 1 << 20, .body = { { .max = 1 << 20 }, { .max = 1 << 20 } } };
    struct gw_h1 *h = gw_h1_new(&rec_cb, &r);
    const char *in[2] = { req, resp };
    for (int dir = 0; dir < 2; dir++) {
        size_t n = strlen(in[dir]);
        if (cut == SIZE_MAX) {
            for (size_t i = 0; i < n; i++)
                (void) gw_h1_feed(h, dir, in[dir] + i, 1);
        } else {
            size_t c = AL_MIN(cut, n);
            (void) gw_h1_feed(h, dir, in[dir], c);
            (void) gw_h1_feed(h, dir, in[dir] + c, n - c);
        }
    }
    gw_h1_eof(h, 1);
    *failure = gw_h1_failure(h);
    h = gw_h1_free(h);
    al_buf_clear(&r.body[0]);
    al_buf_clear(&r.body[1]);
    return r.t.data ? r.t.data : al_xstrdup("");
}

/* The transcript must not depend on how the bytes were split. */
static void check(const char *req, const char *resp, const char *want, const char *want_failure)
{
    size_t n = AL_MAX(strlen(req), strlen(resp));
    for (size_t cut = 0; cut <= n + 1; cut++) {
        const char *failure;
        _cleanup_free_ char *t = run(req, resp, cut == n + 1 ? SIZE_MAX : cut, &failure);
        ASSERT_STR_EQ(t, want);
        if (want_failure)
            ASSERT_STR_EQ(failure, want_failure);
        else if (failure)
            fail_msg("observer gave up: %s", failure);
    }
}

static void test_content_length(void **state)
{
    check("POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nMcp-Session-Id: s1\r\n\r\nhello",
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
          "[REQ POST /mcp Host=x Content-Length=5 Mcp-Session-Id=s1][END0 hello]"
          "[RESP 200 Content-Type=application/json Content-Length=2][END1 {}]", NULL);
}

static void test_chunked(void **state)
{
    check("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0A\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
          "HTTP/1.1 404 Not Found\r\ntransfer-encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
          "[REQ POST / Transfer-Encoding=chunked][END0 abc0123456789]"
          "[RESP 404 transfer-encoding=gzip, chunked][END1 z]", NULL);
}

static void test_sse(void **state)
{
    check("POST /mcp HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
          "23\r\n: comment\r\nevent: ping\r\ndata: 1\r\n\r\n\r\n"
          "2e\r\nid: 7\ndata: {\"a\":\ndata:1}\n\ndata: cr\r\rdata: x\r\n\r\n"
          "2\r\n\r\n\r\n"
          "0\r\n\r\n",
          "[REQ POST /mcp Content-Length=2][END0 {}]"
          "[RESP 200 Content-Type=text/event-stream Transfer-Encoding=chunked]"
          "[SSE ping:1][SSE message:{\"a\":\n1}][SSE message:cr][SSE message:x]"
          "[END1 : comment\r\nevent: ping\r\ndata: 1\r\n\r\nid: 7\ndata: {\"a\":\ndata:1}\n\ndata: cr\r\rdata: x\r\n\r\n]",
          NULL);
}

static void test_keepalive_and_pipelined(void **state)
{
    check("GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nDELETE /c HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
          "POST /d HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
          "HTTP/1.1 100 Continue\r\n\r\n"
          "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
          "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"      /* HEAD: no body */
          "HTTP/1.1 204 No Content\r\n\r\n"
          "HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n\r\nbye",
          "[REQ GET /a][END0 ][REQ HEAD /b][END0 ][REQ DELETE /c Content-Length=0][END0 ]"
          "[REQ POST /d Content-Length=1][END0 x]"
          "[RESP 200 Content-Length=3][END1 abc][RESP 200 Content-Length=99][END1 ]"
          "[RESP 204][END1 ][RESP 405 Connection=close][END1 bye]", NULL);
}

static void test_304_and_202(void **state)
{
    check("GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n1",
          "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
          "[REQ GET /][END0 ][REQ POST / Content-Length=1][END0 1]"
          "[RESP 304 Content-Length=10][END1 ][RESP 202 Content-Length=0][END1 ]", NULL);
}

static void test_garbage(void **state)
{
    static const struct {
        const char *req, *resp, *why;
    } vec[] = {
        { "\x16\x03\x01 hello\r\n\r\n", "", "bad request line" },
        { "G\x01T / HTTP/1.1\r\n\r\n", "", "bad method" },
        { "GET / HTTP/2.0\r\n\r\n", "", "not HTTP/1.x" },
        { "GET / HTTP/1.1\r\n bad: fold\r\n\r\n", "", "obsolete line folding" },
        { "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "", "bad Content-Length" },
        { "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "", "bad chunk size" },
        { "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "bad status line" },
        { "", "HTTP/1.1 200 OK\r\n\r\n", "response without a request" },
        { "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", "HTTP/1.1 101 Switching\r\n\r\n", "protocol upgrade (not observed)" },
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(vec); i++) {
        const char *failure;
        _cleanup_free_ _unused_ char *t = run(vec[i].req, vec[i].resp, SIZE_MAX, &failure);
        ASSERT_STR_EQ(failure, vec[i].why);
    }
}

static void test_limits(void **state)
{
    struct rec r = { .t.max = 1 << 20, .body = { { .max = 1 << 20 }, { .max = 1 << 20 } } };
    struct gw_h1 *h = gw_h1_new(&rec_cb, &r);
    char line[64];
    ASSERT_OK(gw_h1_feed(h, 0, "GET / HTTP/1.1\r\n", 16));
    for (int i = 0; i < GW_H1_HEADERS_MAX + 1; i++) {
        int n = snprintf(line, sizeof(line), "X-%d: v\r\n", i);
        ASSERT_OK(gw_h1_feed(h, 0, line, (size_t) n));
    }
    ASSERT_RET(gw_h1_feed(h, 0, "\r\n", 2), -EBADMSG);
    ASSERT_STR_EQ(gw_h1_failure(h), "too many headers");
    h = gw_h1_free(h);

    h = gw_h1_new(&rec_cb, &r);
    char *big = al_xmalloc(GW_H1_HEAD_MAX + 10);
    memset(big, 'a', GW_H1_HEAD_MAX + 10);
    ASSERT_RET(gw_h1_feed(h, 0, big, GW_H1_HEAD_MAX + 10), -EBADMSG);
    ASSERT_STR_EQ(gw_h1_failure(h), "head too large");
    free(big);
    h = gw_h1_free(h);

    h = gw_h1_new(&rec_cb, &r);
    for (int i = 0; i < GW_H1_PIPELINE_MAX; i++)
        ASSERT_OK(gw_h1_feed(h, 0, "GET / HTTP/1.1\r\n\r\n", 18));
    ASSERT_RET(gw_h1_feed(h, 0, "GET / HTTP/1.1\r\n\r\n", 18), -EBADMSG);
    h = gw_h1_free(h);
    al_buf_clear(&r.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_sse),
        cmocka_unit_test(test_keepalive_and_pipelined),
        cmocka_unit_test(test_304_and_202),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
