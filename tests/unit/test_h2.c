/* SPDX-License-Identifier: Apache-2.0 */
/* h2 and the tunnel handshake: the upgrade request/answer parsers, the
 * gateway's stream-metadata parser, and two al_h2 connections (client and
 * server) over a socketpair: a CONNECT stream both ways, half-close, and
 * flow control (a reader that does not consume stops the sender at the
 * 16 MiB stream window; consuming lets the rest through). */
#include "al_test.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>

#include "gateway/conn.h"
#include "lib/h2/h2.h"
#include "lib/h2/upgrade.h"

/* ---- upgrade request (relay side) ---- */

#define REQ_OK "GET /v1/tunnel/connect HTTP/1.1\r\nHost: relay.test\r\nAuthorization: Bearer tnltok.tnl_abc.1.xyz\r\n" \
               "Connection: keep-alive, Upgrade\r\nUpgrade: airlock-tunnel/1\r\nAirlock-Connector-Id: 0af3\r\n"       \
               "Airlock-Connection-Slot: 3\r\n\r\n"

static void test_upgrade_request_ok(void **state)
{
    struct al_upgrade_req q;
    const char *s = REQ_OK "\x50\x52\x49";   /* bytes after the head are not part of it */

    ASSERT_I64_EQ(al_upgrade_parse_request(s, strlen(s), &q), (int64_t) strlen(REQ_OK));
    ASSERT_STR_EQ(q.token, "tnltok.tnl_abc.1.xyz");
    ASSERT_STR_EQ(q.connector_id, "0af3");
    ASSERT_STR_EQ(q.host, "relay.test");
    ASSERT_I64_EQ(q.slot, 3);
    for (size_t n = 0; n < strlen(REQ_OK); n++)
        ASSERT_RET(al_upgrade_parse_request(REQ_OK, n, &q), -EAGAIN);
}

static void test_upgrade_request_bad(void **state)
{
    static const char *const bad[] = {
        "POST /v1/tunnel/connect HTTP/1.1\r\nUpgrade: airlock-tunnel/1\r\nConnection: upgrade\r\n\r\n",
        "GET /v1/tunnel/other HTTP/1.1\r\nUpgrade: airlock-tunnel/1\r\nConnection: upgrade\r\n\r\n",
        "GET /v1/tunnel/connect HTTP/1.0\r\nUpgrade: airlock-tunnel/1\r\nConnection: upgrade\r\n\r\n",
        "GET /v1/tunnel/connect HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "GET /v1/tunnel/connect HTTP/1.1\r\nUpgrade: airlock-tunnel/1\r\n\r\n",
        "GET /v1/tunnel/connect HTTP/1.1\r\nUpgrade: airlock-tunnel/1\r\nConnection: upgrade\r\nAuthorization: Basic x\r\n\r\n",
        ("GET /v1/tunnel/connect HTTP/1.1\r\nUpgrade: airlock-tunnel/1\r\nConnection: upgrade\r\nAuthorization: Bearer a\r\n"
         "Authorization: Bearer b\r\n\r\n"),
        "GET /v1/tunnel/connect HTTP/1.1\r\nUpgrade: airlock-tunnel/1\r\nConnection: upgrade\r\nAirlock-Connection-Slot: 64\r\n\r\n",
        "GET /v1/tunnel/connect HTTP/1.1\r\nUpgrade: airlock-tunnel/1\r\nConnection: upgrade\r\nAirlock-Connector-Id: a b\r\n\r\n",
        "GET /v1/tunnel/connect HTTP/1.1\r\nUpgrade: airlock-tunnel/1\r\n folded\r\nConnection: upgrade\r\n\r\n",
        "GET /v1/tunnel/connect HTTP/1.1\nUpgrade: airlock-tunnel/1\r\nConnection: upgrade\r\n\r\n",
        "GET /v1/tunnel/connect HTTP/1.1\r\nBad Name: x\r\nUpgrade: airlock-tunnel/1\r\nConnection: upgrade\r\n\r\n",
    };
    struct al_upgrade_req q;

    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        ssize_t r = al_upgrade_parse_request(bad[i], strlen(bad[i]), &q);
        if (r != -EBADMSG)
            print_error("case %zu: %zd\n", i, r);
        ASSERT_RET(r, -EBADMSG);
    }
    /* A request without a token parses: the relay answers 401. */
    const char *nt = "GET /v1/tunnel/connect HTTP/1.1\r\nUpgrade: airlock-tunnel/1\r\nConnection: Upgrade\r\n\r\n";
    assert_true(al_upgrade_parse_request(nt, strlen(nt), &q) > 0);
    ASSERT_STR_EQ(q.token, "");
    ASSERT_I64_EQ(q.slot, -1);
    /* 8 KiB without the blank line */
    char *big = malloc(AL_UPGRADE_HEAD_MAX + 10);
    memset(big, 'a', AL_UPGRADE_HEAD_MAX + 10);
    ASSERT_RET(al_upgrade_parse_request(big, AL_UPGRADE_HEAD_MAX + 10, &q), -EMSGSIZE);
    ASSERT_RET(al_upgrade_parse_request(big, AL_UPGRADE_HEAD_MAX - 1, &q), -EAGAIN);
    free(big);
}

