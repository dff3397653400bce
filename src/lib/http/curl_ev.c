/* SPDX-License-Identifier: Apache-2.0 */
/* Non-blocking HTTP client: libcurl multi driven by libevent. curl tells us
 * which sockets to watch (sock_cb) and when to wake it (timer_cb); we hand
 * readiness back with curl_multi_socket_action and collect finished
 * transfers with curl_multi_info_read. User callbacks that end a transfer
 * (done) only ever run from our own "kick" event, so they never run inside
 * a libcurl call or inside one of our API calls; on_event runs inside
 * libcurl's write callback, so work that libcurl forbids there (adding or
 * removing handles) is deferred to the kick event too. */
#include <assert.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <stdbool.h>
#include <string.h>
#include <sys/queue.h>

#include "../base/buf.h"
#include "../base/log.h"
#include "curl_ev.h"
#include "curl_util.h"

enum xfer_state {
    XFER_QUEUED,     /* easy handle built, not yet in the multi (added from the kick event) */
    XFER_RUNNING,    /* in the multi */
    XFER_FINISHED,   /* result known; done fires from the next kick */
    XFER_DONE,       /* done is running; freed when it returns */
    _XFER_STATE_MAX,
};

static const char *const xfer_state_name[_XFER_STATE_MAX] = {
    [XFER_QUEUED] = "queued", [XFER_RUNNING] = "running",
    [XFER_FINISHED] = "finished", [XFER_DONE] = "done",
};

struct al_curl_xfer {
    struct al_curl *c;
    uint64_t id;
    enum xfer_state state;
    CURL *easy;
    bool attached;                 /* easy is in c->multi */
    struct curl_slist *hdr;
    int err;                       /* result, or an error a callback recorded */
    long status;
    /* request */
    al_curl_done_cb done;
    struct al_buf body;            /* capped at opts.max_response */
    /* sse */
    bool is_sse;
    al_sse_event_cb on_event;
    void (*on_open)(long status, void *ud);
    void (*on_header)(const char *line, size_t len, void *ud);
    int (*on_body)(const char *p, size_t n, void *ud);
    struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO, one entry */
    bool opened;
    al_curl_sse_done_cb sse_done;
    struct al_sse_reader reader;
    void *ud;
    TAILQ_ENTRY(al_curl_xfer) all_link;   /* c->all: every undelivered transfer */
    TAILQ_ENTRY(al_curl_xfer) q_link;     /* c->queued or c->finished */
};

struct sock {
    struct al_curl *c;
    curl_socket_t fd;
    struct event *ev;
    LIST_ENTRY(sock) link;
};

struct al_curl {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;           /* curl's single timeout */
    struct event *kick;            /* adds queued and delivers finished transfers */
    unsigned in_curl;              /* depth of socket_action calls (libcurl callbacks possible) */
    unsigned in_cb;                /* depth of done callbacks */
    bool closing;
    uint64_t next_id;
    TAILQ_HEAD(al_curl_xfer_q, al_curl_xfer) all, queued, finished;
    LIST_HEAD(sock_list, sock) socks;
};

static void xfer_set_state(struct al_curl_xfer *x, enum xfer_state next)
{
    al_log(AL_DEBUG, "curl.xfer.state", AL_U64("xfer", x->id), AL_STR("to", xfer_state_name[next]));
    x->state = next;
}

static void xfer_free(struct al_curl_xfer *x)
{
    if (!x)
        return;
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdr);
    curl_slist_free_all(x->connect_to);
    al_buf_clear(&x->body);
    if (x->is_sse)
        al_sse_reader_done(&x->reader);
    free(x);
}

static void xfer_detach(struct al_curl_xfer *x)
{
    if (!x->attached)
        return;
    (void) curl_multi_remove_handle(x->c->multi, x->easy);
    x->attached = false;
}

/* Records the result and schedules done. The first result wins. */
static void xfer_finish(struct al_curl_xfer *x, int err, long status)
{
    struct al_curl *c = x->c;

    if (x->state == XFER_QUEUED)
        TAILQ_REMOVE(&c->queued, x, q_link);
    else if (x->state != XFER_RUNNING)
        return;
    x->err = err;
    x->status = status;
    xfer_set_state(x, XFER_FINISHED);
    TAILQ_INSERT_TAIL(&c->finished, x, q_link);
    event_active(c->kick, EV_TIMEOUT, 0);
}

static void xfer_deliver(struct al_curl_xfer *x)
{
    struct al_curl *c = x->c;
    bool ok = x->err == 0;

    xfer_set_state(x, XFER_DONE);
    c->in_cb++;
    if (x->is_sse)
        x->sse_done(x->err, x->status, x->ud);
    else
        x->done(x->err, x->status, ok ? (x->body.data ? x->body.data : "") : NULL, ok ? x->body.len : 0, x->ud);
    c->in_cb--;
    TAILQ_REMOVE(&c->all, x, all_link);
    xfer_free(x);
}

