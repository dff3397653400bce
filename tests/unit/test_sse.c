/* SPDX-License-Identifier: Apache-2.0 */
/* http/sse: the frame encoder's exact bytes, and the incremental reader
 * against the WHATWG event-stream grammar: line endings, comments, the BOM,
 * events without a name, arbitrary chunking, and the size cap. */
#include "al_test.h"

#include "lib/base/util.h"
#include "lib/http/sse.h"

#define MAX_EVENTS 16

struct got {
    size_t n;
    char *name[MAX_EVENTS];   /* NULL when the event had no event: field */
    char *data[MAX_EVENTS];
    size_t len[MAX_EVENTS];
    int stop_after;           /* return -ECANCELED after this many, 0 = never */
};

static int on_event(const char *name, const char *data, size_t len, void *ud)
{
    struct got *g = ud;
    assert_true(g->n < MAX_EVENTS);
    assert_int_equal(data[len], '\0');
    g->name[g->n] = name ? al_xstrdup(name) : NULL;
    g->data[g->n] = al_xmalloc(len + 1);
    memcpy(g->data[g->n], data, len + 1);
    g->len[g->n] = len;
    g->n++;
    if (g->stop_after && (int) g->n == g->stop_after)
        return -ECANCELED;
    return 0;
}

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->name[i]);
        free(g->data[i]);
    }
    *g = (struct got){ 0 };
}

/* Feeds s in chunks of chunk bytes (0 = all at once). */
static int feed(const char *s, size_t len, size_t chunk, struct got *g)
{
    struct al_sse_reader r;
    int ret = 0;

    al_sse_reader_init(&r);
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t i = 0; i < len && ret == 0; i += chunk)
        ret = al_sse_reader_feed(&r, s + i, AL_MIN(chunk, len - i), on_event, g);
    al_sse_reader_done(&r);
    return ret;
}

static void test_frame_exact(void **state)
{
    size_t n = 0;
    _cleanup_free_ char *f = al_sse_frame("session.status_idle", "{\"a\":1}", 7, &n);
    static const char want[] = "event: session.status_idle\ndata: {\"a\":1}\n\n";
    ASSERT_MEM_EQ(f, n, want, sizeof(want) - 1);
    ASSERT_I64_EQ(f[n], '\0');
}

static void test_frame_multiline(void **state)
{
    static const struct {
        const char *data, *want;
    } vec[] = {
        { "", "event: e\ndata: \n\n" },
        { "a\nb", "event: e\ndata: a\ndata: b\n\n" },
        { "a\r\nb", "event: e\ndata: a\ndata: b\n\n" },
        { "a\rb", "event: e\ndata: a\ndata: b\n\n" },
        { "a\n\nb", "event: e\ndata: a\ndata: \ndata: b\n\n" },
        { "a\n", "event: e\ndata: a\ndata: \n\n" },
        { "\n", "event: e\ndata: \ndata: \n\n" },
        { "\r\n\r\n", "event: e\ndata: \ndata: \ndata: \n\n" },
        { "a\r", "event: e\ndata: a\ndata: \n\n" },
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(vec); i++) {
        size_t n = 0;
        _cleanup_free_ char *f = al_sse_frame("e", vec[i].data, strlen(vec[i].data), &n);
        ASSERT_MEM_EQ(f, n, vec[i].want, strlen(vec[i].want));
    }

    /* Worst case for the size estimate: every byte a line break. */
    char nl[4096];
    memset(nl, '\n', sizeof(nl));
    size_t n = 0;
    _cleanup_free_ char *f = al_sse_frame("e", nl, sizeof(nl), &n);
    ASSERT_I64_EQ(n, strlen("event: e\n") + (sizeof(nl) + 1) * strlen("data: \n") + 1);
    ASSERT_MEM_EQ(f + n - 8, (size_t) 8, "data: \n\n", (size_t) 8);
}

