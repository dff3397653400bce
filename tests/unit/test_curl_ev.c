/* SPDX-License-Identifier: Apache-2.0 */
/* http/curl_ev: the libcurl-multi-on-libevent client against a small evhttp
 * server running in the same event_base on 127.0.0.1:0. Each test runs the
 * loop until every expected callback fired and the server has no reply
 * pending; a guard timer fails a test that hangs. No sleeps. */
#include "al_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "lib/base/macro.h"
#include "lib/http/curl_ev.h"

#define BIG_LEN   (2u << 20)
#define MAX_DONE  32
#define MAX_EV    8

struct fx;

struct done_rec {
    struct fx *f;
    int calls;
    int err;
    long status;
    char *body;
    size_t len;
    struct al_curl_xfer *x;
};

struct fx {
    struct event_base *base;
    struct evhttp *http;
    struct al_curl *c;
    char url[64];
    int pending;               /* server replies scheduled but not sent */
    int want, got;             /* done callbacks expected / fired */
    bool hung;
    struct event *guard;
    struct done_rec *cancel_on_slow;   /* cancel this transfer once /slow arrives */
    /* sse */
    int nev;
    char *ev_name[MAX_EV], *ev_data[MAX_EV];
};

static void maybe_exit(struct fx *f)
{
    if (f->got >= f->want && f->pending == 0)
        (void) event_base_loopexit(f->base, NULL);
}

/* ---- server ---- */

struct later {
    struct fx *f;
    struct evhttp_request *req;
    struct event *ev;
    int step;
};

static void reply(struct evhttp_request *req, int code, const char *ctype, const void *p, size_t n)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    assert_int_equal(evbuffer_add(b, p, n), 0);
    (void) evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
    evbuffer_free(b);
}

static void later_done(struct later *l)
{
    struct fx *f = l->f;

    event_free(l->ev);
    free(l);
    f->pending--;
    maybe_exit(f);
}

static void on_later(evutil_socket_t fd, short what, void *arg);

static void later_new(struct fx *f, struct evhttp_request *req, int ms)
{
    struct later *l = al_xcalloc(1, sizeof(*l));
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

    l->f = f;
    l->req = req;
    l->ev = evtimer_new(f->base, on_later, l);
    assert_non_null(l->ev);
    assert_int_equal(evtimer_add(l->ev, &tv), 0);
    f->pending++;
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    struct later *l = arg;
    static const char ok[] = "{\"slow\":true}";

    if (strcmp(evhttp_request_get_uri(l->req), "/slow") == 0) {
        reply(l->req, 200, "application/json", ok, strlen(ok));
        later_done(l);
        return;
    }
    /* /sse: the second event arrives split over two chunks, then the end. */
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    const char *part = l->step == 0 ? "event: second\nda" : "ta: two\n\n";
    assert_int_equal(evbuffer_add(b, part, strlen(part)), 0);
    evhttp_send_reply_chunk(l->req, b);
    evbuffer_free(b);
    if (l->step++ == 0) {
        struct timeval tv = { 0, 0 };
        assert_int_equal(evtimer_add(l->ev, &tv), 0);
        return;
    }
    evhttp_send_reply_end(l->req);
    later_done(l);
}

static void on_http(struct evhttp_request *req, void *arg)
{
    struct fx *f = arg;
    const char *uri = evhttp_request_get_uri(req);

    if (strcmp(uri, "/ok") == 0) {
        static const char ok[] = "{\"ok\":true}";
        reply(req, 200, "application/json", ok, strlen(ok));
    } else if (strcmp(uri, "/echo") == 0) {
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        const char *auth = evhttp_find_header(h, "Authorization");
        const char *ct = evhttp_find_header(h, "Content-Type");
        const char *xt = evhttp_find_header(h, "X-Test");
        size_t n = evbuffer_get_length(in);
        _cleanup_free_ char *s = al_xasprintf(
            "%d|%s|%s|%s|%.*s", (int) evhttp_request_get_command(req), auth ? auth : "-",
            ct ? ct : "-", xt ? xt : "-", (int) n, (const char *) evbuffer_pullup(in, -1));
        reply(req, 201, "text/plain", s, strlen(s));
    } else if (strcmp(uri, "/slow") == 0) {
        later_new(f, req, 300);
        if (f->cancel_on_slow)
            al_curl_cancel(f->cancel_on_slow->x);
    } else if (strcmp(uri, "/sse") == 0) {
        static const char first[] = ": hello\n\nevent: first\ndata: one\n\n";
        struct evbuffer *b = evbuffer_new();
        assert_non_null(b);
        (void) evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                                 "text/event-stream");
        evhttp_send_reply_start(req, 200, "OK");
        assert_int_equal(evbuffer_add(b, first, strlen(first)), 0);
        evhttp_send_reply_chunk(req, b);
        evbuffer_free(b);
        later_new(f, req, 0);
    } else if (strcmp(uri, "/big") == 0) {
        _cleanup_free_ char *big = al_xmalloc(BIG_LEN);
        memset(big, 'x', BIG_LEN);
        reply(req, 200, "application/octet-stream", big, BIG_LEN);
    } else {
        reply(req, 404, "text/plain", "no", 2);
    }
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    struct fx *f = arg;

    f->hung = true;
    (void) event_base_loopexit(f->base, NULL);
}

