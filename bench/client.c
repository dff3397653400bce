/* SPDX-License-Identifier: Apache-2.0 */
/* The bench's plumbing: samples, requests on libevent's HTTP client, a
 * synchronous call for setup, and the hub's /proc figures. Loop thread only;
 * nothing here blocks except bench_call and bench_run_until, which run the
 * loop themselves and so are only called from main(), never from a callback. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define CONN_TIMEOUT_S 600   /* SSE streams and parked polls stay open */
#define CALL_TIMEOUT_S 30

void bench_samples_add(struct bench_samples *s, double us)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = al_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = us;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

double bench_samples_pct(struct bench_samples *s, double pct)
{
    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof(*s->v), cmp_double);
    size_t rank = (size_t) ceil(pct / 100.0 * (double) s->n);
    return s->v[rank ? rank - 1 : 0];
}

void bench_samples_done(struct bench_samples *s)
{
    free(s->v);
    *s = (struct bench_samples){ 0 };
}

int64_t bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct evhttp_connection *bench_conn_new(struct bench *b)
{
    struct evhttp_connection *cn = evhttp_connection_base_new(b->base, NULL, b->host, b->port);
    if (!cn) {
        fprintf(stderr, "bench: evhttp_connection_base_new failed\n");
        abort();
    }
    evhttp_connection_set_timeout(cn, CONN_TIMEOUT_S);
    return cn;
}

void bench_ctl_reset(struct bench *b)
{
    if (b->ctl)
        evhttp_connection_free(b->ctl);
    b->ctl = bench_conn_new(b);
}

/* The reason of the last failed request, for error messages. */
static const char *last_error = "none";

static void on_error(enum evhttp_request_error e, void *arg)
{
    static const char *const names[] = { "timeout", "EOF", "invalid header", "read/write error", "cancelled",
                                         "body too long" };
    last_error = (unsigned) e < AL_ELEMENTSOF(names) ? names[e] : "unknown";
    if ((e == EVREQ_HTTP_BUFFER_ERROR || e == EVREQ_HTTP_EOF) && errno)
        last_error = strerrorname_np(errno) ?: last_error;
}

const char *bench_last_error(void) { return last_error; }

static struct evhttp_request *request_new(const char *auth, const char *worker_id, const char *body, bench_cb cb,
                                          void *arg)
{
    struct evhttp_request *req = evhttp_request_new(cb, arg);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_request_set_error_cb(req, on_error);
    evhttp_add_header(h, "Host", "127.0.0.1");
    if (auth)
        evhttp_add_header(h, "Authorization", auth);
    if (worker_id)
        evhttp_add_header(h, "Anthropic-Worker-ID", worker_id);
    if (body) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
    return req;
}

int bench_send(struct evhttp_connection *cn, enum evhttp_cmd_type method, const char *uri, const char *auth,
               const char *worker_id, const char *body, bench_cb cb, void *arg)
{
    struct evhttp_request *req = request_new(auth, worker_id, body, cb, arg);
    /* On failure evhttp_make_request has already freed req. */
    return evhttp_make_request(cn, req, method, uri) == 0 ? 0 : -EIO;
}

int bench_send_stream(struct evhttp_connection *cn, const char *uri, const char *auth, bench_cb chunk_cb,
                      bench_cb done_cb, void *arg)
{
    struct evhttp_request *req = request_new(auth, NULL, NULL, done_cb, arg);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Accept", "text/event-stream");
    evhttp_request_set_chunked_cb(req, chunk_cb);
    return evhttp_make_request(cn, req, EVHTTP_REQ_GET, uri) == 0 ? 0 : -EIO;
}

bool bench_conn_flushed(struct evhttp_connection *cn)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(cn);
    return !bev || evbuffer_get_length(bufferevent_get_output(bev)) == 0;
}