static void check_done(struct al_curl *c)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(c->multi, &left))) {
        struct al_curl_xfer *x = NULL;
        long status = 0;

        if (m->msg != CURLMSG_DONE)
            continue;
        (void) curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &x);
        (void) curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        CURLcode rc = m->data.result;
        int err = rc == CURLE_OK ? 0 : x->err ? x->err : al_curl_errno(rc);
        if (rc == CURLE_OK && x->is_sse && (status < 200 || status > 299))
            err = -EPROTO;
        if (err < 0)
            al_log(AL_DEBUG, "curl.xfer.failed", AL_U64("xfer", x->id), AL_ERR(err),
                   AL_STR("curl", curl_easy_strerror(rc)));
        xfer_detach(x);     /* invalidates m */
        xfer_finish(x, err, status);
    }
}

static void socket_action(struct al_curl *c, curl_socket_t fd, int ev_bitmask)
{
    int running;

    c->in_curl++;
    (void) curl_multi_socket_action(c->multi, fd, ev_bitmask, &running);
    c->in_curl--;
    check_done(c);
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    struct al_curl *c = arg;
    int mask = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

    socket_action(c, fd, mask);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    socket_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

static void sock_free(struct sock *s)
{
    LIST_REMOVE(s, link);
    if (s->ev)
        event_free(s->ev);
    free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks, or forget it. */
static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct al_curl *c = userp;
    struct sock *s = socketp;
    short kind = EV_PERSIST;

    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_free(s);
        return 0;
    }
    if (!s) {
        s = al_xcalloc(1, sizeof(*s));
        s->c = c;
        s->fd = fd;
        LIST_INSERT_HEAD(&c->socks, s, link);
        (void) curl_multi_assign(c->multi, fd, s);
    } else if (s->ev) {
        event_free(s->ev);
    }
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    s->ev = event_new(c->base, fd, kind, on_sock_event, c);
    if (!s->ev || event_add(s->ev, NULL) < 0)
        return -1;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer, else (re)arms it. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct al_curl *c = userp;
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };

    if (timeout_ms < 0)
        return evtimer_del(c->timer) < 0 ? -1 : 0;
    return evtimer_add(c->timer, &tv) < 0 ? -1 : 0;
}

/* Moves x from c->queued into the multi, or finishes it with an error. */
static void xfer_attach(struct al_curl_xfer *x)
{
    CURLMcode mc = curl_multi_add_handle(x->c->multi, x->easy);

    if (mc != CURLM_OK) {
        xfer_finish(x, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO, 0);   /* leaves c->queued */
        return;
    }
    TAILQ_REMOVE(&x->c->queued, x, q_link);
    x->attached = true;
    xfer_set_state(x, XFER_RUNNING);
}

/* The kick event: add what was queued from inside libcurl, drop cancelled
 * handles from the multi, then fire done for everything finished so far.
 * Transfers finished by those callbacks wait for the next pass. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct al_curl *c = arg;
    struct al_curl_xfer *x;

    while ((x = TAILQ_FIRST(&c->queued)))
        xfer_attach(x);
    for (x = TAILQ_FIRST(&c->finished); x; x = TAILQ_NEXT(x, q_link))
        xfer_detach(x);

    struct al_curl_xfer *last = TAILQ_LAST(&c->finished, al_curl_xfer_q);
    while ((x = TAILQ_FIRST(&c->finished))) {
        TAILQ_REMOVE(&c->finished, x, q_link);
        bool was_last = x == last;
        xfer_deliver(x);
        if (was_last)
            break;
    }
}

struct al_curl *al_curl_new(struct event_base *base)
{
    struct al_curl *c;

    if (al_curl_global_init() < 0)
        return NULL;
    c = al_xcalloc(1, sizeof(*c));
    c->base = base;
    TAILQ_INIT(&c->all);
    TAILQ_INIT(&c->queued);
    TAILQ_INIT(&c->finished);
    LIST_INIT(&c->socks);
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timer, c);
    c->kick = event_new(base, -1, 0, on_kick, c);
    if (!c->multi || !c->timer || !c->kick)
        return al_curl_free(c);
    (void) curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    (void) curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    (void) curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    (void) curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

struct al_curl *al_curl_free(struct al_curl *c)
{
    struct al_curl_xfer *x, *xnext;
    struct sock *s, *snext;

    if (!c)
        return NULL;
    assert(c->in_cb == 0 && c->in_curl == 0);
    /* While closing, done callbacks cannot start or cancel transfers, so
     * delivering x removes x from c->all and nothing else. */
    c->closing = true;
    for (x = TAILQ_FIRST(&c->all); x; x = xnext) {
        xnext = TAILQ_NEXT(x, all_link);
        xfer_detach(x);
        if (x->state == XFER_QUEUED || x->state == XFER_FINISHED)
            TAILQ_REMOVE(x->state == XFER_QUEUED ? &c->queued : &c->finished, x, q_link);
        x->err = -ECANCELED;
        x->status = 0;
        xfer_deliver(x);
    }
    if (c->multi)
        (void) curl_multi_cleanup(c->multi);   /* may still call sock_cb and timer_cb */
    for (s = LIST_FIRST(&c->socks); s; s = snext) {
        snext = LIST_NEXT(s, link);
        sock_free(s);
    }
    if (c->timer)
        event_free(c->timer);
    if (c->kick)
        event_free(c->kick);
    free(c);
    return NULL;
}