static void test_frame_bad_name(void **state)
{
    size_t n = 77;
    assert_null(al_sse_frame("a\nb", "x", 1, &n));
    assert_null(al_sse_frame("a\r", "x", 1, &n));
    ASSERT_I64_EQ(n, 77);
}

static void test_frame_round_trip(void **state)
{
    static const char *const datas[] = { "", "x", "{\"type\":\"agent.message\"}", "a\nb\n\nc", "a\r\nb", "\n", " lead" };
    for (size_t i = 0; i < AL_ELEMENTSOF(datas); i++) {
        size_t n = 0;
        _cleanup_free_ char *f = al_sse_frame("agent.message", datas[i], strlen(datas[i]), &n);
        struct got g = { 0 };
        ASSERT_OK(feed(f, n, 0, &g));
        ASSERT_I64_EQ(g.n, 1);
        ASSERT_STR_EQ(g.name[0], "agent.message");
        /* CRLF and CR come back as LF: SSE has one line separator. */
        _cleanup_free_ char *want = al_xstrdup(datas[i]);
        size_t o = 0;
        for (size_t k = 0; want[k]; k++) {
            if (want[k] == '\r' && want[k + 1] == '\n')
                continue;
            want[o++] = want[k] == '\r' ? '\n' : want[k];
        }
        want[o] = '\0';
        ASSERT_MEM_EQ(g.data[0], g.len[0], want, o);
        got_free(&g);
    }

    /* Data with NUL bytes survives: lengths, not strings. */
    size_t n = 0;
    _cleanup_free_ char *f = al_sse_frame("bin", "a\0b", 3, &n);
    struct got g = { 0 };
    ASSERT_OK(feed(f, n, 1, &g));
    ASSERT_I64_EQ(g.n, 1);
    ASSERT_MEM_EQ(g.data[0], g.len[0], "a\0b", 3);
    got_free(&g);
}

static void test_reader_line_endings(void **state)
{
    static const char *const streams[] = {
        "event: e\ndata: one\ndata: two\n\nevent: f\ndata: 3\n\n",
        "event: e\r\ndata: one\r\ndata: two\r\n\r\nevent: f\r\ndata: 3\r\n\r\n",
        "event: e\rdata: one\rdata: two\r\revent: f\rdata: 3\r\r",
        "event: e\r\ndata: one\rdata: two\n\revent: f\ndata: 3\r\n\n",
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(streams); i++)
        for (size_t chunk = 0; chunk <= 3; chunk++) {
            struct got g = { 0 };
            ASSERT_OK(feed(streams[i], strlen(streams[i]), chunk, &g));
            if (g.n != 2)
                print_error("stream %zu chunk %zu\n", i, chunk);
            ASSERT_I64_EQ(g.n, 2);
            ASSERT_STR_EQ(g.name[0], "e");
            ASSERT_STR_EQ(g.data[0], "one\ntwo");
            ASSERT_STR_EQ(g.name[1], "f");
            ASSERT_STR_EQ(g.data[1], "3");
            got_free(&g);
        }
}

