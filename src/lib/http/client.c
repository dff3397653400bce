/* SPDX-License-Identifier: Apache-2.0 */
/* Blocking HTTP client on libcurl's easy interface, for the CLI's admin
 * verbs: one request at a time on the calling thread, no event loop. It is
 * not the daemons' client (curl multi on libevent). Bodies are capped; the
 * credential only ever goes into the Authorization header and is never
 * logged (CURLOPT_VERBOSE stays off). libcurl reads HTTPS_PROXY/NO_PROXY. */
#include <curl/curl.h>
#include <stdbool.h>
#include <string.h>

#include "../base/buf.h"
#include "../base/log.h"
#include "client.h"
#include "curl_util.h"
#include "sse.h"

#define AL_CLIENT_MAX_BODY   (64u << 20)   /* a response body beyond this is -EMSGSIZE */
#define AL_CLIENT_MAX_ERRBODY (1u << 20)   /* error body kept from a failed SSE request */
#define AL_CLIENT_SSE_IDLE_S 120L          /* no byte for this long: the stream is dead */

/* A response body, capped; too_big records that the cap cut it off. */
struct body {
    struct al_buf b;
    bool too_big;
};

static bool body_append(struct body *b, const char *p, size_t n)
{
    if (al_buf_append(&b->b, p, n) < 0) {
        b->too_big = true;
        return false;
    }
    return true;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return body_append(ud, p, n) ? n : 0;     /* 0 makes curl fail with CURLE_WRITE_ERROR */
}

static void slist_freep(struct curl_slist **l) { curl_slist_free_all(*l); }
static void easy_freep(CURL **h) { if (*h) curl_easy_cleanup(*h); }

/* Out of memory aborts, as everywhere in airlock (see al_xmalloc). */
static struct curl_slist *slist_add(struct curl_slist *l, const char *s)
{
    struct curl_slist *n = curl_slist_append(l, s);
    if (!n)
        abort();
    return n;
}

/* The headers every request carries; content_type and accept may be NULL. */
static struct curl_slist *make_headers(const struct al_client *c, const char *content_type,
                                       const char *accept)
{
    struct curl_slist *l = NULL;
    char line[512];

    if (c->credential && *c->credential) {
        _cleanup_free_ char *auth = al_xasprintf("Authorization: Bearer %s", c->credential);
        l = slist_add(l, auth);
        explicit_bzero(auth, strlen(auth));
    }
    l = slist_add(l, "anthropic-version: 2023-06-01");
    l = slist_add(l, "anthropic-beta: managed-agents-2026-04-01");
    snprintf(line, sizeof(line), "Accept: %s", accept ? accept : "application/json");
    l = slist_add(l, line);
    /* Without a body, remove the form content type curl adds to a POST. */
    snprintf(line, sizeof(line), "Content-Type:%s%s", content_type ? " " : "",
             content_type ? content_type : "");
    l = slist_add(l, line);
    l = slist_add(l, "Expect:");    /* no 100-continue round trip on uploads */
    return l;
}

/* A new easy handle for base_url + path, with the options all requests share. */
static int easy_new(const struct al_client *c, const char *path, CURL **ret)
{
    int r = al_curl_global_init();
    if (r < 0)
        return r;

    CURL *h = curl_easy_init();
    if (!h)
        return -ENOMEM;
    size_t bl = strlen(c->base_url);
    while (bl > 0 && c->base_url[bl - 1] == '/')
        bl--;
    _cleanup_free_ char *url = al_xasprintf("%.*s%s", (int) bl, c->base_url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "airlock-cli");
    if (c->timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    *ret = h;
    return 0;
}

static void response_fill(struct al_response *resp, CURL *h, struct body *b)
{
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body = b->b.data ? TAKE_PTR(b->b.data) : al_xstrdup("");
    resp->len = b->b.len;
    resp->json = resp->len ? json_loadb(resp->body, resp->len, JSON_DECODE_ANY, NULL) : NULL;
}

static int perform(const struct al_client *c, const char *method, const char *path,
                   const char *content_type, const void *data, size_t n, struct al_response *resp)
{
    _cleanup_(easy_freep) CURL *h = NULL;
    _cleanup_(slist_freep) struct curl_slist *hdr = NULL;
    struct body b = { .b = { .max = AL_CLIENT_MAX_BODY } };
    int r;

    *resp = (struct al_response){ 0 };
    r = easy_new(c, path, &h);
    if (r < 0)
        return r;
    hdr = make_headers(c, data ? content_type : NULL, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (data || strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, data ? data : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (data ? n : 0));
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (c->timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);

    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        al_buf_clear(&b.b);
        if (b.too_big)
            return al_log_errno(AL_DEBUG, -EMSGSIZE, "client.body_too_big", AL_STR("path", path));
        return al_log_errno(AL_DEBUG, al_curl_errno(rc), "client.request_failed",
                            AL_STR("path", path), AL_STR("curl", curl_easy_strerror(rc)));
    }
    response_fill(resp, h, &b);
    return 0;
}

int al_client_request(const struct al_client *c, const char *method, const char *path, json_t *body,
                      struct al_response *resp)
{
    _cleanup_free_ char *text = NULL;

    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text)
            return -ENOMEM;
    }
    return perform(c, method, path, "application/json", text, text ? strlen(text) : 0, resp);
}