/* Between the reader and on_event: once x is cancelled (maybe by on_event
 * itself), the rest of the chunk is not delivered. */
static int sse_event(const char *name, const char *data, size_t len, void *ud)
{
    struct al_curl_xfer *x = ud;

    if (x->state != XFER_RUNNING)
        return -ECANCELED;
    return x->on_event(name, data, len, x->ud);
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct al_curl_xfer *x = ud;
    size_t n = size * nmemb;

    if (x->state != XFER_RUNNING)
        return 0;                       /* cancelled: make curl stop */
    if (x->is_sse) {
        long status = 0;
        (void) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299) {
            x->err = -EPROTO;           /* not a stream: no event from an error body */
            return 0;
        }
        int r = al_sse_reader_feed(&x->reader, p, n, sse_event, x);
        if (r < 0) {
            x->err = r;
            return 0;
        }
        return n;
    }
    if (x->on_body) {
        int r = x->on_body(p, n, x->ud);
        if (x->state != XFER_RUNNING)
            return 0;                   /* cancelled from on_body */
        if (r < 0) {
            x->err = r;
            return 0;
        }
        return n;
    }
    if (al_buf_append(&x->body, p, n) < 0) {
        x->err = -EMSGSIZE;
        return 0;
    }
    return n;
}

/* SSE only: the blank line that ends a 2xx response's headers means the
 * stream is established. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct al_curl_xfer *x = ud;
    size_t n = size * nmemb;
    long status = 0;

    if (x->state != XFER_RUNNING)
        return 0;
    bool blank = (n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n');

    if (x->on_header && !blank) {
        size_t len = n;
        while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
            len--;
        x->on_header(p, len, x->ud);
        if (x->state != XFER_RUNNING)
            return 0;
    }
    if (x->opened || !blank || !x->on_open)
        return n;
    (void) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status <= 299) {
        x->opened = true;
        x->on_open(status, x->ud);
    }
    return n;
}

static bool has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

/* Out of memory aborts, as everywhere in airlock (see al_xmalloc). */
static struct curl_slist *slist_add(struct curl_slist *l, const char *s)
{
    struct curl_slist *n = curl_slist_append(l, s);
    if (!n)
        abort();
    return n;
}

static int make_headers(const struct al_curl_req_opts *o, bool sse, struct curl_slist **ret)
{
    struct curl_slist *l = NULL;

    if (has_crlf(o->bearer) || has_crlf(o->content_type))
        return -EINVAL;
    for (const char *const *h = o->headers; h && *h; h++)
        if (has_crlf(*h) || !strchr(*h, ':'))
            return -EINVAL;
    if (o->bearer) {
        _cleanup_free_ char *auth = al_xasprintf("Authorization: Bearer %s", o->bearer);
        l = slist_add(l, auth);
        explicit_bzero(auth, strlen(auth));
    }
    if (o->content_type) {
        _cleanup_free_ char *ct = al_xasprintf("Content-Type: %s", o->content_type);
        l = slist_add(l, ct);
    } else {
        l = slist_add(l, "Content-Type:");   /* no form type on a bodiless POST */
    }
    if (sse) {
        l = slist_add(l, "Accept: text/event-stream");
        l = slist_add(l, "Cache-Control: no-cache");
    }
    l = slist_add(l, "Expect:");             /* no 100-continue round trip */
    for (const char *const *h = o->headers; h && *h; h++)
        l = slist_add(l, *h);
    *ret = l;
    return 0;
}

static void setopt_body(CURL *h, const struct al_curl_req_opts *o, const char *method)
{
    if (strcmp(method, "HEAD") == 0)
        (void) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        (void) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (o->body || strcmp(method, "POST") == 0) {
        (void) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (o->body ? o->body_len : 0));
        (void) curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, o->body ? o->body : "");
    }
}