static void test_reader_fields(void **state)
{
    struct got g = { 0 };
    static const char s[] =
        ": heartbeat comment\n"
        ":\n"
        "id: 7\n"
        "retry: 1000\n"
        "unknown: field\n"
        "event:no-space\n"
        "data:  two spaces\n"
        "data\n"
        "\n"
        "data: nameless\n"
        "\n"
        "event: only-a-name\n"
        "\n"
        "event: x\n"
        "event: y\n"
        "data: {\"k\":\"a:b\"}\n"
        "\n"
        "data: pending, never dispatched";

    ASSERT_OK(feed(s, sizeof(s) - 1, 0, &g));
    ASSERT_I64_EQ(g.n, 3);
    ASSERT_STR_EQ(g.name[0], "no-space");
    ASSERT_STR_EQ(g.data[0], " two spaces\n"); /* one space stripped; bare "data" is an empty line */
    assert_null(g.name[1]);                    /* no event: field -> NULL, not "" or "message" */
    ASSERT_STR_EQ(g.data[1], "nameless");
    ASSERT_STR_EQ(g.name[2], "y");             /* the last event: wins; a name without data is not an event */
    ASSERT_STR_EQ(g.data[2], "{\"k\":\"a:b\"}");
    got_free(&g);

    /* The name does not leak into the next event. */
    static const char t[] = "event: a\ndata: 1\n\ndata: 2\n\n";
    ASSERT_OK(feed(t, sizeof(t) - 1, 0, &g));
    ASSERT_I64_EQ(g.n, 2);
    ASSERT_STR_EQ(g.name[0], "a");
    assert_null(g.name[1]);
    got_free(&g);

    /* An empty data: line is an event with empty data. */
    static const char u[] = "data:\n\n";
    ASSERT_OK(feed(u, sizeof(u) - 1, 0, &g));
    ASSERT_I64_EQ(g.n, 1);
    ASSERT_I64_EQ(g.len[0], 0);
    got_free(&g);
}

static void test_reader_bom(void **state)
{
    static const char s[] = "\xEF\xBB\xBF" "event: e\ndata: x\n\n";

    for (size_t chunk = 0; chunk <= 4; chunk++) {
        struct got g = { 0 };
        ASSERT_OK(feed(s, sizeof(s) - 1, chunk, &g));
        if (g.n != 1 || !g.name[0])
            print_error("BOM fed in chunks of %zu\n", chunk);
        ASSERT_I64_EQ(g.n, 1);
        ASSERT_STR_EQ(g.name[0], "e");
        ASSERT_STR_EQ(g.data[0], "x");
        got_free(&g);
    }

    /* Only at the very start: a later BOM is part of the line, so the field
     * name is not "event" and the field is ignored. */
    static const char t[] = "\n\xEF\xBB\xBF" "event: e\ndata: x\n\n";
    for (size_t chunk = 0; chunk <= 2; chunk++) {
        struct got g = { 0 };
        ASSERT_OK(feed(t, sizeof(t) - 1, chunk, &g));
        ASSERT_I64_EQ(g.n, 1);
        assert_null(g.name[0]);
        got_free(&g);
    }

    /* The same when the stream's first call carried only the blank line. */
    struct al_sse_reader r;
    struct got h = { 0 };
    al_sse_reader_init(&r);
    ASSERT_OK(al_sse_reader_feed(&r, t, 1, on_event, &h));
    ASSERT_OK(al_sse_reader_feed(&r, t + 1, sizeof(t) - 2, on_event, &h));
    al_sse_reader_done(&r);
    ASSERT_I64_EQ(h.n, 1);
    assert_null(h.name[0]);
    got_free(&h);

    /* Two BOMs: only the first is dropped. */
    static const char u[] = "\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\n";
    struct got g = { 0 };
    ASSERT_OK(feed(u, sizeof(u) - 1, 1, &g));
    ASSERT_I64_EQ(g.n, 0);
    got_free(&g);

    /* A partial BOM is ordinary bytes of the first line. */
    static const char v[] = "\xEF\xBB" "data: x\n\ndata: y\n\n";
    ASSERT_OK(feed(v, sizeof(v) - 1, 1, &g));
    ASSERT_I64_EQ(g.n, 1);
    ASSERT_STR_EQ(g.data[0], "y");
    got_free(&g);
}

