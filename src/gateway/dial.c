/* SPDX-License-Identifier: Apache-2.0 */
/* Dialling a relay: asynchronous resolution (evdns), TCP to each address in
 * turn (IPv4 and IPv6 as resolved), directly or through the HTTP proxy of
 * HTTPS_PROXY/https_proxy with CONNECT (Basic auth from the URL), unless
 * NO_PROXY/no_proxy names the host. Hands back a connected socket; TLS is
 * the caller's. One loop thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "conn.h"

#define PROXY_HEAD_MAX 8192

enum dial_state { D_START, D_RESOLVE, D_CONNECT, D_PROXY, D_DONE };

struct gw_dial {
    struct event_base *base;
    struct evdns_base *dns;
    enum dial_state state;
    char *host, *port;                 /* the relay */
    char *phost, *pport, *pauth;       /* the proxy, when used; pauth = base64 "user:pass" */
    struct evutil_addrinfo *ai, *cur;
    struct evdns_getaddrinfo_request *req;
    struct bufferevent *bev;           /* plain, never closes fd */
    int fd;
    struct event *start_ev;
    gw_dial_done_fn done;
    void *ud;
};

int gw_split_hostport(const char *s, char **ret_host, char **ret_port)
{
    const char *colon;
    size_t hl;
    const char *h = s;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        h = s + 1;
        hl = (size_t) (close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t) (colon - s)))
            return -EINVAL;
        hl = (size_t) (colon - s);
    }
    int64_t port;
    if (hl == 0 || al_parse_i64(colon + 1, 1, 65535, &port) < 0)
        return -EINVAL;
    *ret_host = al_xstrndup(h, hl);
    *ret_port = al_xstrdup(colon + 1);
    return 0;
}

bool gw_no_proxy_match(const char *no_proxy, const char *host)
{
    size_t hl = strlen(host);

    if (!no_proxy)
        return false;
    for (const char *p = no_proxy; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        size_t n = (size_t) (e - p);
        const char *colon = memchr(p, ':', n);
        if (colon && !memchr(colon + 1, ':', (size_t) (e - colon - 1)) && p[0] != '[')
            n = (size_t) (colon - p);       /* "host:port": the port is ignored */
        if (n > 0 && p[0] == '.') {
            p++;
            n--;
        }
        if (n == 1 && p[0] == '*')
            return true;
        if (n > 0 && n <= hl && strncasecmp(host + hl - n, p, n) == 0 && (n == hl || host[hl - n - 1] == '.'))
            return true;
        p = e;
    }
    return false;
}

