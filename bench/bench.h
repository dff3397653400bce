/* SPDX-License-Identifier: Apache-2.0 */
/* airlock-bench: the hub's load generator. One process, one libevent loop,
 * libevent's HTTP client; each measurement is a small state machine driven
 * from that loop, and main() runs them one after the other. It is not a
 * test: it measures and prints, and fails only when the hub misbehaves (an
 * unexpected status, a dropped connection), never because a target is
 * missed. Every time is taken with one monotonic clock in this process. */
#pragma once

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../src/lib/base/macro.h"

struct event_base;
struct evhttp_connection;
struct evhttp_request;

/* A growable set of samples in microseconds. */
struct bench_samples {
    double *v;
    size_t n, cap;
};

void bench_samples_add(struct bench_samples *s, double us);
/* Nearest-rank percentile (sorts in place); 0 when empty. */
double bench_samples_pct(struct bench_samples *s, double pct);
void bench_samples_done(struct bench_samples *s);

/* An environment with its environment key, as the phases use it. */
struct bench_env {
    char id[64];
    char key_auth[128];       /* "Bearer al-env-..." */
};

struct bench {
    struct event_base *base;
    char host[64];
    uint16_t port;
    char api_auth[160];       /* "Bearer al-api-..." */
    pid_t hub_pid;
    struct evhttp_connection *ctl;   /* setup calls, one at a time */
};

typedef void (*bench_cb)(struct evhttp_request *req, void *arg);

int64_t bench_now_us(void);      /* CLOCK_MONOTONIC */

/* A keep-alive client connection to the hub. Never NULL. */
struct evhttp_connection *bench_conn_new(struct bench *b);

/* Replaces b->ctl, dropping its pending requests without their callbacks:
 * a phase that failed calls this so that no callback outlives its state. */
void bench_ctl_reset(struct bench *b);

/* Sends one request on cn; cb runs with the response, or with NULL when the
 * connection failed. worker_id and body may be NULL. Returns 0 or -EIO. */
_must_check_ int bench_send(struct evhttp_connection *cn, enum evhttp_cmd_type method, const char *uri,
                            const char *auth, const char *worker_id, const char *body, bench_cb cb, void *arg);
/* Like bench_send for a streaming response: chunk_cb runs per received chunk. */
_must_check_ int bench_send_stream(struct evhttp_connection *cn, const char *uri, const char *auth, bench_cb chunk_cb,
                                   bench_cb done_cb, void *arg);
/* Why the last request that failed did (libevent's reason, or an errno name). */
const char *bench_last_error(void);
/* True when every byte of the requests queued on cn has left this process. */
bool bench_conn_flushed(struct evhttp_connection *cn);

/* The response body, NUL-terminated (valid until the callback returns). */
const char *bench_body(struct evhttp_request *req, size_t *ret_len);
bool bench_body_is_null(struct evhttp_request *req);
/* Copies the JSON string member key of the body into buf; -EBADMSG if absent. */
_must_check_ int bench_body_id(struct evhttp_request *req, const char *key, char *buf, size_t n);

/* Runs the loop until *done; -ETIMEDOUT if that takes over timeout_s. */
_must_check_ int bench_run_until(struct bench *b, const bool *done, double timeout_s);
/* A synchronous call on b->ctl for setup. Returns the parsed body (NULL if
 * it is not JSON) and the status in *ret_status (0 if the call failed). */
json_t *bench_call(struct bench *b, enum evhttp_cmd_type method, const char *uri, const char *auth,
                   const char *body, int *ret_status);
/* Reads gauge name from the hub's /metrics; -errno on failure. */
_must_check_ int bench_metric(struct bench *b, const char *name, int64_t *ret);

/* An SSE reader on its own connection. cb runs once per frame with the
 * frame's event name ("" for a comment), and once with NULL when the stream
 * ends or fails. The stream must not be freed from inside cb. */
struct bench_stream;
typedef void (*bench_frame_cb)(struct bench_stream *s, const char *event, int64_t now_us, void *arg);
struct bench_stream *bench_stream_open(struct bench *b, const char *session_id, bench_frame_cb cb, void *arg);
struct bench_stream *bench_stream_free(struct bench_stream *s);   /* NULL-safe; returns NULL */
/* Sends the stream request again on the same connection (which reconnects);
 * may be called from cb after it saw NULL. Returns 0 or -EIO. */