static int setup(void **state)
{
    struct fx *f = al_xcalloc(1, sizeof(*f));
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);

    /* The server is local: a proxy from the environment must not interfere. */
    static const char *const proxies[] = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                           "all_proxy", "ALL_PROXY" };
    for (size_t i = 0; i < AL_ELEMENTSOF(proxies); i++)
        (void) unsetenv(proxies[i]);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->http = evhttp_new(f->base);
    assert_non_null(f->http);
    evhttp_set_gencb(f->http, on_http, f);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    assert_non_null(bs);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *) &sa, &salen), 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", (unsigned) ntohs(sa.sin_port));
    f->c = al_curl_new(f->base);
    assert_non_null(f->c);
    f->guard = evtimer_new(f->base, on_guard, f);
    assert_non_null(f->guard);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    f->c = al_curl_free(f->c);
    evhttp_free(f->http);
    event_free(f->guard);
    event_base_free(f->base);
    for (int i = 0; i < f->nev; i++) {
        free(f->ev_name[i]);
        free(f->ev_data[i]);
    }
    free(f);
    return 0;
}

/* Runs the loop until f->want done callbacks fired and no reply is pending. */
static void run(struct fx *f, int want)
{
    struct timeval tv = { .tv_sec = 10 };

    f->want = want;
    assert_int_equal(evtimer_add(f->guard, &tv), 0);
    assert_int_equal(event_base_dispatch(f->base), 0);
    (void) evtimer_del(f->guard);
    assert_false(f->hung);
    ASSERT_I64_EQ(f->got, want);
}

/* ---- client callbacks ---- */

static void on_done(int err, long status, const char *body, size_t len, void *ud)
{
    struct done_rec *d = ud;

    d->calls++;
    d->err = err;
    d->status = status;
    if (body) {
        assert_int_equal(body[len], '\0');
        d->body = al_xstrndup(body, len);
        d->len = len;
    } else {
        assert_int_equal(len, 0);
    }
    d->f->got++;
    maybe_exit(d->f);
}

static void on_sse_done(int err, long status, void *ud)
{
    on_done(err, status, NULL, 0, ud);
}

static int on_event(const char *name, const char *data, size_t len, void *ud)
{
    struct done_rec *d = ud;
    struct fx *f = d->f;

    assert_int_equal(d->calls, 0);   /* never after done */
    assert_true(f->nev < MAX_EV);
    f->ev_name[f->nev] = name ? al_xstrdup(name) : NULL;
    f->ev_data[f->nev] = al_xstrndup(data, len);
    f->nev++;
    return 0;
}

static void get(struct fx *f, const char *path, struct done_rec *d, long timeout_ms, size_t max)
{
    _cleanup_free_ char *url = al_xasprintf("%s%s", f->url, path);
    struct al_curl_req_opts o = { .url = url, .timeout_ms = timeout_ms, .max_response = max };

    d->f = f;
    ASSERT_OK(al_curl_request(f->c, &o, on_done, d, &d->x));
    ASSERT_I64_EQ(d->calls, 0);      /* never from inside al_curl_request */
}

/* ---- tests ---- */

static void test_get_ok(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { 0 };

    get(f, "/ok", &d, 5000, 0);
    run(f, 1);
    ASSERT_I64_EQ(d.calls, 1);
    ASSERT_OK(d.err);
    ASSERT_I64_EQ(d.status, 200);
    ASSERT_STR_EQ(d.body, "{\"ok\":true}");
    free(d.body);
}