/* ---- upgrade answer (gateway side) ---- */

static void test_upgrade_response(void **state)
{
    struct al_upgrade_resp p;
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: airlock-tunnel/1\r\nConnection: Upgrade\r\n"
                     "Airlock-Tunnel-Id: tnl_01ABC\r\nAirlock-Tunnel-Hostname: 0123456789abcdef.tunnel.test\r\n\r\n";
    ASSERT_I64_EQ(al_upgrade_parse_response(ok, strlen(ok), &p), (int64_t) strlen(ok));
    ASSERT_I64_EQ(p.status, 101);
    ASSERT_STR_EQ(p.tunnel_id, "tnl_01ABC");
    ASSERT_STR_EQ(p.hostname, "0123456789abcdef.tunnel.test");

    const char *e429 = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                       "Retry-After: 3\r\n\r\n{}";
    ASSERT_I64_EQ(al_upgrade_parse_response(e429, strlen(e429), &p), (int64_t) strlen(e429) - 2);
    ASSERT_I64_EQ(p.status, 429);
    ASSERT_I64_EQ(p.retry_after_s, 3);
    ASSERT_I64_EQ(p.content_length, 2);

    static const char *const bad[] = {
        "HTTP/1.1 101 Switching Protocols\r\nAirlock-Tunnel-Id: tnl_1\r\nAirlock-Tunnel-Hostname: a.b\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: airlock-tunnel/1\r\nAirlock-Tunnel-Hostname: a.b\r\n\r\n",
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: airlock-tunnel/1\r\nAirlock-Tunnel-Id: tnl_1\r\n"
         "Airlock-Tunnel-Hostname: A..b\r\n\r\n"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: airlock-tunnel/1\r\nAirlock-Tunnel-Id: abc\r\n"
         "Airlock-Tunnel-Hostname: a.b\r\n\r\n"),
        "HTTP/1.1 10 Bad\r\n\r\n",
        "HTTP/1.1 4290 Bad\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 429 Too Many\r\nRetry-After: soon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        ssize_t r = al_upgrade_parse_response(bad[i], strlen(bad[i]), &p);
        if (r != -EBADMSG)
            print_error("case %zu: %zd\n", i, r);
        ASSERT_RET(r, -EBADMSG);
    }
}

/* ---- stream metadata ---- */

#define H(n, v) { (n), (v), sizeof(n) - 1, sizeof(v) - 1 }

