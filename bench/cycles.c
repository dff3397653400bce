/* SPDX-License-Identifier: Apache-2.0 */
/* Work cycles per second. Health checks are enqueued first (so the cycle
 * itself is what is measured), then `workers` pollers, each on its own
 * keep-alive connection with its own Anthropic-Worker-ID, loop
 *   poll (block_ms=999) -> ack -> heartbeat (NO_HEARTBEAT) -> stop {force}
 * as the SDK worker does for a health check. A short warm-up run sizes the
 * queue for the timed run so that it cannot run dry. Loop thread only. */
#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"

#define WARMUP_ITEMS   1000
#define ITEMS_MIN      5000
#define ITEMS_MAX      400000
#define PRODUCER_CONNS 8

struct cycles;

struct cyc_worker {
    struct cycles *c;
    struct evhttp_connection *cn;
    char worker_id[32];
    char work_id[64];
    int64_t start_us;
};

struct cycles {
    struct bench *b;
    const struct bench_env *env;
    struct cyc_worker *w;
    int nw, active;
    uint64_t items, polls, cycles, empty;
    int64_t deadline_us;       /* 0: run until the items are used up */
    int64_t last_done_us;
    struct bench_samples *lat;
    bool done;
    int err;
};

static void cyc_fail(struct cycles *c, const char *what, struct evhttp_request *req)
{
    if (!c->err)
        fprintf(stderr, "bench: cycles: %s: %s %d\n", what, req ? "status" : "connection failed",
                req ? evhttp_request_get_response_code(req) : 0);
    c->err = -EPROTO;
    c->done = true;
}

static void worker_next(struct cyc_worker *w);

static bool ok(struct cyc_worker *w, struct evhttp_request *req, const char *what)
{
    if (w->c->done)
        return false;
    if (req && evhttp_request_get_response_code(req) == 200)
        return true;
    cyc_fail(w->c, what, req);
    return false;
}

static void step(struct cyc_worker *w, const char *verb, const char *query, const char *body, bench_cb cb)
{
    char uri[256];
    snprintf(uri, sizeof(uri), "/v1/environments/%s/work/%s/%s%s", w->c->env->id, w->work_id, verb, query);
    if (bench_send(w->cn, EVHTTP_REQ_POST, uri, w->c->env->key_auth, NULL, body, cb, w) < 0)
        cyc_fail(w->c, verb, NULL);
}

static void on_stop(struct evhttp_request *req, void *arg)
{
    struct cyc_worker *w = arg;
    if (!ok(w, req, "stop"))
        return;
    int64_t now = bench_now_us();
    w->c->cycles++;
    w->c->last_done_us = now;
    if (w->c->lat)
        bench_samples_add(w->c->lat, (double) (now - w->start_us));
    worker_next(w);
}

static void on_heartbeat(struct evhttp_request *req, void *arg)
{
    struct cyc_worker *w = arg;
    if (ok(w, req, "heartbeat"))
        step(w, "stop", "", "{\"force\":true}", on_stop);
}

static void on_ack(struct evhttp_request *req, void *arg)
{
    struct cyc_worker *w = arg;
    if (ok(w, req, "ack"))
        step(w, "heartbeat", "?expected_last_heartbeat=NO_HEARTBEAT", NULL, on_heartbeat);
}

static void on_poll(struct evhttp_request *req, void *arg)
{
    struct cyc_worker *w = arg;
    if (!ok(w, req, "poll"))
        return;
    if (bench_body_is_null(req)) {
        /* Only if the queue was shorter than counted: end this worker. */
        w->c->empty++;
        w->c->polls = w->c->items;
        worker_next(w);
        return;
    }
    if (bench_body_id(req, "id", w->work_id, sizeof(w->work_id)) < 0)
        return cyc_fail(w->c, "poll body", req);
    step(w, "ack", "", NULL, on_ack);
}

static void worker_next(struct cyc_worker *w)
{
    struct cycles *c = w->c;
    char uri[192];
    w->start_us = bench_now_us();
    if (c->polls >= c->items || (c->deadline_us && w->start_us >= c->deadline_us)) {
        if (--c->active == 0)
            c->done = true;
        return;
    }
    c->polls++;
    snprintf(uri, sizeof(uri), "/v1/environments/%s/work/poll?block_ms=999", c->env->id);
    if (bench_send(w->cn, EVHTTP_REQ_GET, uri, c->env->key_auth, w->worker_id, NULL, on_poll, w) < 0)
        cyc_fail(c, "poll", NULL);
}

/* Runs the workers over `items` queued items (until deadline if nonzero);
 * returns the cycles per second. */
static int run(struct bench *b, const struct bench_env *env, int nw, uint64_t items, double seconds,
               struct bench_samples *lat, uint64_t *ret_cycles, double *ret_elapsed)
{
    struct cycles c = { .b = b, .env = env, .nw = nw, .active = nw, .items = items, .lat = lat };
    int64_t start = bench_now_us();

