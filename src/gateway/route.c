/* SPDX-License-Identifier: Apache-2.0 */
/* --route NAME=URL: parsing and matching by the inner SNI
 * (stream_internal.h). Pure. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "stream_internal.h"

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char) s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

/* "http://host[:port][/path]" → host, port. */
static int parse_url(const char *url, char **host, uint16_t *port, char *why, size_t whylen)
{
    const char *p, *hb, *he, *pe;
    unsigned long v = 80;

    if (strncasecmp(url, "https://", 8) == 0) {
        (void) snprintf(why, whylen, "https upstreams are not supported yet; use http:// on the private network");
        return -EINVAL;
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        (void) snprintf(why, whylen, "the upstream must be an http:// URL");
        return -EINVAL;
    }
    p = url + 7;
    if (*p == '[') {
        hb = p + 1;
        he = strchr(hb, ']');
        if (!he)
            goto bad;
        p = he + 1;
    } else {
        hb = p;
        he = p + strcspn(p, ":/?#");
        p = he;
    }
    if (he == hb || (size_t) (he - hb) > 253)
        goto bad;
    if (*p == ':') {
        p++;
        pe = p + strcspn(p, "/?#");
        if (pe == p || pe - p > 5)
            goto bad;
        v = 0;
        for (const char *q = p; q < pe; q++) {
            if (*q < '0' || *q > '9')
                goto bad;
            v = v * 10 + (unsigned long) (*q - '0');
        }
        if (v == 0 || v > 65535)
            goto bad;
        p = pe;
    }
    if (*p != '\0' && *p != '/')
        goto bad;
    for (const char *q = hb; q < he; q++)
        if ((unsigned char) *q <= ' ' || *q == '@')
            goto bad;
    *host = al_xstrndup(hb, (size_t) (he - hb));
    *port = (uint16_t) v;
    return 0;
bad:
    (void) snprintf(why, whylen, "malformed upstream URL (http://host:port[/path])");
    return -EINVAL;
}

int gw_routes_parse(char *const *specs, struct gw_routes *out, char *why, size_t whylen)
{
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    while (specs && specs[n])
        n++;
    if (n == 0) {
        (void) snprintf(why, whylen, "no --route NAME=URL given");
        return -EINVAL;
    }
    out->v = al_xcalloc(n, sizeof(*out->v));
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(specs[i], '=');
        char sub[200] = "";
        struct gw_route *r = &out->v[i];
        if (!eq || !name_ok(specs[i], (size_t) (eq - specs[i]))) {
            (void) snprintf(why, whylen, "--route %.64s: expected NAME=URL with NAME of letters, digits, '-'", specs[i]);
            gw_routes_clear(out);
            return -EINVAL;
        }
        if (parse_url(eq + 1, &r->host, &r->port, sub, sizeof(sub)) < 0) {
            (void) snprintf(why, whylen, "--route %.*s: %s", (int) (eq - specs[i]), specs[i], sub);
            gw_routes_clear(out);
            return -EINVAL;
        }
        r->name = al_xstrndup(specs[i], (size_t) (eq - specs[i]));
        for (char *c = r->name; *c; c++)
            *c = (char) tolower((unsigned char) *c);
        r->url = al_xstrdup(eq + 1);
        out->n = i + 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(out->v[j].name, r->name) == 0) {
                (void) snprintf(why, whylen, "--route %s given twice", r->name);
                gw_routes_clear(out);
                return -EINVAL;
            }
    }
    return 0;
}

void gw_routes_clear(struct gw_routes *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].name);
        free(r->v[i].url);
        free(r->v[i].host);
    }
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

const struct gw_route *gw_route_match(const struct gw_routes *r, const char *sni,
                                      const char *tunnel_hostname, bool direct)
{
    if (!sni || !*sni)
        return r->n == 1 ? &r->v[0] : NULL;
    size_t label = strcspn(sni, ".");
    for (size_t i = 0; i < r->n; i++) {
        const char *name = r->v[i].name;
        size_t nl = strlen(name);
        if (strcmp(sni, name) == 0)
            return &r->v[i];
        if (label != nl || strncmp(sni, name, nl) != 0)
            continue;
        if (direct)
            return &r->v[i];
        if (tunnel_hostname && strcasecmp(sni + nl + 1, tunnel_hostname) == 0)
            return &r->v[i];
    }
    return NULL;
}