static void test_meta_ok(void **state)
{
    const struct al_h2_header h[] = {
        H(":method", "CONNECT"), H(":authority", "docs.abc.test:443"), H("airlock-tunnel", "tnl_X1"),
        H("airlock-sni", "docs.abc.test"), H("airlock-client-addr", "[2001:db8::1]:5678"), H("airlock-stream", "42"),
        H("user-agent", "ignored"),
    };
    struct gw_meta m;

    ASSERT_OK(gw_meta_parse(h, AL_ELEMENTSOF(h), &m));
    ASSERT_STR_EQ(m.tunnel_id, "tnl_X1");
    ASSERT_STR_EQ(m.sni, "docs.abc.test");
    ASSERT_STR_EQ(m.client_addr, "[2001:db8::1]:5678");
    ASSERT_I64_EQ(m.stream_id, 42);
}

static void test_meta_bad(void **state)
{
    struct al_h2_header h[8] = {
        H(":method", "CONNECT"), H(":authority", "docs.abc.test:443"), H("airlock-tunnel", "tnl_X1"),
        H("airlock-sni", "docs.abc.test"), H("airlock-client-addr", "1.2.3.4:5678"), H("airlock-stream", "7"),
    };
    const struct al_h2_header repl[][2] = {
        { H(":method", "GET"), { 0 } },
        { H(":authority", "other.abc.test:443"), { 0 } },
        { H(":authority", "docs.abc.test:8443"), { 0 } },
        { H("airlock-tunnel", "abc"), { 0 } },
        { H("airlock-sni", "Docs.abc.test"), { 0 } },
        { H("airlock-client-addr", "1.2.3.4"), { 0 } },
        { H("airlock-client-addr", "1.2.3.4:70000"), { 0 } },
        { H("airlock-client-addr", "2001:db8::1:80"), { 0 } },
        { H("airlock-client-addr", "[1.2.3.4]:80"), { 0 } },
        { H("airlock-stream", "-1"), { 0 } },
        { H("airlock-stream", "99999999999999999"), { 0 } },
    };
    struct gw_meta m;

    ASSERT_OK(gw_meta_parse(h, 6, &m));
    for (size_t i = 0; i < AL_ELEMENTSOF(repl); i++) {
        struct al_h2_header c[8];
        memcpy(c, h, sizeof(c));
        for (size_t k = 0; k < 6; k++)
            if (strcmp(c[k].name, repl[i][0].name) == 0)
                c[k] = repl[i][0];
        if (gw_meta_parse(c, 6, &m) != -EBADMSG)
            print_error("case %zu\n", i);
        ASSERT_RET(gw_meta_parse(c, 6, &m), -EBADMSG);
    }
    for (size_t k = 0; k < 6; k++) {                        /* each one missing */
        struct al_h2_header c[6];
        size_t n = 0;
        for (size_t j = 0; j < 6; j++)
            if (j != k)
                c[n++] = h[j];
        ASSERT_RET(gw_meta_parse(c, n, &m), -EBADMSG);
    }
    h[6] = (struct al_h2_header) H("airlock-sni", "docs.abc.test");      /* duplicated */
    ASSERT_RET(gw_meta_parse(h, 7, &m), -EBADMSG);
    h[6] = (struct al_h2_header) H(":path", "/");                         /* not a plain CONNECT */
    ASSERT_RET(gw_meta_parse(h, 7, &m), -EBADMSG);
}

/* ---- relay addresses and NO_PROXY (gateway dial) ---- */