static void test_post_headers(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { .f = f };
    _cleanup_free_ char *url = al_xasprintf("%s/echo", f->url);
    const char *const hdrs[] = { "X-Test: yes", NULL };
    struct al_curl_req_opts o = {
        .method = "POST", .url = url, .bearer = "sekrit", .content_type = "application/json",
        .body = "{\"a\":1}", .body_len = 7, .headers = hdrs,
    };

    ASSERT_OK(al_curl_request(f->c, &o, on_done, &d, NULL));
    run(f, 1);
    ASSERT_OK(d.err);
    ASSERT_I64_EQ(d.status, 201);
    _cleanup_free_ char *want = al_xasprintf("%d|Bearer sekrit|application/json|yes|{\"a\":1}",
                                             (int) EVHTTP_REQ_POST);
    ASSERT_STR_EQ(d.body, want);
    free(d.body);
}

static void test_404_is_not_an_error(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { 0 };

    get(f, "/nope", &d, 5000, 0);
    run(f, 1);
    ASSERT_OK(d.err);
    ASSERT_I64_EQ(d.status, 404);
    ASSERT_STR_EQ(d.body, "no");
    free(d.body);
}

static void test_concurrent(void **state)
{
    struct fx *f = *state;
    struct done_rec d[20] = { 0 };

    for (size_t i = 0; i < AL_ELEMENTSOF(d); i++)
        get(f, "/ok", &d[i], 5000, 0);
    run(f, (int) AL_ELEMENTSOF(d));
    for (size_t i = 0; i < AL_ELEMENTSOF(d); i++) {
        ASSERT_I64_EQ(d[i].calls, 1);
        ASSERT_OK(d[i].err);
        ASSERT_I64_EQ(d[i].status, 200);
        ASSERT_STR_EQ(d[i].body, "{\"ok\":true}");
        free(d[i].body);
    }
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { 0 };

    get(f, "/slow", &d, 100, 0);
    run(f, 1);                       /* also waits for the server's late reply */
    ASSERT_I64_EQ(d.calls, 1);
    ASSERT_RET(d.err, -ETIMEDOUT);
    assert_null(d.body);
}

static void test_cancel_before_start(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { 0 };

    get(f, "/slow", &d, 5000, 0);
    al_curl_cancel(d.x);
    ASSERT_I64_EQ(d.calls, 0);       /* deferred, never re-entrant */
    al_curl_cancel(d.x);             /* idempotent */
    run(f, 1);
    ASSERT_I64_EQ(d.calls, 1);
    ASSERT_RET(d.err, -ECANCELED);
    assert_null(d.body);
}

static void test_cancel_in_flight(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { 0 }, other = { 0 };

    get(f, "/slow", &d, 5000, 0);
    get(f, "/ok", &other, 5000, 0);
    f->cancel_on_slow = &d;          /* the server cancels once the request arrived */
    run(f, 2);
    ASSERT_I64_EQ(d.calls, 1);
    ASSERT_RET(d.err, -ECANCELED);
    ASSERT_I64_EQ(other.calls, 1);
    ASSERT_OK(other.err);
    free(other.body);
    /* Nothing more fires on later passes. */
    (void) event_base_loop(f->base, EVLOOP_NONBLOCK);
    ASSERT_I64_EQ(d.calls, 1);
}

static void test_sse(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { .f = f };
    _cleanup_free_ char *url = al_xasprintf("%s/sse", f->url);
    struct al_curl_req_opts o = { .url = url, .timeout_ms = 5000 };

    ASSERT_OK(al_curl_sse(f->c, &o, on_event, on_sse_done, &d, NULL));
    run(f, 1);
    ASSERT_I64_EQ(d.calls, 1);
    ASSERT_OK(d.err);
    ASSERT_I64_EQ(d.status, 200);
    ASSERT_I64_EQ(f->nev, 2);
    ASSERT_STR_EQ(f->ev_name[0], "first");
    ASSERT_STR_EQ(f->ev_data[0], "one");
    ASSERT_STR_EQ(f->ev_name[1], "second");
    ASSERT_STR_EQ(f->ev_data[1], "two");
}

/* From inside on_event (inside libcurl): cancel the stream and start a new
 * request; both are deferred to the loop. */
static struct done_rec nested;