    c.deadline_us = seconds > 0 ? start + (int64_t) (seconds * 1e6) : 0;
    c.w = al_xcalloc((size_t) nw, sizeof(*c.w));
    for (int i = 0; i < nw; i++) {
        c.w[i].c = &c;
        c.w[i].cn = bench_conn_new(b);
        snprintf(c.w[i].worker_id, sizeof(c.w[i].worker_id), "bench-cycle-%d", i);
    }
    for (int i = 0; i < nw; i++)
        worker_next(&c.w[i]);
    int r = bench_run_until(b, &c.done, (seconds > 0 ? seconds : 0) + 120);
    for (int i = 0; i < nw; i++)
        evhttp_connection_free(c.w[i].cn);
    free(c.w);
    if (c.empty)
        fprintf(stderr, "bench: cycles: %llu polls came back empty\n", (unsigned long long) c.empty);
    *ret_cycles = c.cycles;
    *ret_elapsed = (double) (c.last_done_us - start) / 1e6;
    if (r < 0)
        fprintf(stderr, "bench: cycles: timed out\n");
    return r < 0 ? r : c.err;
}

struct producer;

struct prod_conn {
    struct producer *p;
    struct evhttp_connection *cn;
};

struct producer {
    const char *auth;
    char uri[160];
    uint64_t want, sent, got;
    bool done;
    int err;
};

static void produce(struct prod_conn *pc);

static void on_enqueued(struct evhttp_request *req, void *arg)
{
    struct prod_conn *pc = arg;
    struct producer *p = pc->p;
    if (p->done)
        return;
    if (!req || evhttp_request_get_response_code(req) != 200) {
        fprintf(stderr, "bench: cycles: healthcheck: %s %d\n", req ? "status" : "connection failed",
                req ? evhttp_request_get_response_code(req) : 0);
        p->err = -EPROTO;
        p->done = true;
        return;
    }
    if (++p->got == p->want)
        p->done = true;
    else
        produce(pc);
}

static void produce(struct prod_conn *pc)
{
    struct producer *p = pc->p;
    if (p->sent >= p->want)
        return;
    p->sent++;
    if (bench_send(pc->cn, EVHTTP_REQ_POST, p->uri, p->auth, NULL, NULL, on_enqueued, pc) < 0) {
        p->err = -EIO;
        p->done = true;
    }
}

/* Enqueues n health checks over PRODUCER_CONNS connections; *ret_rate is
 * enqueues per second. */
static int enqueue_many(struct bench *b, const struct bench_env *env, uint64_t n, double *ret_rate)
{
    struct producer p = { .auth = b->api_auth, .want = n };
    struct prod_conn pc[PRODUCER_CONNS];
    int64_t start = bench_now_us();

    snprintf(p.uri, sizeof(p.uri), "/v1/environments/%s/work/healthcheck", env->id);
    for (int i = 0; i < PRODUCER_CONNS; i++) {
        pc[i] = (struct prod_conn){ .p = &p, .cn = bench_conn_new(b) };
        produce(&pc[i]);
    }
    int r = bench_run_until(b, &p.done, 120 + (double) n / 100);
    for (int i = 0; i < PRODUCER_CONNS; i++)
        evhttp_connection_free(pc[i].cn);
    *ret_rate = (double) n / ((double) (bench_now_us() - start) / 1e6);
    if (r < 0)
        fprintf(stderr, "bench: cycles: enqueueing %llu items timed out\n", (unsigned long long) n);
    return r < 0 ? r : p.err;
}

static int64_t self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

int bench_cycles(struct bench *b, const struct bench_env *env, int workers, double seconds,
                 struct bench_cycles_result *ret)
{
    double rate, elapsed;
    uint64_t done;
    int r = enqueue_many(b, env, WARMUP_ITEMS, &rate);
    if (r == 0)
        r = run(b, env, workers, WARMUP_ITEMS, 0, NULL, &done, &elapsed);
    if (r < 0)
        return r;
    double want = (double) done / elapsed * seconds * 1.5 + 1000;
    ret->items = (uint64_t) fmin(fmax(want, ITEMS_MIN), ITEMS_MAX);
    r = enqueue_many(b, env, ret->items, &ret->enqueue_per_s);
    struct bench_sched s0, s1;
    int64_t self0 = self_cpu_us();
    if (r == 0)
        r = bench_hub_sched(b, &s0);
    if (r == 0)
        r = run(b, env, workers, ret->items, seconds, &ret->cycle_us, &ret->cycles, &ret->elapsed_s);
    if (r == 0)
        r = bench_hub_sched(b, &s1);
    if (r == 0) {
        ret->cycles_per_s = (double) ret->cycles / ret->elapsed_s;
        ret->hub_cpu_us_per_cycle = (double) (s1.run_us - s0.run_us) / (double) ret->cycles;
        bench_sched_since(&s0, &s1, &ret->hub_cpu_pct, &ret->hub_wait_pct);
        ret->client_cpu_pct = 100.0 * (double) (self_cpu_us() - self0) / (double) (s1.at_us - s0.at_us);
    }
    if (r == 0 && ret->cycles >= ret->items)
        fprintf(stderr, "bench: cycles: the queue ran dry after %.1f s; rate is over that time\n", ret->elapsed_s);
    return r;
}
