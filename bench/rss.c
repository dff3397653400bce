/* SPDX-License-Identifier: Apache-2.0 */
/* The hub's memory with many idle connections: `streams` SSE streams spread
 * round-robin over `sessions` sessions, then `polls` long-polls in one
 * environment (block_ms=999, re-issued as each comes back empty, to keep
 * them parked). Connections are opened in batches, so that the hub's accept
 * queue (libevent listens with a backlog of 128) overflows as little as
 * possible; one that fails to connect is retried and counted. Once every
 * connection has been served, the phase holds them while sampling
 * /proc/PID/{status,smaps_rollup} and the hub's scheduler figures, and then
 * measures wake and SSE latency with all of them still open. Loop thread only. */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define RAMP_BATCH      250      /* connections opened per ramp tick */
#define RAMP_TICK_US    10000
#define READY_TIMEOUT_S 120
#define SAMPLE_US       500000

struct rss;

struct park {
    struct rss *x;
    struct evhttp_connection *cn;
    bool answered;             /* a first poll came back: the hub has it */
    char worker_id[24];
};

struct held_stream {
    struct rss *x;
    struct bench_stream *s;
    bool open;                 /* its first frame arrived */
};

struct rss {
    struct bench *b;
    const struct bench_rss_opts *o;
    struct park *p;
    struct held_stream *st;
    char (*sessions)[64];
    int polls_opened, polls_answered, streams_opened, streams_open;
    char poll_uri[192];
    struct event *ramp;
    uint64_t errors, items, reconnects;
    bool stopping, never;
};

static void park_poll(struct park *p);

/* Counts a failure; the first few are described. A connection that failed
 * (say, its SYN met a full accept queue) is retried and only counted; an
 * HTTP error status ends the phase. */
static void rss_error(struct rss *x, const char *what, struct evhttp_request *req)
{
    bool conn = !req || evhttp_request_get_response_code(req) == 0;
    uint64_t n = conn ? x->reconnects++ : x->errors++;
    if (n < 3)
        fprintf(stderr, "bench: rss: %s: %s %d (%s)%s\n", what, conn ? "connection failed" : "status",
                req ? evhttp_request_get_response_code(req) : 0, bench_last_error(), conn ? ", retrying" : "");
}

static void on_park_poll(struct evhttp_request *req, void *arg)
{
    struct park *p = arg;
    if (p->x->stopping)
        return;
    if (!req || evhttp_request_get_response_code(req) != 200)
        rss_error(p->x, "poll", req);
    else if (!bench_body_is_null(req))
        p->x->items++;     /* nothing enqueues here; counted, not expected */
    if (!p->answered) {
        p->answered = true;
        p->x->polls_answered++;
    }
    park_poll(p);
}

static void park_poll(struct park *p)
{
    if (bench_send(p->cn, EVHTTP_REQ_GET, p->x->poll_uri, p->x->o->park_env->key_auth, p->worker_id, NULL,
                   on_park_poll, p) < 0)
        rss_error(p->x, "poll", NULL);
}

static void on_stream_frame(struct bench_stream *s, const char *event, int64_t now, void *arg)
{
    struct held_stream *hs = arg;
    struct rss *x = hs->x;
    if (x->stopping)
        return;
    if (!event) {
        rss_error(x, "stream ended", NULL);
        if (bench_stream_restart(s) < 0)
            x->errors++;
        return;
    }
    if (!hs->open) {
        hs->open = true;
        x->streams_open++;
    }
}

/* Streams first: they cost the hub nothing once open. The polls follow,
 * since from their first expiry on they keep the hub busy re-parking them. */
static void on_ramp(evutil_socket_t fd, short what, void *arg)
{
    struct rss *x = arg;
    const struct bench_rss_opts *o = x->o;

    for (int i = 0; i < RAMP_BATCH && x->streams_opened < o->streams; i++) {
        const char *sid = x->sessions[x->streams_opened % o->sessions];
        struct held_stream *hs = &x->st[x->streams_opened++];
        hs->x = x;
        hs->s = bench_stream_open(x->b, sid, on_stream_frame, hs);
    }
    for (int i = 0; i < RAMP_BATCH && x->streams_open == o->streams && x->polls_opened < o->polls; i++) {
        struct park *p = &x->p[x->polls_opened++];
        p->x = x;
        p->cn = bench_conn_new(x->b);
        snprintf(p->worker_id, sizeof(p->worker_id), "bench-park-%d", x->polls_opened);
        park_poll(p);
    }
    if (x->polls_opened < o->polls) {
        struct timeval tv = { 0, RAMP_TICK_US };
        evtimer_add(x->ramp, &tv);
    }
}

/* Runs the loop for seconds (nothing sets `never`). */
static void spin(struct rss *x, double seconds)
{
    (void) !bench_run_until(x->b, &x->never, seconds);
}

/* Ready once every stream has its first frame and every poll connection
 * one answer (an empty poll after block_ms): then the hub has accepted and
 * served each of them, whether or not it keeps up with the re-polls. */
