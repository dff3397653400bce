/* SPDX-License-Identifier: Apache-2.0 */
/* One API call with the SDK client's retry policy (spec §1.3): up to two
 * retries of connection errors, timeouts, 408, 409, 429 and 5xx, unless the
 * server says x-should-retry: false (or forces one with true); backoff
 * min(0.5 s * 2^n, 8 s) minus up to 25 %, or the server's retry-after-ms /
 * retry-after when it is under a minute. The headers are the SDK's that
 * matter: bearer credential, anthropic-version, anthropic-beta, Accept. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "../lib/http/curl_ev.h"
#include "wk.h"

#define API_VERSION      "anthropic-version: 2026-10-21"
#define API_BETA         "anthropic-beta: managed-agents-2026-04-01"
#define DEFAULT_TIMEOUT  (10L * 60 * 1000)
#define MAX_HEADERS      12

struct wk_call {
    struct worker *w;
    char *method, *url, *bearer, *body, *accept, *helper;
    char *headers[MAX_HEADERS + 1];
    long timeout_ms;
    int max_retries;
    size_t max_response;
    bool no_parse;
    int attempt;
    struct al_curl_xfer *x;
    struct event *retry_timer;
    wk_done_cb done;
    void *ud;
    int should_retry;            /* -1 no hint, 0 false, 1 true */
    int64_t retry_after_ms;      /* -1 no hint */
};

bool wk_fatal_4xx(long status)
{
    return status >= 400 && status < 500 && status != 408 && status != 409 && status != 429;
}

int64_t wk_jitter_ms(int64_t lo, int64_t hi)
{
    uint32_t r;

    if (hi <= lo)
        return lo;
    al_random(&r, sizeof(r));
    return lo + (int64_t) (r % (uint64_t) (hi - lo));
}

int64_t wk_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms)
{
    int64_t d = base_ms;
    uint32_t r;

    for (int i = 0; i < attempt && d < cap_ms; i++)
        d *= 2;
    d = AL_MIN(d, cap_ms);
    al_random(&r, sizeof(r));
    return d - (int64_t) ((double) d * 0.25 * ((double) r / 4294967296.0));
}

static void call_free(struct wk_call *c)
{
    if (!c)
        return;
    if (c->retry_timer)
        event_free(c->retry_timer);
    free(c->method);
    free(c->url);
    if (c->bearer) {
        explicit_bzero(c->bearer, strlen(c->bearer));
        free(c->bearer);
    }
    free(c->body);
    free(c->accept);
    free(c->helper);
    for (size_t i = 0; c->headers[i]; i++)
        free(c->headers[i]);
    free(c);
}

void wk_call_cancel(struct wk_call *c)
{
    if (!c)
        return;
    if (c->x) {
        /* The transfer's done fires later with -ECANCELED and frees c. */
        c->done = NULL;
        al_curl_cancel(c->x);
        return;
    }
    call_free(c);
}

static void on_header(const char *line, size_t len, void *ud)
{
    struct wk_call *c = ud;
    const char *colon = memchr(line, ':', len);
    char val[64];
    size_t klen, vlen;
    const char *v;

    if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
        c->should_retry = -1;
        c->retry_after_ms = -1;
        return;
    }
    if (!colon)
        return;
    klen = (size_t) (colon - line);
    v = colon + 1;
    while (v < line + len && (*v == ' ' || *v == '\t'))
        v++;
    vlen = (size_t) (line + len - v);
    if (vlen >= sizeof(val))
        return;
    memcpy(val, v, vlen);
    val[vlen] = '\0';
    if (klen == 14 && !strncasecmp(line, "x-should-retry", klen)) {
        if (!strcmp(val, "true"))
            c->should_retry = 1;
        else if (!strcmp(val, "false"))
            c->should_retry = 0;
    } else if (klen == 14 && !strncasecmp(line, "retry-after-ms", klen)) {
        int64_t ms;
        if (al_parse_i64(val, 0, INT64_MAX, &ms) == 0)
            c->retry_after_ms = ms;
    } else if (klen == 11 && !strncasecmp(line, "retry-after", klen) && c->retry_after_ms < 0) {
        int64_t s;
        if (al_parse_i64(val, 0, INT64_MAX / 1000, &s) == 0)
            c->retry_after_ms = s * 1000;
        else {
            time_t t = curl_getdate(val, NULL);
            if (t > 0)
                c->retry_after_ms = AL_MAX((int64_t) t * 1000 - al_now_us() / 1000, 0);
        }
    }
}

static int call_attempt(struct wk_call *c);

static void on_retry(evutil_socket_t fd, short what, void *ud)
{
    struct wk_call *c = ud;
    int r = call_attempt(c);

    if (r < 0) {
        struct wk_resp resp = { .err = r };
        wk_done_cb done = c->done;
        void *dud = c->ud;
        call_free(c);
        if (done)
            done(&resp, dud);
    }
}

static bool retryable(const struct wk_call *c, int err, long status)
{
    if (c->attempt > c->max_retries)
        return false;
    if (err == -ECANCELED || err == -EMSGSIZE || err == -EINVAL || err == -ESHUTDOWN)
        return false;
    if (err < 0)
        return true;
    if (c->should_retry >= 0)
        return c->should_retry == 1;
    return status == 408 || status == 409 || status == 429 || status >= 500;
}