static char *b64_std(const unsigned char *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = al_xmalloc(4 * ((n + 2) / 3) + 1), *o = out;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned) in[i] << 16 | (i + 1 < n ? (unsigned) in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static void pct_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        unsigned v;
        if (p[0] == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1) {
            *o++ = (char) v;
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

/* "http://user:pass@host:port/" -> host, port (default 1080), Basic auth. */
static int parse_proxy(struct gw_dial *d, const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    _cleanup_free_ char *rest = al_xstrndup(p, strcspn(p, "/"));
    char *hp = rest, *at = strrchr(rest, '@');

    if (at) {
        *at = '\0';
        hp = at + 1;
        pct_decode(rest);
        d->pauth = b64_std((const unsigned char *) rest, strlen(rest));
        explicit_bzero(rest, strlen(rest));
    }
    if (gw_split_hostport(hp, &d->phost, &d->pport) == 0)
        return 0;
    if (!strchr(hp, ':') || hp[0] == '[') {
        const char *h = hp;
        size_t hl = strlen(hp);
        if (hp[0] == '[' && hl > 2 && hp[hl - 1] == ']') {
            h = hp + 1;
            hl -= 2;
        }
        d->phost = al_xstrndup(h, hl);
        d->pport = al_xstrdup("1080");
        return hl > 0 ? 0 : -EINVAL;
    }
    return -EINVAL;
}

static void dial_free(struct gw_dial *d)
{
    if (d->bev)
        bufferevent_free(d->bev);
    if (d->fd >= 0)
        (void) close(d->fd);
    if (d->ai)
        evutil_freeaddrinfo(d->ai);
    if (d->start_ev)
        event_free(d->start_ev);
    free(d->host);
    free(d->port);
    free(d->phost);
    free(d->pport);
    if (d->pauth)
        explicit_bzero(d->pauth, strlen(d->pauth));
    free(d->pauth);
    free(d);
}

static void dial_finish(struct gw_dial *d, enum gw_result res, int err)
{
    int fd = -1;

    if (res == GW_RES_OK) {
        fd = d->fd;
        d->fd = -1;
    }
    d->state = D_DONE;
    gw_dial_done_fn done = d->done;
    void *ud = d->ud;
    dial_free(d);
    if (done)
        done(fd, res, err, ud);
}

static void try_next(struct gw_dial *d);

static void proxy_on_read(struct bufferevent *bev, void *arg)
{
    struct gw_dial *d = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);

    if (end.pos < 0) {
        if (n >= PROXY_HEAD_MAX)
            dial_finish(d, GW_RES_PROXY, -EMSGSIZE);
        return;
    }
    char line[64] = "";
    size_t ll = AL_MIN(n, sizeof(line) - 1);
    (void) evbuffer_copyout(in, line, ll);
    line[ll] = '\0';
    int status = 0;
    if (sscanf(line, "HTTP/1.%*1[01] %3d", &status) != 1 || status != 200) {
        al_log(AL_WARN, "gw.proxy_refused", AL_STR("proxy", d->phost), AL_I64("status", status));
        dial_finish(d, GW_RES_PROXY, -ECONNREFUSED);
        return;
    }
    if ((size_t) end.pos + 4 != n) {
        dial_finish(d, GW_RES_PROXY, -EPROTO);   /* bytes before our ClientHello */
        return;
    }
    dial_finish(d, GW_RES_OK, 0);
}

static void on_connect_event(struct bufferevent *bev, short what, void *arg)
{
    struct gw_dial *d = arg;

    if (what & BEV_EVENT_CONNECTED) {
        if (!d->phost) {
            dial_finish(d, GW_RES_OK, 0);
            return;
        }
        d->state = D_PROXY;
        struct evbuffer *out = bufferevent_get_output(bev);
        bool v6 = strchr(d->host, ':') != NULL;
        evbuffer_add_printf(out, "CONNECT %s%s%s:%s HTTP/1.1\r\nHost: %s%s%s:%s\r\n", v6 ? "[" : "", d->host,
                            v6 ? "]" : "", d->port, v6 ? "[" : "", d->host, v6 ? "]" : "", d->port);
        if (d->pauth)
            evbuffer_add_printf(out, "Proxy-Authorization: Basic %s\r\n", d->pauth);
        evbuffer_add(out, "\r\n", 2);
        bufferevent_setcb(bev, proxy_on_read, NULL, on_connect_event, d);
        bufferevent_enable(bev, EV_READ);
        return;
    }
    if (d->state == D_PROXY) {
        dial_finish(d, GW_RES_PROXY, -ECONNRESET);
        return;
    }
    int err = evutil_socket_geterror(d->fd);
    al_log(AL_DEBUG, "gw.tcp_failed", AL_STR("host", d->phost ? d->phost : d->host), AL_ERR(err > 0 ? -err : -EIO));
    bufferevent_free(d->bev);
    d->bev = NULL;
    (void) close(d->fd);
    d->fd = -1;
    d->cur = d->cur->ai_next;
    try_next(d);
}

static void try_next(struct gw_dial *d)
{
    for (; d->cur; d->cur = d->cur->ai_next) {
        d->fd = socket(d->cur->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (d->fd < 0)
            continue;
        d->bev = bufferevent_socket_new(d->base, d->fd, 0);
        if (!d->bev) {
            (void) close(d->fd);
            d->fd = -1;
            continue;
        }
        bufferevent_setcb(d->bev, NULL, NULL, on_connect_event, d);
        d->state = D_CONNECT;
        if (bufferevent_socket_connect(d->bev, d->cur->ai_addr, (int) d->cur->ai_addrlen) == 0)
            return;
        bufferevent_free(d->bev);
        d->bev = NULL;
        (void) close(d->fd);
        d->fd = -1;
    }
    dial_finish(d, GW_RES_TCP, -ECONNREFUSED);
}

static void on_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
    struct gw_dial *d = arg;

    d->req = NULL;
    if (!d->done) {                 /* cancelled while resolving */
        if (ai)
            evutil_freeaddrinfo(ai);
        dial_free(d);
        return;
    }
    if (err || !ai) {
        al_log(AL_DEBUG, "gw.dns_failed", AL_STR("host", d->phost ? d->phost : d->host),
               AL_STR("why", evutil_gai_strerror(err)));
        dial_finish(d, GW_RES_DNS, -EHOSTUNREACH);
        return;
    }
    d->ai = d->cur = ai;
    try_next(d);
}

static void on_start(evutil_socket_t fd, short what, void *arg)
{
    struct gw_dial *d = arg;
    struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                     .ai_protocol = IPPROTO_TCP };
    const char *proxy = secure_getenv("HTTPS_PROXY");
    if (!proxy || !proxy[0])
        proxy = secure_getenv("https_proxy");
    const char *no_proxy = secure_getenv("NO_PROXY");
    if (!no_proxy || !no_proxy[0])
        no_proxy = secure_getenv("no_proxy");

    if (proxy && proxy[0] && !gw_no_proxy_match(no_proxy, d->host) && parse_proxy(d, proxy) < 0) {
        dial_finish(d, GW_RES_PROXY, -EINVAL);
        return;
    }
    d->state = D_RESOLVE;
    /* A numeric host resolves inside the call, and d may be gone then: the
     * request is NULL in that case and d is not touched again. */
    struct evdns_getaddrinfo_request *req = evdns_getaddrinfo(d->dns, d->phost ? d->phost : d->host,
                                                              d->phost ? d->pport : d->port, &hints, on_resolved, d);
    if (req)
        d->req = req;
}

struct gw_dial *gw_dial_start(struct event_base *base, struct evdns_base *dns, const char *host, const char *port,
                              gw_dial_done_fn done, void *ud)
{
    struct gw_dial *d = al_xcalloc(1, sizeof(*d));

    d->base = base;
    d->dns = dns;
    d->fd = -1;
    d->host = al_xstrdup(host);
    d->port = al_xstrdup(port);
    d->done = done;
    d->ud = ud;
    d->start_ev = event_new(base, -1, 0, on_start, d);
    if (!d->start_ev) {
        dial_free(d);
        return NULL;
    }
    event_active(d->start_ev, EV_TIMEOUT, 0);
    return d;
}

void gw_dial_cancel(struct gw_dial *d)
{
    if (!d)
        return;
    d->done = NULL;
    if (d->state == D_RESOLVE && d->req) {
        evdns_getaddrinfo_cancel(d->req);   /* on_resolved frees d */
        return;
    }
    dial_free(d);
}