static int wait_ready(struct rss *x, struct bench_rss_result *ret)
{
    const struct bench_rss_opts *o = x->o;
    int64_t start = bench_now_us();

    while (x->polls_answered < o->polls || x->streams_open < o->streams) {
        spin(x, 0.1);
        if (x->errors || x->reconnects > (uint64_t) (o->polls + o->streams) / 10) {
            fprintf(stderr, "bench: rss: %llu requests failed, %llu connections failed while opening them\n",
                    (unsigned long long) x->errors, (unsigned long long) x->reconnects);
            return -EPROTO;
        }
        if (bench_now_us() - start > READY_TIMEOUT_S * 1000000LL) {
            fprintf(stderr, "bench: rss: after %d s, %d/%d streams open, %d/%d polls answered\n", READY_TIMEOUT_S,
                    x->streams_open, o->streams, x->polls_answered, o->polls);
            return -ETIMEDOUT;
        }
    }
    ret->ramp_s = (double) (bench_now_us() - start) / 1e6;
    return 0;
}

/* Samples memory every SAMPLE_US for hold_s. How many polls are parked is
 * worked out from the answer rate (Little's law: each empty answer ends a
 * 999 ms park), not from the hub's gauge: reading the gauge is a request
 * that waits in the same queue as the re-polls, and it is only ever read at
 * the moment the hub has caught up. */
static int hold(struct rss *x, struct bench_rss_result *ret)
{
    int64_t polls0, polls1, t0 = bench_now_us(), end = t0 + (int64_t) (x->o->hold_s * 1e6);
    struct bench_sched s0, s1;
    int r = bench_hub_sched(x->b, &s0);

    if (r == 0)
        r = bench_metric(x->b, "airlock_hub_polls_total", &polls0);
    while (r == 0 && bench_now_us() < end) {
        struct bench_mem m;
        spin(x, SAMPLE_US / 1e6);
        r = bench_hub_mem(x->b, &m);
        if (r < 0) {
            fprintf(stderr, "bench: rss: cannot read /proc/%d\n", (int) x->b->hub_pid);
            return r;
        }
        ret->held.rss_kb = AL_MAX(ret->held.rss_kb, m.rss_kb);
        ret->held.pss_kb = AL_MAX(ret->held.pss_kb, m.pss_kb);
        ret->held.hwm_kb = m.hwm_kb;
    }
    if (r == 0)
        r = bench_hub_sched(x->b, &s1);
    if (r == 0)
        r = bench_metric(x->b, "airlock_hub_polls_total", &polls1);
    if (r == 0)
        r = bench_metric(x->b, "airlock_hub_event_streams", &ret->open_streams);
    if (r < 0)
        return r;
    bench_sched_since(&s0, &s1, &ret->hub_cpu_pct, &ret->hub_wait_pct);
    ret->polls_per_s = (double) (polls1 - polls0) / ((double) (bench_now_us() - t0) / 1e6);
    ret->parked_avg = ret->polls_per_s * 0.999;
    return 0;
}

static int make_sessions(struct rss *x)
{
    struct bench_env env;
    int r = bench_env_new(x->b, "bench-rss-sessions", &env);
    for (int i = 0; r == 0 && i < x->o->sessions; i++)
        r = bench_session_new(x->b, x->o->agent_id, env.id, x->sessions[i], sizeof(x->sessions[i]));
    return r;
}

static void close_all(struct rss *x)
{
    x->stopping = true;
    for (int i = 0; i < x->polls_opened; i++)
        evhttp_connection_free(x->p[i].cn);
    for (int i = 0; i < x->streams_opened; i++)
        x->st[i].s = bench_stream_free(x->st[i].s);
    x->polls_opened = x->streams_opened = 0;
}

int bench_rss(struct bench *b, const struct bench_rss_opts *o, struct bench_rss_result *ret)
{
    struct rss x = { .b = b, .o = o };
    int r;

    x.p = al_xcalloc((size_t) o->polls, sizeof(*x.p));
    x.st = al_xcalloc((size_t) o->streams, sizeof(*x.st));
    x.sessions = al_xcalloc((size_t) o->sessions, sizeof(*x.sessions));
    snprintf(x.poll_uri, sizeof(x.poll_uri), "/v1/environments/%s/work/poll?block_ms=999", o->park_env->id);
    x.ramp = evtimer_new(b->base, on_ramp, &x);

    r = make_sessions(&x);
    if (r == 0)
        r = bench_hub_mem(b, &ret->before);
    if (r == 0) {
        event_active(x.ramp, EV_TIMEOUT, 0);
        r = wait_ready(&x, ret);
    }
    if (r == 0)
        r = hold(&x, ret);
    if (r == 0 && o->loaded_iters > 0)
        r = bench_wake(b, o->wake_env, 1, o->loaded_iters, 2, o->loaded_max_s, &ret->wake_us);
    if (r == 0 && o->loaded_iters > 0)
        r = bench_sse(b, o->sse_session, o->loaded_iters, 2, o->loaded_max_s, &ret->echo_us,
                      &ret->reply_us);
    if (r == 0 && (x.errors || x.items)) {
        fprintf(stderr, "bench: rss: %llu failed requests, %llu unexpected items while holding\n",
                (unsigned long long) x.errors, (unsigned long long) x.items);
        r = -EPROTO;
    }
    event_free(x.ramp);
    close_all(&x);
    struct bench_sched s0, s1;
    if (r == 0)
        r = bench_hub_sched(b, &s0);
    if (r == 0) {
        /* Let the hub see the closes and drain the re-polls it had queued. */
        spin(&x, 1.0);
        r = bench_hub_mem(b, &ret->after);
    }
    if (r == 0)
        r = bench_hub_sched(b, &s1);
    if (r == 0)
        bench_sched_since(&s0, &s1, &ret->after_cpu_pct, &(double){ 0 });
    ret->reconnects = x.reconnects;
    free(x.p);
    free(x.st);
    free(x.sessions);
    return r;
}