static void test_hostport_and_no_proxy(void **state)
{
    char *h = NULL, *p = NULL;

    ASSERT_OK(gw_split_hostport("relay.example:7844", &h, &p));
    ASSERT_STR_EQ(h, "relay.example");
    ASSERT_STR_EQ(p, "7844");
    free(h), free(p);
    ASSERT_OK(gw_split_hostport("[2001:db8::1]:443", &h, &p));
    ASSERT_STR_EQ(h, "2001:db8::1");
    ASSERT_STR_EQ(p, "443");
    free(h), free(p);
    static const char *const bad[] = { "relay", "relay:", ":443", "relay:0", "relay:65536", "2001:db8::1:443",
                                       "[2001:db8::1]443", "relay:44x" };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++)
        ASSERT_RET(gw_split_hostport(bad[i], &h, &p), -EINVAL);

    assert_true(gw_no_proxy_match("*", "relay.example"));
    assert_true(gw_no_proxy_match("example.com, relay.example", "relay.example"));
    assert_true(gw_no_proxy_match(".example", "relay.example"));
    assert_true(gw_no_proxy_match("example", "relay.example"));
    assert_true(gw_no_proxy_match("RELAY.example:7844", "relay.example"));
    assert_true(gw_no_proxy_match("127.0.0.1", "127.0.0.1"));
    assert_false(gw_no_proxy_match("ample", "relay.example"));
    assert_false(gw_no_proxy_match("other.example", "relay.example"));
    assert_false(gw_no_proxy_match("", "relay.example"));
    assert_false(gw_no_proxy_match(NULL, "relay.example"));
    assert_false(gw_no_proxy_match("127.0.0.1", "127.0.0.10"));
}

/* ---- two connections over a socketpair ---- */

struct side {
    struct al_h2_stream *st;
    size_t got, consumed_upto;
    bool auto_consume, eof, closed, conn_closed;
    int status;
    uint32_t close_code;
    uint8_t last;
};

struct pair {
    struct event_base *base;
    struct al_h2_conn *cli, *srv;
    struct side c, s;
};

static void on_request(struct al_h2_stream *st, const struct al_h2_header *hdrs, size_t n, void *ud)
{
    struct pair *p = ud;
    struct gw_meta m;
    assert_int_equal(gw_meta_parse(hdrs, n, &m), 0);
    p->s.st = st;
    al_h2_stream_set_ud(st, &p->s);
    assert_int_equal(al_h2_stream_respond(st, 200, false), 0);
}

static void on_response(struct al_h2_stream *st, int status, void *ud)
{
    ((struct side *) ud)->status = status;
}

static void on_data(struct al_h2_stream *st, const uint8_t *d, size_t len, void *ud)
{
    struct side *x = ud;
    x->got += len;
    x->last = d[len - 1];
    if (x->auto_consume)
        al_h2_stream_consume(st, len);
}

static void on_eof(struct al_h2_stream *st, void *ud) { ((struct side *) ud)->eof = true; }

static void on_close(struct al_h2_stream *st, uint32_t code, void *ud)
{
    struct side *x = ud;
    x->closed = true;
    x->close_code = code;
    x->st = NULL;
}

static void on_conn_close(struct al_h2_conn *c, int err, void *ud) { }

static const struct al_h2_cbs cbs = {
    .on_request = on_request, .on_response = on_response, .on_data = on_data, .on_eof = on_eof,
    .on_close = on_close, .on_conn_close = on_conn_close,
};

/* Runs the loop until nothing changes for a few passes. */
static void settle(struct pair *p)
{
    for (int quiet = 0, i = 0; quiet < 20 && i < 200000; i++) {
        size_t before = p->c.got + p->s.got;
        event_base_loop(p->base, EVLOOP_NONBLOCK);
        quiet = p->c.got + p->s.got == before ? quiet + 1 : 0;
    }
}