int al_client_request_raw(const struct al_client *c, const char *method, const char *path,
                          const char *content_type, const void *data, size_t n, struct al_response *resp)
{
    return perform(c, method, path, content_type ? content_type : "application/octet-stream",
                   data ? data : "", n, resp);
}

void al_response_done(struct al_response *resp)
{
    if (!resp)
        return;
    free(resp->body);
    json_decref(resp->json);
    *resp = (struct al_response){ 0 };
}

/* State of one SSE request. Until the status is known to be 2xx, bytes go
 * to err (an error body); afterwards to the SSE reader. */
struct sse {
    CURL *h;
    struct al_sse_reader reader;
    struct body err;
    al_client_sse_cb cb;
    int (*on_open)(void *ud);
    void *ud;
    long status;
    bool opened;
    int stop;             /* a callback's negative value */
};

static int sse_on_event(const char *name, const char *data, size_t len, void *ud)
{
    struct sse *s = ud;
    return s->cb(name, data, len, s->ud);
}

static bool sse_is_ok(struct sse *s)
{
    if (!s->status)
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    return s->status >= 200 && s->status < 300;
}

/* Runs on_open at the blank line that ends a 2xx response's headers. */
static size_t sse_on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sse *s = ud;
    size_t n = size * nmemb;
    bool end = (n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n');

    if (s->opened || !end)
        return n;
    s->status = 0;
    if (!sse_is_ok(s))
        return n;
    s->opened = true;
    int r = s->on_open ? s->on_open(s->ud) : 0;
    if (r < 0) {
        s->stop = r;
        return 0;                          /* aborts the transfer */
    }
    return n;
}

static size_t sse_on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sse *s = ud;
    size_t n = size * nmemb;

    if (!sse_is_ok(s))
        return body_append(&s->err, p, n) ? n : 0;
    int r = al_sse_reader_feed(&s->reader, p, n, sse_on_event, s);
    if (r < 0) {
        s->stop = r;
        return 0;
    }
    return n;
}

static void sse_setup(struct sse *s, struct curl_slist *hdr)
{
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(s->h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(s->h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);   /* a proxy's 200 is not ours */
    curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, sse_on_header);
    curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, sse_on_body);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    /* No total timeout: a stream lives as long as the session. A silent
     * connection (no event, no keep-alive) is treated as dead instead. */
    curl_easy_setopt(s->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(s->h, CURLOPT_LOW_SPEED_TIME, AL_CLIENT_SSE_IDLE_S);
}

int al_client_sse_ex(const struct al_client *c, const char *path, int (*on_open)(void *ud),
                     al_client_sse_cb cb, void *ud, struct al_response *resp)
{
    _cleanup_(easy_freep) CURL *h = NULL;
    _cleanup_(slist_freep) struct curl_slist *hdr = NULL;
    struct sse s = { .cb = cb, .on_open = on_open, .ud = ud, .err = { .b = { .max = AL_CLIENT_MAX_ERRBODY } } };
    int r;

    if (resp)
        *resp = (struct al_response){ 0 };
    r = easy_new(c, path, &h);
    if (r < 0)
        return r;
    s.h = h;
    hdr = make_headers(c, NULL, "text/event-stream");
    al_sse_reader_init(&s.reader);
    sse_setup(&s, hdr);

    CURLcode rc = curl_easy_perform(h);
    al_sse_reader_done(&s.reader);
    if (s.stop < 0)
        r = s.stop;
    else if (rc != CURLE_OK && !s.err.too_big)
        r = al_log_errno(AL_DEBUG, al_curl_errno(rc), "client.sse_failed", AL_STR("path", path),
                         AL_STR("curl", curl_easy_strerror(rc)));
    else
        r = sse_is_ok(&s) ? 0 : -EPROTO;
    if (resp && (r == 0 || r == -EPROTO))
        response_fill(resp, h, &s.err);
    al_buf_clear(&s.err.b);
    return r;
}

int al_client_sse(const struct al_client *c, const char *path, al_client_sse_cb cb, void *ud)
{
    struct al_response resp;
    int r = al_client_sse_ex(c, path, NULL, cb, ud, &resp);
    al_response_done(&resp);
    return r;
}

char *al_client_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = al_xmalloc(strlen(s) * 3 + 1), *o = out;

    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *o++ = (char) *p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}