static void on_done(int err, long status, const char *body, size_t len, void *ud)
{
    struct wk_call *c = ud;

    c->x = NULL;
    if (!c->done) {                     /* cancelled */
        call_free(c);
        return;
    }
    if (retryable(c, err, status)) {
        int64_t ms = c->retry_after_ms;
        if (ms < 0 || ms >= 60000)
            ms = wk_backoff_ms(c->attempt - 1, 500, 8000);
        struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
        al_log(AL_DEBUG, "retrying API call", AL_STR("method", c->method), AL_STR("url", c->url),
               AL_I64("status", status), AL_ERR(err), AL_I64("attempt", c->attempt), AL_I64("backoff_ms", ms));
        if (!c->retry_timer)
            c->retry_timer = evtimer_new(c->w->base, on_retry, c);
        evtimer_add(c->retry_timer, &tv);
        return;
    }

    struct wk_resp resp = { .err = err, .status = status, .body = body, .len = len };
    json_t *j = NULL;
    if (err == 0 && len > 0 && (!c->no_parse || status < 200 || status > 299))
        j = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    resp.json = j;
    al_log(AL_DEBUG, "API call finished", AL_STR("method", c->method), AL_STR("url", c->url),
           AL_I64("status", status), AL_ERR(err));
    wk_done_cb done = c->done;
    void *dud = c->ud;
    call_free(c);
    done(&resp, dud);
    json_decref(j);
}

static int call_attempt(struct wk_call *c)
{
    char retry_hdr[48];
    const char *hdrs[MAX_HEADERS + 8];
    size_t n = 0;
    _cleanup_free_ char *accept = al_xasprintf("Accept: %s", c->accept ? c->accept : "application/json");
    _cleanup_free_ char *helper = c->helper ? al_xasprintf("x-stainless-helper: %s", c->helper) : NULL;

    c->attempt++;
    c->should_retry = -1;
    c->retry_after_ms = -1;
    snprintf(retry_hdr, sizeof(retry_hdr), "x-stainless-retry-count: %d", c->attempt - 1);
    hdrs[n++] = accept;
    hdrs[n++] = API_VERSION;
    hdrs[n++] = retry_hdr;
    if (helper)
        hdrs[n++] = helper;
    for (size_t i = 0; c->headers[i]; i++)
        hdrs[n++] = c->headers[i];
    hdrs[n] = NULL;

    struct al_curl_req_opts o = {
        .method = c->method,
        .url = c->url,
        .bearer = c->bearer,
        .content_type = c->body ? "application/json" : NULL,
        .body = c->body,
        .body_len = c->body ? strlen(c->body) : 0,
        .timeout_ms = c->timeout_ms,
        .max_response = c->max_response,
        .headers = hdrs,
        .cainfo = c->w->cfg.cacert,
        .on_header = on_header,
    };
    return al_curl_request(c->w->curl, &o, on_done, c, &c->x);
}

struct wk_call *wk_call(struct worker *w, const struct wk_call_opts *o, wk_done_cb done, void *ud)
{
    struct wk_call *c = al_xcalloc(1, sizeof(*c));
    size_t n = 0;
    int r;

    c->w = w;
    c->method = al_xstrdup(o->method ? o->method : "GET");
    c->url = al_xstrdup(o->url);
    c->bearer = o->bearer ? al_xstrdup(o->bearer) : NULL;
    c->body = o->body ? json_dumps(o->body, JSON_COMPACT) : NULL;
    c->accept = o->accept ? al_xstrdup(o->accept) : NULL;
    c->helper = o->helper ? al_xstrdup(o->helper) : NULL;
    if (!o->no_beta)
        c->headers[n++] = al_xstrdup(API_BETA);
    for (const char *const *h = o->headers; h && *h && n < MAX_HEADERS; h++)
        c->headers[n++] = al_xstrdup(*h);
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT;
    c->max_retries = o->max_retries < 0 ? 2 : o->max_retries;
    c->max_response = o->max_response;
    c->no_parse = o->no_parse;
    c->done = done;
    c->ud = ud;
    if (o->body && !c->body) {
        call_free(c);
        return NULL;
    }
    r = call_attempt(c);
    if (r < 0) {
        al_log(AL_ERROR, "cannot start API call", AL_STR("method", c->method), AL_STR("url", c->url), AL_ERR(r));
        call_free(c);
        return NULL;
    }
    return c;
}

char *wk_resp_describe(const struct wk_resp *r)
{
    if (r->err < 0) {
        const char *name = al_errno_name((int) -r->err);
        return al_xasprintf("connection error: %s", name ? name : "unknown");
    }
    json_t *err = r->json ? json_object_get(r->json, "error") : NULL;
    const char *type = json_string_value(json_object_get(err, "type"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (type || msg)
        return al_xasprintf("HTTP %ld %s: %s", r->status, type ? type : "error", msg ? msg : "");
    return al_xasprintf("HTTP %ld", r->status);
}

char *wk_url(const char *base, const char *fmt, ...)
{
    va_list ap;
    _cleanup_free_ char *path = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&path, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    return al_xasprintf("%s%s", base, path);
}
