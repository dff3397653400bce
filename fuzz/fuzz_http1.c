/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the gateway's HTTP/1.1 observer (src/gateway/http1.c).
 * Input: two bytes of request length L, then L request bytes (client to
 * upstream), then the response bytes. Each direction is fed at once and
 * then one byte per call; both runs must give the same transcript (heads,
 * bodies, SSE events, message ends) and the same verdict. */
#include <string.h>

#include "fuzz.h"
#include "gateway/stream_internal.h"
#include "lib/base/util.h"

struct rec {
    struct al_buf t;           /* heads, SSE events, ends (with the body) */
    struct al_buf body[2];     /* bodies arrive in pieces however they are split */
};

static void put(struct rec *r, const void *p, size_t n)
{
    if (al_buf_append(&r->t, p, n) < 0)
        al_buf_clear(&r->t);   /* bounded; both runs hit the bound alike */
}

static void on_head(void *arg, int dir, const struct gw_h1_head *h)
{
    struct rec *r = arg;
    put(r, dir ? "H1" : "H0", 2);
    if (dir == 0) {
        CHECK(h->method && h->target && *h->method && *h->target);
        put(r, h->method, strlen(h->method));
        put(r, h->target, strlen(h->target));
    } else {
        CHECK(h->status >= 200 && h->status <= 999);
        put(r, &h->status, sizeof(h->status));
    }
    CHECK(h->n <= GW_H1_HEADERS_MAX);
    for (size_t i = 0; i < h->n; i++) {
        put(r, h->h[i].name, strlen(h->h[i].name) + 1);
        put(r, h->h[i].value, strlen(h->h[i].value) + 1);
    }
}

static void on_body(void *arg, int dir, const void *data, size_t len)
{
    struct rec *r = arg;
    if (al_buf_append(&r->body[dir], data, len) < 0)
        al_buf_clear(&r->body[dir]);
}

static void on_sse(void *arg, const char *event, const char *data, size_t len, bool truncated)
{
    struct rec *r = arg;
    CHECK(len <= GW_H1_SSE_EVENT_MAX);
    put(r, "E", 1);
    put(r, event, strlen(event) + 1);
    put(r, data, len);
}

static void on_end(void *arg, int dir)
{
    struct rec *r = arg;
    put(r, dir ? "}1" : "}0", 2);
    if (r->body[dir].len)
        put(r, r->body[dir].data, r->body[dir].len);
    r->body[dir].len = 0;
}

static const struct gw_h1_cb cb = { on_head, on_body, on_sse, on_end };

static void run(const uint8_t *req, size_t rn, const uint8_t *resp, size_t sn, bool bytewise,
                struct rec *r, const char **failure, uint64_t *bytes)
{
    struct gw_h1 *h = gw_h1_new(&cb, r);
    const uint8_t *in[2] = { req, resp };
    size_t n[2] = { rn, sn };
    for (int dir = 0; dir < 2; dir++) {
        if (bytewise)
            for (size_t i = 0; i < n[dir]; i++)
                (void) gw_h1_feed(h, dir, in[dir] + i, 1);
        else
            (void) gw_h1_feed(h, dir, in[dir], n[dir]);
    }
    bytes[0] = gw_h1_msg_bytes(h, 0);
    bytes[1] = gw_h1_msg_bytes(h, 1);
    gw_h1_eof(h, 1);
    *failure = gw_h1_failure(h);
    gw_h1_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t rn = ((size_t) data[0] << 8 | data[1]);
    data += 2;
    size -= 2;
    if (rn > size)
        rn = size;
    struct rec a = { .t.max = 1 << 20, .body = { { .max = 1 << 20 }, { .max = 1 << 20 } } };
    struct rec b = { .t.max = 1 << 20, .body = { { .max = 1 << 20 }, { .max = 1 << 20 } } };
    const char *fa, *fb;
    uint64_t ba[2], bb[2];
    run(data, rn, data + rn, size - rn, false, &a, &fa, ba);
    run(data, rn, data + rn, size - rn, true, &b, &fb, bb);
    CHECK((fa == NULL) == (fb == NULL));
    if (!fa) {
        CHECK(a.t.len == b.t.len && (a.t.len == 0 || memcmp(a.t.data, b.t.data, a.t.len) == 0));
        CHECK(ba[0] == bb[0] && ba[1] == bb[1]);
    }
    for (int i = 0; i < 2; i++) {
        al_buf_clear(&a.body[i]);
        al_buf_clear(&b.body[i]);
    }
    al_buf_clear(&a.t);
    al_buf_clear(&b.t);
    return 0;
}
