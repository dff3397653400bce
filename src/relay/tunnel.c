/* SPDX-License-Identifier: Apache-2.0 */
/* The relay's tunnel registry: tunnels known from verified gateway
 * connections, their hostnames, routing an SNI to a connection, and the
 * periodic refresh of each tunnel's state from the hub (§1). */
#include <jansson.h>
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/map.h"
#include "../lib/base/util.h"
#include "../lib/h2/h2.h"
#include "../lib/http/curl_ev.h"
#include "relay_internal.h"

struct relay_tunnel *relay_tunnel_get(struct relay *r, const char *id, const char *hostname)
{
    struct relay_tunnel *t = al_map_get(r->tunnels, id);

    if (t)
        return t;
    t = al_xcalloc(1, sizeof(*t));
    (void) snprintf(t->id, sizeof(t->id), "%s", id);
    (void) snprintf(t->hostname, sizeof(t->hostname), "%s", hostname);
    t->active_certificates = -1;
    (void) al_map_put(r->tunnels, t->id, t);
    (void) al_map_put(r->hostnames, t->hostname, t);
    al_log(AL_INFO, "tunnel.online", AL_STR("tunnel", t->id), AL_STR("hostname", t->hostname));
    return t;
}

void relay_tunnel_attach(struct relay_tunnel *t, struct relay_gw *g)
{
    g->tunnel = t;
    g->tprev = NULL;
    g->tnext = t->conns;
    if (t->conns)
        t->conns->tprev = g;
    t->conns = g;
    t->nconns++;
}

static void tunnel_free(struct relay *r, struct relay_tunnel *t)
{
    if (t->refresh)
        al_curl_cancel(t->refresh);    /* its done callback sees the tunnel gone by id */
    (void) al_map_remove(r->tunnels, t->id);
    (void) al_map_remove(r->hostnames, t->hostname);
    al_log(AL_INFO, "tunnel.offline", AL_STR("tunnel", t->id));
    free(t);
}

void relay_tunnel_detach(struct relay_gw *g)
{
    struct relay_tunnel *t = g->tunnel;

    if (!t)
        return;
    if (g->tprev)
        g->tprev->tnext = g->tnext;
    else
        t->conns = g->tnext;
    if (g->tnext)
        g->tnext->tprev = g->tprev;
    g->tunnel = NULL;
    if (--t->nconns == 0)
        tunnel_free(g->r, t);
}

struct relay_tunnel *relay_tunnel_by_sni(struct relay *r, const char *sni)
{
    /* "<route>.<hostname>": try each suffix after a dot, longest first. */
    for (const char *p = strchr(sni, '.'); p; p = strchr(p + 1, '.')) {
        struct relay_tunnel *t = al_map_get(r->hostnames, p + 1);
        if (t)
            return t;
    }
    return NULL;
}

struct relay_gw *relay_tunnel_pick(struct relay_tunnel *t)
{
    struct relay_gw *best = NULL;
    size_t best_n = 0;
    int64_t best_rtt = 0;

    for (struct relay_gw *g = t->conns; g; g = g->tnext) {
        if (g->state != RGW_OPEN || !g->h2 || al_h2_conn_is_draining(g->h2))
            continue;
        size_t n = al_h2_conn_streams(g->h2);
        int64_t rtt = al_h2_conn_rtt_us(g->h2);
        if (!best || n < best_n || (n == best_n && rtt >= 0 && (best_rtt < 0 || rtt < best_rtt))) {
            best = g;
            best_n = n;
            best_rtt = rtt;
        }
    }
    return best;
}

struct refresh_req {
    struct relay *r;
    char id[AL_TUNNEL_ID_MAX + 1];
};

static void on_refresh_done(int err, long status, const char *body, size_t len, void *ud)
{
    struct refresh_req *q = ud;
    struct relay *r = q->r;
    struct relay_tunnel *t = err == -ECANCELED ? NULL : al_map_get(r->tunnels, q->id);

    if (!t) {
        free(q);
        return;
    }
    t->refresh = NULL;
    json_t *js = err == 0 && status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    if (!js) {
        if (err == 0 && status == 404) {
            al_log(AL_WARN, "tunnel.gone", AL_STR("tunnel", t->id));
            for (struct relay_gw *g = t->conns, *n; g && al_map_get(r->tunnels, q->id); g = n) {
                n = g->tnext;
                relay_gw_close(g, -ENOENT);
            }
        } else {
            al_log(AL_DEBUG, "tunnel.refresh_failed", AL_STR("tunnel", t->id), AL_I64("status", status), AL_ERR(err));
        }
        free(q);
        return;
    }
    bool archived = json_is_string(json_object_get(js, "archived_at"));
    json_t *ac = json_object_get(js, "active_certificates");
    if (json_is_integer(ac)) {
        int64_t v = json_integer_value(ac);
        if (v != t->active_certificates)
            al_log(AL_INFO, "tunnel.certificates", AL_STR("tunnel", t->id), AL_I64("active", v));
        t->active_certificates = v;
    }
    json_decref(js);
    if (archived) {
        al_log(AL_INFO, "tunnel.archived", AL_STR("tunnel", t->id));
        /* Closing the last connection frees t: walk with care. */
        while (al_map_get(r->tunnels, q->id) && t->conns)
            relay_gw_close(t->conns, -ENOENT);
    }
    free(q);
}

static bool refresh_one(const char *key, void *value, void *ud)
{
    struct relay *r = ud;
    struct relay_tunnel *t = value;

    if (t->refresh)
        return false;
    struct refresh_req *q = al_xcalloc(1, sizeof(*q));
    q->r = r;
    (void) snprintf(q->id, sizeof(q->id), "%s", t->id);
    _cleanup_free_ char *url = al_xasprintf("%s/v1/tunnels/%s", r->cfg.hub, t->id);
    struct al_curl_req_opts o = { .url = url, .bearer = r->api_key, .timeout_ms = 10000,
                                  .cainfo = r->cfg.hub_cacert, .max_response = 1 << 20 };
    if (al_curl_request(r->curl, &o, on_refresh_done, q, &t->refresh) < 0) {
        t->refresh = NULL;
        free(q);
    }
    return false;
}

void relay_tunnels_refresh(struct relay *r)
{
    al_map_sweep(r->tunnels, refresh_one, r);
}

static bool free_one(const char *key, void *value, void *ud)
{
    free(value);
    return true;
}

void relay_tunnels_free(struct relay *r)
{
    if (r->tunnels)
        al_map_sweep(r->tunnels, free_one, NULL);
}