static void test_reader_byte_by_byte(void **state)
{
    /* A big multi-line event fed one byte per call, CRLF split between
     * calls, against the same stream fed at once. */
    char s[8192];
    size_t o = 0;
    o += (size_t) snprintf(s + o, sizeof(s) - o, "event: agent.tool_use\r\n");
    for (int i = 0; i < 200; i++)
        o += (size_t) snprintf(s + o, sizeof(s) - o, "data: line %d of the payload\r\n", i);
    o += (size_t) snprintf(s + o, sizeof(s) - o, "\r\n: ping\r\nevent: end\rdata: \r\r");

    struct got whole = { 0 }, bytes = { 0 };
    ASSERT_OK(feed(s, o, 0, &whole));
    ASSERT_OK(feed(s, o, 1, &bytes));
    ASSERT_I64_EQ(whole.n, 2);
    ASSERT_I64_EQ(bytes.n, 2);
    for (size_t i = 0; i < 2; i++) {
        ASSERT_STR_EQ(bytes.name[i], whole.name[i]);
        ASSERT_MEM_EQ(bytes.data[i], bytes.len[i], whole.data[i], whole.len[i]);
    }
    ASSERT_STR_EQ(whole.name[0], "agent.tool_use");
    assert_true(strncmp(whole.data[0], "line 0 of the payload\nline 1 of", 31) == 0);
    ASSERT_I64_EQ(strlen(whole.data[0]), 200 * strlen("line 0 of the payload\n") - 1 + 90 * 1 + 100 * 2);
    ASSERT_STR_EQ(whole.name[1], "end");
    ASSERT_STR_EQ(whole.data[1], "");
    got_free(&whole);
    got_free(&bytes);
}

static void test_reader_callback_stops(void **state)
{
    static const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    struct got g = { .stop_after = 2 };
    ASSERT_RET(feed(s, sizeof(s) - 1, 0, &g), -ECANCELED);
    ASSERT_I64_EQ(g.n, 2);
    got_free(&g);
}

static void test_reader_size_cap(void **state)
{
    struct al_sse_reader r;
    struct got g = { 0 };
    size_t big = AL_SSE_MAX_EVENT + 16;
    _cleanup_free_ char *buf = al_xmalloc(big);

    /* One line longer than the cap. */
    memcpy(buf, "data: ", 6);
    memset(buf + 6, 'a', big - 6);
    al_sse_reader_init(&r);
    ASSERT_RET(al_sse_reader_feed(&r, buf, big, on_event, &g), -EMSGSIZE);
    ASSERT_I64_EQ(g.n, 0);
    al_sse_reader_done(&r);

    /* Many short data lines that add up past the cap. */
    size_t line = 1024, lines = AL_SSE_MAX_EVENT / (line - 7) + 2;
    memset(buf, 'b', line * 2);
    memcpy(buf, "data: ", 6);
    buf[line - 1] = '\n';
    int ret = 0;
    al_sse_reader_init(&r);
    for (size_t i = 0; i < lines && ret == 0; i++)
        ret = al_sse_reader_feed(&r, buf, line, on_event, &g);
    ASSERT_RET(ret, -EMSGSIZE);
    ASSERT_I64_EQ(g.n, 0);
    al_sse_reader_done(&r);

    /* Just under the cap is fine. */
    size_t len = AL_SSE_MAX_EVENT - 64;
    memcpy(buf, "data: ", 6);
    memset(buf + 6, 'c', len - 6);
    memcpy(buf + len, "\n\n", 2);
    al_sse_reader_init(&r);
    ASSERT_OK(al_sse_reader_feed(&r, buf, len + 2, on_event, &g));
    ASSERT_I64_EQ(g.n, 1);
    ASSERT_I64_EQ(g.len[0], len - 6);
    al_sse_reader_done(&r);
    got_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_exact),
        cmocka_unit_test(test_frame_multiline),
        cmocka_unit_test(test_frame_bad_name),
        cmocka_unit_test(test_frame_round_trip),
        cmocka_unit_test(test_reader_line_endings),
        cmocka_unit_test(test_reader_fields),
        cmocka_unit_test(test_reader_bom),
        cmocka_unit_test(test_reader_byte_by_byte),
        cmocka_unit_test(test_reader_callback_stops),
        cmocka_unit_test(test_reader_size_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