static int setopt_all(struct al_curl_xfer *x, const struct al_curl_req_opts *o)
{
    CURL *h = x->easy;
    const char *method = o->method ? o->method : "GET";
    bool bad = false;

    setopt_body(h, o, method);
    bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_URL, o->url);
    bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_USERAGENT, "airlock");
    bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->hdr);
    bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_PRIVATE, (char *) x);
    if (o->cainfo)
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_CAINFO, o->cainfo);
    if (o->ca_pem) {
        struct curl_blob blob = { .data = (void *) o->ca_pem, .len = o->ca_pem_len, .flags = CURL_BLOB_COPY };
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    if (o->connect_to) {
        x->connect_to = slist_add(NULL, o->connect_to);
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_CONNECT_TO, x->connect_to);
    }
    if (o->on_body && !x->is_sse)
        x->on_body = o->on_body;
    if ((x->is_sse && o->on_open) || o->on_header) {
        x->on_open = x->is_sse ? o->on_open : NULL;
        x->on_header = o->on_header;
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    }
    if (x->is_sse && o->timeout_ms > 0) {
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms);
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (o->timeout_ms + 999) / 1000);
    } else if (o->timeout_ms > 0) {
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    }
    if (!x->is_sse)
        bad |= CURLE_OK != curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) x->body.max);
    return bad ? -EINVAL : 0;
}

/* Builds the transfer and hands it to the multi (or queues it when called
 * from inside libcurl). done/sse_done are set by the caller on success. */
static int xfer_start(struct al_curl *c, const struct al_curl_req_opts *o, bool sse, void *ud,
                      struct al_curl_xfer **ret)
{
    struct al_curl_xfer *x;
    int r;

    if (!c || !o || !o->url || (o->method && (!*o->method || has_crlf(o->method))) || has_crlf(o->connect_to) ||
        (o->ca_pem && !o->ca_pem_len))
        return -EINVAL;
    if (c->closing)
        return -ESHUTDOWN;
    x = al_xcalloc(1, sizeof(*x));
    x->c = c;
    x->id = ++c->next_id;
    x->is_sse = sse;
    x->ud = ud;
    x->body.max = o->max_response ? o->max_response : AL_CURL_DEFAULT_MAX_RESPONSE;
    if (sse)
        al_sse_reader_init(&x->reader);
    x->easy = curl_easy_init();
    if (!x->easy) {
        xfer_free(x);
        return -ENOMEM;
    }
    r = make_headers(o, sse, &x->hdr);
    if (r == 0)
        r = setopt_all(x, o);
    if (r < 0) {
        xfer_free(x);
        return r;
    }
    TAILQ_INSERT_TAIL(&c->all, x, all_link);
    x->state = XFER_QUEUED;
    TAILQ_INSERT_TAIL(&c->queued, x, q_link);
    if (c->in_curl)
        event_active(c->kick, EV_TIMEOUT, 0);   /* libcurl forbids adding from its callbacks */
    else
        xfer_attach(x);                     /* a failure here is reported through done */
    al_log(AL_DEBUG, "curl.xfer.start", AL_U64("xfer", x->id), AL_BOOL("sse", sse));
    *ret = x;
    return 0;
}

int al_curl_request(struct al_curl *c, const struct al_curl_req_opts *o, al_curl_done_cb done,
                    void *ud, struct al_curl_xfer **ret)
{
    struct al_curl_xfer *x;
    int r;

    if (!done)
        return -EINVAL;
    r = xfer_start(c, o, false, ud, &x);
    if (r < 0)
        return r;
    x->done = done;
    if (ret)
        *ret = x;
    return 0;
}

int al_curl_sse(struct al_curl *c, const struct al_curl_req_opts *o, al_sse_event_cb on_event,
                al_curl_sse_done_cb done, void *ud, struct al_curl_xfer **ret)
{
    struct al_curl_xfer *x;
    int r;

    if (!on_event || !done)
        return -EINVAL;
    r = xfer_start(c, o, true, ud, &x);
    if (r < 0)
        return r;
    x->on_event = on_event;
    x->sse_done = done;
    if (ret)
        *ret = x;
    return 0;
}

void al_curl_cancel(struct al_curl_xfer *x)
{
    if (!x || x->c->closing)
        return;
    al_log(AL_DEBUG, "curl.xfer.cancel", AL_U64("xfer", x->id));
    if (x->state == XFER_FINISHED) {
        x->err = -ECANCELED;                /* not delivered yet: cancel wins */
        x->status = 0;
        return;
    }
    /* The handle leaves the multi in the kick event: this may run inside a
     * libcurl callback (on_event), where removing it is not allowed. */
    xfer_finish(x, -ECANCELED, 0);
}
