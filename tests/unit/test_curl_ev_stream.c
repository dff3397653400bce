/* SPDX-License-Identifier: Apache-2.0 */
/* http/curl_ev: the options the hub's MCP client added - on_body (the body
 * handed over chunk by chunk, and a negative return stopping the transfer
 * with that error), connect_to (dial another address, keep the URL's Host)
 * and the checks on ca_pem/connect_to - against an evhttp server in the same
 * event_base on 127.0.0.1:0. A guard timer fails a test that hangs. */
#include "al_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "lib/base/macro.h"
#include "lib/http/curl_ev.h"

#define BODY_LEN (256u << 10)

struct fx {
    struct event_base *base;
    struct evhttp *http;
    struct al_curl *c;
    int port;
    char url[64];
    char host_seen[128];
    bool done;
    int err;
    long status;
    size_t body_len;        /* bytes done received */
    size_t streamed;        /* bytes on_body received */
    int chunks;
    size_t stop_after;      /* on_body returns -ECONNABORTED once streamed reaches this (0 = never) */
    bool bad_byte;
    struct event *guard;
};

static void h_big(struct evhttp_request *req, void *arg)
{
    struct fx *f = arg;
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    snprintf(f->host_seen, sizeof(f->host_seen), "%s", host ? host : "");
    struct evbuffer *b = evbuffer_new();
    for (size_t i = 0; i < BODY_LEN; i++) {
        char c = (char) ('a' + i % 26);
        assert_int_equal(evbuffer_add(b, &c, 1), 0);
    }
    (void) evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    struct fx *f = arg;
    fail_msg("test hung");
    (void) event_base_loopexit(f->base, NULL);
}

static int setup(void **state)
{
    struct fx *f = al_xcalloc(1, sizeof(*f));
    f->base = event_base_new();
    f->http = evhttp_new(f->base);
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    assert_non_null(s);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *) &sin, &sl), 0);
    f->port = ntohs(sin.sin_port);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/big", f->port);
    evhttp_set_cb(f->http, "/big", h_big, f);
    f->c = al_curl_new(f->base);
    assert_non_null(f->c);
    f->guard = evtimer_new(f->base, on_guard, f);
    struct timeval tv = { 20, 0 };
    evtimer_add(f->guard, &tv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    f->c = al_curl_free(f->c);
    event_free(f->guard);
    evhttp_free(f->http);
    event_base_free(f->base);
    free(f);
    return 0;
}

static int on_body(const char *p, size_t n, void *ud)
{
    struct fx *f = ud;
    for (size_t i = 0; i < n; i++)
        if (p[i] != (char) ('a' + (f->streamed + i) % 26))
            f->bad_byte = true;
    f->streamed += n;
    f->chunks++;
    if (f->stop_after && f->streamed >= f->stop_after)
        return -ECONNABORTED;
    return 0;
}

static void on_done(int err, long status, const char *body, size_t len, void *ud)
{
    struct fx *f = ud;
    f->done = true;
    f->err = err;
    f->status = status;
    f->body_len = len;
    (void) event_base_loopexit(f->base, NULL);
}

static void run(struct fx *f, const struct al_curl_req_opts *o)
{
    ASSERT_OK(al_curl_request(f->c, o, on_done, f, NULL));
    (void) event_base_dispatch(f->base);
    assert_true(f->done);
}

static void test_on_body_streams(void **state)
{
    struct fx *f = *state;
    struct al_curl_req_opts o = { .url = f->url, .on_body = on_body, .timeout_ms = 10000 };
    run(f, &o);
    ASSERT_OK(f->err);
    ASSERT_I64_EQ(f->status, 200);
    ASSERT_I64_EQ(f->streamed, BODY_LEN);
    ASSERT_I64_EQ(f->body_len, 0);     /* nothing buffered for done */
    assert_false(f->bad_byte);
    assert_true(f->chunks >= 1);
}

static void test_on_body_stops(void **state)
{
    struct fx *f = *state;
    f->stop_after = 1;
    struct al_curl_req_opts o = { .url = f->url, .on_body = on_body, .timeout_ms = 10000 };
    run(f, &o);
    ASSERT_RET(f->err, -ECONNABORTED);  /* on_body's own value */
    assert_true(f->streamed < BODY_LEN);
    assert_false(f->bad_byte);
}

static void test_connect_to(void **state)
{
    struct fx *f = *state;
    char ct[64];
    snprintf(ct, sizeof(ct), "::127.0.0.1:%d", f->port);
    /* A name that does not resolve, on a port nothing listens on: only the
     * CONNECT_TO entry gets the request to the server. */
    struct al_curl_req_opts o = { .url = "http://mcp.example.invalid:1/big", .connect_to = ct, .on_body = on_body,
                                  .timeout_ms = 10000 };
    run(f, &o);
    ASSERT_OK(f->err);
    ASSERT_I64_EQ(f->streamed, BODY_LEN);
    ASSERT_STR_EQ(f->host_seen, "mcp.example.invalid:1");
}

static void test_bad_options(void **state)
{
    struct fx *f = *state;
    struct al_curl_req_opts o = { .url = f->url, .connect_to = "::127.0.0.1:1\r\nX: y" };
    ASSERT_RET(al_curl_request(f->c, &o, on_done, f, NULL), -EINVAL);
    struct al_curl_req_opts p = { .url = f->url, .ca_pem = "", .ca_pem_len = 0 };
    ASSERT_RET(al_curl_request(f->c, &p, on_done, f, NULL), -EINVAL);
    assert_false(f->done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_on_body_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_body_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_to, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
