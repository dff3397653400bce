/* SPDX-License-Identifier: Apache-2.0 */
/* Long-poll wake latency. N pollers keep a poll parked in one environment
 * (block_ms=999, re-issued when it comes back empty). Each iteration:
 *   1. sync: every poll is out of this process, then one round trip on the
 *      control connection, so the hub has read every poll before it reads
 *      the enqueue (it serves ready sockets in the order they became ready);
 *   2. t0, POST .../work/healthcheck;
 *   3. the poll response carrying the item: one sample, now - t0;
 *   4. that poller acks and force-stops the item (so the queue stays empty),
 *      then parks again.
 * A sample whose poll left after t0 (the poller was between polls) was not
 * a wake; it is counted as stale and dropped. Loop thread only. */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

struct wake;

struct wake_poller {
    struct wake *w;
    struct evhttp_connection *cn;
    int64_t sent_us;            /* when the current poll was queued */
    char worker_id[32];
    char work_id[64];           /* the item being retired */
    char uri[192];
};

struct wake {
    struct bench *b;
    const struct bench_env *env;
    struct wake_poller *p;
    int np;
    struct event *recheck;      /* sync: waits for the polls to leave */
    int iters, warmup, done_iters, stale;
    int64_t t0, end_us;         /* end_us: the time budget runs out */
    bool waiting;               /* enqueue sent, item not yet seen */
    bool enq_pending;           /* enqueue reply outstanding */
    bool retiring;              /* a poller is acking and stopping its item */
    struct bench_samples *out;
    bool done;
    int err;
};

static void wake_fail(struct wake *w, const char *what, struct evhttp_request *req)
{
    if (!w->err)
        fprintf(stderr, "bench: wake: %s: %s %d\n", what, req ? "status" : "connection failed",
                req ? evhttp_request_get_response_code(req) : 0);
    w->err = -EPROTO;
    w->done = true;
}

static void poller_poll(struct wake_poller *p);
static void wake_sync(struct wake *w);

static void maybe_next(struct wake *w)
{
    if (w->waiting || w->enq_pending || w->retiring || w->done)
        return;
    if (w->done_iters >= w->iters + w->warmup || bench_now_us() > w->end_us) {
        w->done = true;
        return;
    }
    wake_sync(w);
}

static void on_stop(struct evhttp_request *req, void *arg)
{
    struct wake_poller *p = arg;
    if (!req || evhttp_request_get_response_code(req) != 200)
        return wake_fail(p->w, "stop", req);
    poller_poll(p);
    p->w->retiring = false;
    maybe_next(p->w);
}

static void on_ack(struct evhttp_request *req, void *arg)
{
    struct wake_poller *p = arg;
    char uri[256];
    if (!req || evhttp_request_get_response_code(req) != 200)
        return wake_fail(p->w, "ack", req);
    snprintf(uri, sizeof(uri), "/v1/environments/%s/work/%s/stop", p->w->env->id, p->work_id);
    if (bench_send(p->cn, EVHTTP_REQ_POST, uri, p->w->env->key_auth, NULL, "{\"force\":true}", on_stop, p) < 0)
        wake_fail(p->w, "stop", NULL);
}

static void on_poll(struct evhttp_request *req, void *arg)
{
    struct wake_poller *p = arg;
    struct wake *w = p->w;
    int64_t now = bench_now_us();
    char uri[256];

    if (w->done)
        return;
    if (!req || evhttp_request_get_response_code(req) != 200)
        return wake_fail(w, "poll", req);
    if (bench_body_is_null(req)) {
        poller_poll(p);     /* block_ms ran out: park again */
        return;
    }
    if (bench_body_id(req, "id", p->work_id, sizeof(p->work_id)) < 0)
        return wake_fail(w, "poll body", req);
    if (w->waiting) {
        if (p->sent_us < w->t0) {
            if (w->done_iters >= w->warmup)
                bench_samples_add(w->out, (double) (now - w->t0));
        } else
            w->stale++;
        w->waiting = false;
        w->done_iters++;
    }
    w->retiring = true;
    snprintf(uri, sizeof(uri), "/v1/environments/%s/work/%s/ack", w->env->id, p->work_id);
    if (bench_send(p->cn, EVHTTP_REQ_POST, uri, w->env->key_auth, NULL, NULL, on_ack, p) < 0)
        wake_fail(w, "ack", NULL);
}

