/* SPDX-License-Identifier: Apache-2.0 */
/* SSE: a minimal stream reader (frames split on a blank line; only the
 * `event:` name is looked at) and the delivery-latency phase. The phase
 * keeps one stream open on a session and, per iteration, POSTs a
 * user.message "say hi"; it times the send against the arrival of the
 * user.message frame (the hub publishes it before answering the POST) and of
 * the scripted agent's first agent.message, then waits for the turn's
 * session.status_idle before the next send. Loop thread only. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define FRAME_MAX (1u << 20)   /* a frame larger than this ends the bench */

struct bench_stream {
    struct evhttp_connection *cn;
    struct evbuffer *acc;      /* bytes of the frame being received */
    bench_frame_cb cb;
    void *arg;
    const char *auth;          /* borrowed from struct bench */
    char uri[160];
};

static void on_chunk(struct evhttp_request *req, void *arg)
{
    struct bench_stream *s = arg;
    int64_t now = bench_now_us();
    char name[64];

    evbuffer_add_buffer(s->acc, evhttp_request_get_input_buffer(req));
    for (;;) {
        struct evbuffer_ptr end = evbuffer_search(s->acc, "\n\n", 2, NULL);
        if (end.pos < 0) {
            if (evbuffer_get_length(s->acc) > FRAME_MAX)
                s->cb(s, NULL, now, s->arg);
            return;
        }
        size_t n = (size_t) end.pos + 2;
        const char *f = (const char *) evbuffer_pullup(s->acc, (ev_ssize_t) n);
        name[0] = '\0';
        if (n > 7 && !memcmp(f, "event: ", 7)) {
            size_t len = strcspn(f + 7, "\n");
            snprintf(name, sizeof(name), "%.*s", (int) AL_MIN(len, sizeof(name) - 1), f + 7);
        }
        evbuffer_drain(s->acc, n);
        s->cb(s, name, now, s->arg);
    }
}

static void on_end(struct evhttp_request *req, void *arg)
{
    struct bench_stream *s = arg;
    s->cb(s, NULL, bench_now_us(), s->arg);
}

struct bench_stream *bench_stream_open(struct bench *b, const char *session_id, bench_frame_cb cb, void *arg)
{
    struct bench_stream *s = al_xcalloc(1, sizeof(*s));

    s->cn = bench_conn_new(b);
    s->acc = evbuffer_new();
    s->cb = cb;
    s->arg = arg;
    s->auth = b->api_auth;
    snprintf(s->uri, sizeof(s->uri), "/v1/sessions/%s/events/stream", session_id);
    if (bench_stream_restart(s) < 0) {
        fprintf(stderr, "bench: cannot send a stream request\n");
        abort();
    }
    return s;
}

int bench_stream_restart(struct bench_stream *s)
{
    evbuffer_drain(s->acc, evbuffer_get_length(s->acc));
    return bench_send_stream(s->cn, s->uri, s->auth, on_chunk, on_end, s);
}

struct bench_stream *bench_stream_free(struct bench_stream *s)
{
    if (!s)
        return NULL;
    evhttp_connection_free(s->cn);   /* drops the request without its callbacks */
    evbuffer_free(s->acc);
    free(s);
    return NULL;
}

struct sse {
    struct bench *b;
    char uri[160];
    int iters, warmup, done_iters;
    int64_t t0, end_us;        /* end_us: the time budget runs out */
    bool open, in_turn, echo_seen, reply_seen, idle_seen, post_pending;
    struct bench_samples *echo, *reply;
    bool done;
    int err;
};

static void sse_fail(struct sse *x, const char *what, int status)
{
    if (!x->err)
        fprintf(stderr, "bench: sse: %s (status %d)\n", what, status);
    x->err = -EPROTO;
    x->done = true;
}

static void on_post(struct evhttp_request *req, void *arg);

static void sse_send(struct sse *x)
{
    static const char body[] = "{\"events\":[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"say hi\"}]}]}";
    x->in_turn = x->post_pending = true;
    x->echo_seen = x->reply_seen = x->idle_seen = false;
    x->t0 = bench_now_us();
    if (bench_send(x->b->ctl, EVHTTP_REQ_POST, x->uri, x->b->api_auth, NULL, body, on_post, x) < 0)
        sse_fail(x, "cannot send", 0);
}

static void maybe_next(struct sse *x)
{
    if (x->post_pending || !x->idle_seen || x->done)
        return;
    if (!x->echo_seen || !x->reply_seen)
        return sse_fail(x, "turn ended without the user.message or agent.message frame", 200);
    x->in_turn = false;
    if (++x->done_iters >= x->iters + x->warmup || bench_now_us() > x->end_us)
        x->done = true;
    else
        sse_send(x);
}

static void on_post(struct evhttp_request *req, void *arg)
{
    struct sse *x = arg;
    if (!req || evhttp_request_get_response_code(req) != 200)
        return sse_fail(x, "POST events", req ? evhttp_request_get_response_code(req) : 0);
    x->post_pending = false;
    maybe_next(x);
}

static void on_frame(struct bench_stream *s, const char *event, int64_t now, void *arg)
{
    struct sse *x = arg;
    bool keep = x->done_iters >= x->warmup;

    if (x->done)
        return;
    if (!event)
        return sse_fail(x, "the stream ended", 0);
    if (!x->open) {
        x->open = true;
        sse_send(x);
        return;
    }
    if (!x->in_turn)
        return;
    if (!strcmp(event, "user.message") && !x->echo_seen) {
        x->echo_seen = true;
        if (keep)
            bench_samples_add(x->echo, (double) (now - x->t0));
    } else if (!strcmp(event, "agent.message") && !x->reply_seen) {
        x->reply_seen = true;
        if (keep)
            bench_samples_add(x->reply, (double) (now - x->t0));
    } else if (!strcmp(event, "session.status_idle")) {
        x->idle_seen = true;
        maybe_next(x);
    }
}

int bench_sse(struct bench *b, const char *session_id, int iters, int warmup, double max_s, struct bench_samples *echo,
              struct bench_samples *reply)
{
    struct sse x = { .b = b, .iters = iters, .warmup = warmup, .echo = echo, .reply = reply };
    x.end_us = bench_now_us() + (int64_t) (max_s * 1e6);
    snprintf(x.uri, sizeof(x.uri), "/v1/sessions/%s/events", session_id);
    struct bench_stream *s = bench_stream_open(b, session_id, on_frame, &x);
    int r = bench_run_until(b, &x.done, max_s + 60);
    if (r < 0)
        fprintf(stderr, "bench: sse: timed out after %d of %d sends\n", x.done_iters, iters + warmup);
    else if (x.done_iters < iters + warmup)
        fprintf(stderr, "bench: sse: the %.0f s budget ran out after %d of %d sends\n", max_s, x.done_iters,
                iters + warmup);
    if (r < 0 || x.err < 0)
        bench_ctl_reset(b);
    bench_stream_free(s);
    return r < 0 ? r : x.err;
}