_must_check_ int bench_stream_restart(struct bench_stream *s);

/* The hub's memory in KiB (VmRSS, VmHWM from status; Pss from smaps_rollup). */
struct bench_mem {
    int64_t rss_kb, hwm_kb, pss_kb;
};
_must_check_ int bench_hub_mem(const struct bench *b, struct bench_mem *ret);
/* The hub's scheduler figures (/proc/PID/schedstat): time on a CPU and time
 * spent runnable but waiting for one, which shows how much of a result is
 * the machine's other load. */
struct bench_sched {
    int64_t run_us, wait_us, at_us;
};
_must_check_ int bench_hub_sched(const struct bench *b, struct bench_sched *ret);
/* Percent of the wall time between a and b the hub ran, and waited to run. */
void bench_sched_since(const struct bench_sched *a, const struct bench_sched *b, double *ret_cpu_pct,
                       double *ret_wait_pct);

/* Setup helpers (on b->ctl); -errno on failure after printing why. */
_must_check_ int bench_env_new(struct bench *b, const char *name, struct bench_env *ret);
_must_check_ int bench_agent_new(struct bench *b, char *ret_id, size_t n);
_must_check_ int bench_session_new(struct bench *b, const char *agent_id, const char *env_id, char *ret_id, size_t n);

/* The phases. Each returns 0 or -errno; a hub error is printed where seen. */

/* Wake latency: pollers long-polls parked in env; each iteration enqueues a
 * health check and times enqueue send -> poll response with the item. Stops
 * early, without error, when max_s seconds have passed. */
_must_check_ int bench_wake(struct bench *b, const struct bench_env *env, int pollers, int iters, int warmup,
                            double max_s, struct bench_samples *ret);

/* Work cycles (poll, ack, heartbeat, stop) by `workers` concurrent pollers
 * for `seconds` over pre-enqueued health checks. */
struct bench_cycles_result {
    double cycles_per_s, enqueue_per_s, elapsed_s;
    double hub_cpu_us_per_cycle;     /* hub CPU time per cycle */
    double hub_cpu_pct, hub_wait_pct;   /* of the timed run: on a CPU, waiting for one */
    double client_cpu_pct;           /* this process, same interval */
    uint64_t cycles, items;
    struct bench_samples cycle_us;   /* one full cycle, per worker */
};
_must_check_ int bench_cycles(struct bench *b, const struct bench_env *env, int workers, double seconds,
                              struct bench_cycles_result *ret);

/* SSE delivery: POST user.message "say hi" to session; times send -> the
 * user.message frame and -> the agent's first agent.message frame. Stops
 * early, without error, when max_s seconds have passed. */
_must_check_ int bench_sse(struct bench *b, const char *session_id, int iters, int warmup, double max_s,
                           struct bench_samples *echo, struct bench_samples *reply);

/* Resident memory with `polls` parked long-polls and `streams` SSE streams
 * spread over `sessions` sessions; also the latencies measured under it. */
struct bench_rss_opts {
    int polls, streams, sessions;
    double hold_s;
    int loaded_iters;             /* wake and SSE samples taken under load */
    double loaded_max_s;          /* time budget of each of those two runs */
    const struct bench_env *park_env, *wake_env;
    const char *agent_id, *sse_session;
};
struct bench_rss_result {
    struct bench_mem before, held, after;
    double hub_cpu_pct, hub_wait_pct;   /* while holding: on a CPU, waiting for one */
    double after_cpu_pct;         /* in the second after closing them all */
    double ramp_s;
    int64_t open_streams;         /* the hub's gauge at the end of the hold */
    double polls_per_s;           /* empty long-polls answered (and re-issued) while holding */
    double parked_avg;            /* polls parked on average: polls_per_s x 0.999 s */
    uint64_t reconnects;          /* requests re-sent after their connection failed */
    struct bench_samples wake_us, echo_us, reply_us;
};
_must_check_ int bench_rss(struct bench *b, const struct bench_rss_opts *o, struct bench_rss_result *ret);