static void poller_poll(struct wake_poller *p)
{
    p->sent_us = bench_now_us();
    if (bench_send(p->cn, EVHTTP_REQ_GET, p->uri, p->w->env->key_auth, p->worker_id, NULL, on_poll, p) < 0)
        wake_fail(p->w, "poll", NULL);
}

static void on_enqueue(struct evhttp_request *req, void *arg)
{
    struct wake *w = arg;
    if (!req || evhttp_request_get_response_code(req) != 200)
        return wake_fail(w, "healthcheck", req);
    w->enq_pending = false;
    maybe_next(w);
}

static void on_synced(struct evhttp_request *req, void *arg)
{
    struct wake *w = arg;
    char uri[192];
    if (!req || evhttp_request_get_response_code(req) != 200)
        return wake_fail(w, "healthz", req);
    snprintf(uri, sizeof(uri), "/v1/environments/%s/work/healthcheck", w->env->id);
    w->waiting = w->enq_pending = true;
    w->t0 = bench_now_us();
    if (bench_send(w->b->ctl, EVHTTP_REQ_POST, uri, w->b->api_auth, NULL, NULL, on_enqueue, w) < 0)
        wake_fail(w, "healthcheck", NULL);
}

static void on_recheck(evutil_socket_t fd, short what, void *arg)
{
    wake_sync(arg);
}

static void wake_sync(struct wake *w)
{
    for (int i = 0; i < w->np; i++)
        if (!bench_conn_flushed(w->p[i].cn)) {
            struct timeval tv = { 0, 100 };
            evtimer_add(w->recheck, &tv);
            return;
        }
    if (bench_send(w->b->ctl, EVHTTP_REQ_GET, "/healthz", NULL, NULL, NULL, on_synced, w) < 0)
        wake_fail(w, "healthz", NULL);
}

int bench_wake(struct bench *b, const struct bench_env *env, int pollers, int iters, int warmup, double max_s,
               struct bench_samples *ret)
{
    struct wake w = { .b = b, .env = env, .np = pollers, .iters = iters, .warmup = warmup, .out = ret };
    w.end_us = bench_now_us() + (int64_t) (max_s * 1e6);

    w.p = al_xcalloc((size_t) pollers, sizeof(*w.p));
    for (int i = 0; i < pollers; i++) {
        struct wake_poller *p = &w.p[i];
        p->w = &w;
        p->cn = bench_conn_new(b);
        snprintf(p->worker_id, sizeof(p->worker_id), "bench-wake-%d", i);
        snprintf(p->uri, sizeof(p->uri), "/v1/environments/%s/work/poll?block_ms=999", env->id);
        poller_poll(p);
    }
    /* Let the first polls connect and park before the first enqueue. */
    w.recheck = evtimer_new(b->base, on_recheck, &w);
    struct timeval tv = { 0, 50000 };
    evtimer_add(w.recheck, &tv);
    int r = bench_run_until(b, &w.done, max_s + 60);
    if (r < 0 || w.err < 0)
        bench_ctl_reset(b);

    event_free(w.recheck);
    for (int i = 0; i < pollers; i++)
        evhttp_connection_free(w.p[i].cn);
    free(w.p);
    if (w.stale)
        fprintf(stderr, "bench: wake: %d of %d samples dropped (poller was between polls)\n", w.stale,
                w.iters + w.warmup);
    if (r < 0)
        fprintf(stderr, "bench: wake: timed out after %d of %d iterations\n", w.done_iters, iters + warmup);
    else if (w.done_iters < iters + warmup)
        fprintf(stderr, "bench: wake: the %.0f s budget ran out after %d of %d iterations\n", max_s, w.done_iters,
                iters + warmup);
    return r < 0 ? r : w.err;
}