static void pair_open(struct pair *p)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    p->base = event_base_new();
    struct bufferevent *a = bufferevent_socket_new(p->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *b = bufferevent_socket_new(p->base, sv[1], BEV_OPT_CLOSE_ON_FREE);
    p->cli = al_h2_conn_new(p->base, a, AL_H2_CLIENT, &cbs, p, 0, 0);
    p->srv = al_h2_conn_new(p->base, b, AL_H2_SERVER, &cbs, p, 0, 0);
    assert_non_null(p->cli);
    assert_non_null(p->srv);
    const struct al_h2_header h[] = {
        H(":method", "CONNECT"), H(":authority", "docs.abc.test:443"), H("airlock-tunnel", "tnl_X1"),
        H("airlock-sni", "docs.abc.test"), H("airlock-client-addr", "127.0.0.1:5678"), H("airlock-stream", "1"),
    };
    int err = 0;
    p->c.st = al_h2_stream_open(p->cli, h, AL_ELEMENTSOF(h), &p->c, &err);
    assert_non_null(p->c.st);
    settle(p);
    assert_non_null(p->s.st);
    ASSERT_I64_EQ(p->c.status, 200);
}

static void pair_close(struct pair *p)
{
    p->cli = al_h2_conn_free(p->cli);
    p->srv = al_h2_conn_free(p->srv);
    event_base_free(p->base);
}

static void test_h2_flow_control(void **state)
{
    struct pair p = { 0 };
    pair_open(&p);

    /* 32 MiB toward a server that does not consume: exactly one stream
     * window arrives, the rest stays queued at the sender. */
    size_t total = 32u << 20;
    uint8_t *buf = malloc(1 << 20);
    for (size_t i = 0; i < total; i += 1 << 20) {
        memset(buf, (int) (i >> 20), 1 << 20);
        ASSERT_OK(al_h2_stream_write(p.c.st, buf, 1 << 20));
    }
    settle(&p);
    ASSERT_I64_EQ(p.s.got, AL_H2_STREAM_WINDOW);
    ASSERT_I64_EQ(al_h2_stream_queued(p.c.st), total - AL_H2_STREAM_WINDOW);
    /* Crediting half lets half a window more through, no more. */
    al_h2_stream_consume(p.s.st, AL_H2_STREAM_WINDOW / 2);
    settle(&p);
    ASSERT_I64_EQ(p.s.got, AL_H2_STREAM_WINDOW + AL_H2_STREAM_WINDOW / 2);
    /* Crediting as it arrives lets everything through, then the half-close. */
    p.s.auto_consume = true;
    al_h2_stream_consume(p.s.st, p.s.got);
    al_h2_stream_end(p.c.st);
    settle(&p);
    ASSERT_I64_EQ(p.s.got, total);
    ASSERT_I64_EQ(p.s.last, 31);
    assert_true(p.s.eof);
    assert_false(p.c.closed);

    /* The other way, then the server's half-close closes the stream. */
    ASSERT_OK(al_h2_stream_write(p.s.st, "hello", 5));
    p.c.auto_consume = true;
    al_h2_stream_end(p.s.st);
    settle(&p);
    ASSERT_I64_EQ(p.c.got, 5);
    assert_true(p.c.eof);
    assert_true(p.c.closed && p.s.closed);
    ASSERT_I64_EQ(p.c.close_code, 0);
    ASSERT_I64_EQ(al_h2_conn_streams(p.cli), 0);
    free(buf);
    pair_close(&p);
}

static void test_h2_reset(void **state)
{
    struct pair p = { 0 };
    pair_open(&p);
    ASSERT_OK(al_h2_stream_write(p.c.st, "abc", 3));
    settle(&p);
    ASSERT_I64_EQ(p.s.got, 3);
    al_h2_stream_reset(p.s.st, AL_H2_CANCEL);
    settle(&p);
    assert_true(p.c.closed);
    ASSERT_I64_EQ(p.c.close_code, AL_H2_CANCEL);
    pair_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_request_ok),
        cmocka_unit_test(test_upgrade_request_bad),
        cmocka_unit_test(test_upgrade_response),
        cmocka_unit_test(test_meta_ok),
        cmocka_unit_test(test_meta_bad),
        cmocka_unit_test(test_hostport_and_no_proxy),
        cmocka_unit_test(test_h2_flow_control),
        cmocka_unit_test(test_h2_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