const char *bench_body(struct evhttp_request *req, size_t *ret_len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    const char *s = (const char *) evbuffer_pullup(in, -1);
    /* NUL-terminate in place, once: HTTP bodies here never hold a NUL. */
    if (n == 0 || s[n - 1] != '\0') {
        evbuffer_add(in, "", 1);
        s = (const char *) evbuffer_pullup(in, -1);
        n++;
    }
    *ret_len = n - 1;
    return s;
}

bool bench_body_is_null(struct evhttp_request *req)
{
    size_t n;
    const char *s = bench_body(req, &n);
    return n == 4 && !memcmp(s, "null", 4);
}

int bench_body_id(struct evhttp_request *req, const char *key, char *buf, size_t n)
{
    size_t len;
    const char *s = bench_body(req, &len);
    json_t *j = json_loadb(s, len, 0, NULL);
    const char *v = json_string_value(json_object_get(j, key));
    int r = v && strlen(v) < n ? 0 : -EBADMSG;
    if (r == 0)
        memcpy(buf, v, strlen(v) + 1);
    json_decref(j);
    return r;
}

static void on_expired(evutil_socket_t fd, short what, void *arg)
{
    *(bool *) arg = true;
}

int bench_run_until(struct bench *b, const bool *done, double timeout_s)
{
    bool expired = false;
    struct event *t = evtimer_new(b->base, on_expired, &expired);
    struct timeval tv = { (time_t) timeout_s, (suseconds_t) ((timeout_s - (double) (time_t) timeout_s) * 1e6) };
    evtimer_add(t, &tv);
    while (!*done && !expired)
        event_base_loop(b->base, EVLOOP_ONCE);
    event_free(t);
    return *done ? 0 : -ETIMEDOUT;
}

struct call {
    bool done;
    int status;
    json_t *body;
};

static void on_call(struct evhttp_request *req, void *arg)
{
    struct call *c = arg;
    c->done = true;
    if (!req)
        return;
    size_t n;
    const char *s = bench_body(req, &n);
    c->status = evhttp_request_get_response_code(req);
    c->body = json_loadb(s, n, JSON_DECODE_ANY, NULL);
}

json_t *bench_call(struct bench *b, enum evhttp_cmd_type method, const char *uri, const char *auth,
                   const char *body, int *ret_status)
{
    struct call c = { 0 };
    if (bench_send(b->ctl, method, uri, auth, NULL, body, on_call, &c) < 0) {
        *ret_status = 0;
        return NULL;
    }
    if (bench_run_until(b, &c.done, CALL_TIMEOUT_S) < 0) {
        fprintf(stderr, "bench: %s: no reply within %d s\n", uri, CALL_TIMEOUT_S);
        bench_ctl_reset(b);
    }
    *ret_status = c.status;
    return c.body;
}

struct metric_call {
    bool done;
    const char *name;
    int64_t value;
    int err;
};

static void on_metrics(struct evhttp_request *req, void *arg)
{
    struct metric_call *m = arg;
    m->done = true;
    m->err = -EIO;
    if (!req || evhttp_request_get_response_code(req) != 200)
        return;
    size_t n;
    const char *s = bench_body(req, &n), *p = s;
    size_t nl = strlen(m->name);
    while ((p = strstr(p, m->name))) {
        if ((p == s || p[-1] == '\n') && p[nl] == ' ') {
            m->value = strtoll(p + nl + 1, NULL, 10);
            m->err = 0;
            return;
        }
        p += nl;
    }
    m->err = -ENOENT;
}

int bench_metric(struct bench *b, const char *name, int64_t *ret)
{
    struct metric_call m = { .name = name };
    if (bench_send(b->ctl, EVHTTP_REQ_GET, "/metrics", NULL, NULL, NULL, on_metrics, &m) < 0)
        return -EIO;
    if (bench_run_until(b, &m.done, CALL_TIMEOUT_S) < 0) {
        bench_ctl_reset(b);
        return -ETIMEDOUT;
    }
    *ret = m.value;
    return m.err;
}