static int on_event_cancel(const char *name, const char *data, size_t len, void *ud)
{
    struct done_rec *d = ud;

    (void) on_event(name, data, len, ud);
    get(d->f, "/ok", &nested, 5000, 0);
    al_curl_cancel(d->x);
    ASSERT_I64_EQ(d->calls, 0);
    return 0;
}

static int on_event_stop(const char *name, const char *data, size_t len, void *ud)
{
    (void) on_event(name, data, len, ud);
    return -EBADMSG;
}

static void test_sse_stop(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { .f = f }, e = { .f = f };
    _cleanup_free_ char *url = al_xasprintf("%s/sse", f->url);
    struct al_curl_req_opts o = { .url = url, .timeout_ms = 5000 };

    nested = (struct done_rec){ 0 };
    ASSERT_OK(al_curl_sse(f->c, &o, on_event_cancel, on_sse_done, &d, &d.x));
    ASSERT_OK(al_curl_sse(f->c, &o, on_event_stop, on_sse_done, &e, NULL));
    run(f, 3);
    ASSERT_I64_EQ(f->nev, 2);        /* one event each, then nothing */
    ASSERT_STR_EQ(f->ev_name[0], "first");
    ASSERT_STR_EQ(f->ev_name[1], "first");
    ASSERT_I64_EQ(d.calls, 1);
    ASSERT_RET(d.err, -ECANCELED);
    ASSERT_I64_EQ(e.calls, 1);
    ASSERT_RET(e.err, -EBADMSG);
    ASSERT_I64_EQ(nested.calls, 1);
    ASSERT_OK(nested.err);
    ASSERT_STR_EQ(nested.body, "{\"ok\":true}");
    free(nested.body);
}

static void test_sse_error_status(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { .f = f };
    _cleanup_free_ char *url = al_xasprintf("%s/nope", f->url);
    struct al_curl_req_opts o = { .url = url, .timeout_ms = 5000 };

    ASSERT_OK(al_curl_sse(f->c, &o, on_event, on_sse_done, &d, NULL));
    run(f, 1);
    ASSERT_RET(d.err, -EPROTO);
    ASSERT_I64_EQ(d.status, 404);
    ASSERT_I64_EQ(f->nev, 0);
}

static void test_big(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { 0 }, ok = { 0 };

    get(f, "/big", &d, 5000, 1u << 20);
    get(f, "/big", &ok, 5000, 4u << 20);
    run(f, 2);
    ASSERT_RET(d.err, -EMSGSIZE);
    assert_null(d.body);
    ASSERT_OK(ok.err);
    ASSERT_I64_EQ(ok.len, BIG_LEN);
    free(ok.body);
}

static void test_refused(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { .f = f };
    struct al_curl_req_opts o = { .url = "http://127.0.0.1:1/", .timeout_ms = 5000 };

    ASSERT_OK(al_curl_request(f->c, &o, on_done, &d, NULL));
    run(f, 1);
    ASSERT_RET(d.err, -ECONNREFUSED);
    ASSERT_I64_EQ(d.status, 0);
}

static void test_bad_args(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { .f = f };
    struct al_curl_xfer *x = NULL;
    const char *const bad_hdr[] = { "X-A: b\r\nX-Injected: 1", NULL };
    struct al_curl_req_opts none = { 0 };
    struct al_curl_req_opts hdr = { .url = f->url, .headers = bad_hdr };
    struct al_curl_req_opts tok = { .url = f->url, .bearer = "a\nb" };

    ASSERT_RET(al_curl_request(f->c, &none, on_done, &d, &x), -EINVAL);
    ASSERT_RET(al_curl_request(f->c, &hdr, on_done, &d, &x), -EINVAL);
    ASSERT_RET(al_curl_sse(f->c, &tok, on_event, on_sse_done, &d, &x), -EINVAL);
    assert_null(x);
    (void) event_base_loop(f->base, EVLOOP_NONBLOCK);
    ASSERT_I64_EQ(d.calls, 0);
}

/* al_curl_free completes what is still outstanding, exactly once. */
static void test_free_cancels(void **state)
{
    struct fx *f = *state;
    struct done_rec d = { 0 };

    get(f, "/ok", &d, 5000, 0);
    f->c = al_curl_free(f->c);
    ASSERT_I64_EQ(d.calls, 1);
    ASSERT_RET(d.err, -ECANCELED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_is_not_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sse_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sse_error_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