/* Finds "key:<spaces>N" in a /proc file and returns N. */
static int proc_field(const char *path, const char *key, int64_t *ret)
{
    char line[256];
    size_t kl = strlen(key);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    int r = -ENOENT;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            *ret = strtoll(line + kl + 1, NULL, 10);
            r = 0;
            break;
        }
    fclose(f);
    return r;
}

int bench_hub_mem(const struct bench *b, struct bench_mem *ret)
{
    char status[64], rollup[64];
    snprintf(status, sizeof(status), "/proc/%d/status", (int) b->hub_pid);
    snprintf(rollup, sizeof(rollup), "/proc/%d/smaps_rollup", (int) b->hub_pid);
    int r = proc_field(status, "VmRSS", &ret->rss_kb);
    if (r == 0)
        r = proc_field(status, "VmHWM", &ret->hwm_kb);
    if (r == 0)
        r = proc_field(rollup, "Pss", &ret->pss_kb);
    return r;
}

int bench_hub_sched(const struct bench *b, struct bench_sched *ret)
{
    char path[64];
    unsigned long long run_ns, wait_ns;
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int) b->hub_pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    int n = fscanf(f, "%llu %llu", &run_ns, &wait_ns);
    fclose(f);
    if (n != 2)
        return -EBADMSG;
    ret->run_us = (int64_t) (run_ns / 1000);
    ret->wait_us = (int64_t) (wait_ns / 1000);
    ret->at_us = bench_now_us();
    return 0;
}

void bench_sched_since(const struct bench_sched *a, const struct bench_sched *b, double *ret_cpu_pct,
                       double *ret_wait_pct)
{
    double wall = (double) (b->at_us - a->at_us);
    *ret_cpu_pct = wall > 0 ? 100.0 * (double) (b->run_us - a->run_us) / wall : 0;
    *ret_wait_pct = wall > 0 ? 100.0 * (double) (b->wait_us - a->wait_us) / wall : 0;
}

/* POSTs body to uri with the API key and copies the string member of the reply. */
static int create(struct bench *b, const char *uri, const char *body, const char *member, char *ret, size_t n)
{
    int status;
    json_t *j = bench_call(b, EVHTTP_REQ_POST, uri, b->api_auth, body, &status);
    const char *v = json_string_value(json_object_get(j, member));
    int r = status == 200 && v && strlen(v) < n ? 0 : -EPROTO;
    if (r == 0)
        memcpy(ret, v, strlen(v) + 1);
    else
        fprintf(stderr, "bench: POST %s: status %d\n", uri, status);
    json_decref(j);
    return r;
}

int bench_env_new(struct bench *b, const char *name, struct bench_env *ret)
{
    char body[256], uri[128], key[96];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"config\":{\"type\":\"self_hosted\"}}", name);
    int r = create(b, "/v1/environments", body, "id", ret->id, sizeof(ret->id));
    if (r < 0)
        return r;
    snprintf(uri, sizeof(uri), "/v1/environments/%s/keys", ret->id);
    r = create(b, uri, NULL, "key", key, sizeof(key));
    if (r == 0)
        snprintf(ret->key_auth, sizeof(ret->key_auth), "Bearer %s", key);
    return r;
}

int bench_agent_new(struct bench *b, char *ret_id, size_t n)
{
    return create(b, "/v1/agents",
                  "{\"name\":\"bench\",\"model\":\"airlock-scripted\",\"tools\":[{\"type\":\"agent_toolset_20260401\"}]}",
                  "id", ret_id, n);
}

int bench_session_new(struct bench *b, const char *agent_id, const char *env_id, char *ret_id, size_t n)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"agent\":\"%s\",\"environment_id\":\"%s\"}", agent_id, env_id);
    return create(b, "/v1/sessions", body, "id", ret_id, n);
}
