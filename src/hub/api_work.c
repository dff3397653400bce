/* SPDX-License-Identifier: Apache-2.0 */
/* The work queue (spec §3): long-poll, ack, heartbeat leases, stop, stats.
 * State lives in the store; parked polls live here, one waiter per request,
 * woken by an enqueue in their environment or by their own deadline. */
#include <event2/event.h>
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/map.h"
#include "../lib/base/util.h"
#include "hub.h"

#define WORKERS_WINDOW_US (30LL * 1000000)
#define WORKERS_SEEN_MAX  100000   /* distinct worker ids remembered per environment */

/* Per environment: its parked polls, oldest first, and the worker ids seen
 * polling (for stats.workers_polling). Found by id in hub.queues, so a poll
 * or a wake never looks at another environment's waiters. */
struct env_queue {
    struct poll_waiter *head, *tail;
    struct al_map *workers;   /* Anthropic-Worker-ID -> int64_t * last poll (monotonic µs) */
};

struct poll_waiter {
    struct poll_waiter *next, *prev;
    struct hub *h;
    struct env_queue *q;
    struct al_req *r;
    int64_t reclaim_us;
    struct event *timer;
};

static struct env_queue *queue_of(struct hub *h, const char *env_id, bool create)
{
    if (!h->queues) {
        if (!create)
            return NULL;
        h->queues = al_map_new();
    }
    struct env_queue *q = al_map_get(h->queues, env_id);
    if (!q && create) {
        q = al_xcalloc(1, sizeof(*q));
        q->workers = al_map_new();
        al_map_put(h->queues, env_id, q);
    }
    return q;
}

static json_t *work_public(json_t *w)
{
    w = api_public(w);
    if (!json_object_get(w, "secret"))
        json_object_set_new(w, "secret", json_null());
    return w;
}

static char *now_str(void) { return now_rfc3339(); }

int work_enqueue(struct hub *h, const char *environment_id, json_t *session, json_t **ret_work)
{
    _cleanup_free_ char *id = al_id_new("work"), *now = now_str();
    json_t *data, *md;

    if (session) {
        data = json_pack("{s:s, s:O}", "type", "session", "id", json_object_get(session, "id"));
        md = json_deep_copy(json_object_get(session, "metadata"));
    } else {
        _cleanup_free_ char *hc = al_id_new("hc");
        data = json_pack("{s:s, s:s}", "type", "healthcheck", "id", hc);
        md = json_object();
    }
    json_t *w = json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:s, s:n, s:n, s:n, s:n, s:n, s:I, s:I}", "type", "work", "id",
                          id, "environment_id", environment_id, "data", data, "state", "queued", "metadata",
                          md ? md : json_object(), "created_at", now, "acknowledged_at", "started_at",
                          "latest_heartbeat_at", "stop_requested_at", "stopped_at", "_delivered_us", (json_int_t) 0,
                          "_lease_expires_us", (json_int_t) 0);
    int e = al_store_put(h->store, AL_KIND_WORK, id, 0, w);
    if (e < 0) {
        json_decref(w);
        return e;
    }
    *ret_work = w;
    return 0;
}

static void waiter_destroy(struct poll_waiter *w)
{
    w->h->nwaiters--;
    event_free(w->timer);
    free(w);
}

/* Unlinks w from anywhere in its queue and frees it. */
static void waiter_free(struct poll_waiter *w)
{
    struct env_queue *q = w->q;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    waiter_destroy(w);
}

/* Takes the oldest waiter off q; the caller frees it with waiter_destroy. */
static struct poll_waiter *queue_pop(struct env_queue *q)
{
    struct poll_waiter *w = q->head;
    if (!w)
        return NULL;
    q->head = w->next;
    if (q->head)
        q->head->prev = NULL;
    else
        q->tail = NULL;
    w->next = w->prev = NULL;
    return w;
}

static void record_worker(struct hub *h, const char *env_id, const char *worker_id)
{
    if (!worker_id || !*worker_id || strlen(worker_id) > 256)
        return;
    struct env_queue *q = queue_of(h, env_id, true);
    int64_t *last = al_map_get(q->workers, worker_id);
    if (!last) {
        if (al_map_size(q->workers) >= WORKERS_SEEN_MAX)
            return;   /* swept on the next tick */
        last = al_xmalloc(sizeof(*last));
        al_map_put(q->workers, worker_id, last);
    }
    *last = al_mono_us();
}

struct count_ctx {
    int64_t now, n;
};

static bool count_recent(const char *key, void *value, void *ud)
{
    struct count_ctx *c = ud;
    c->n += c->now - *(int64_t *) value <= WORKERS_WINDOW_US;
    return false;
}

int64_t workers_polling(struct hub *h, const char *environment_id)
{
    struct env_queue *q = queue_of(h, environment_id, false);
    struct count_ctx c = { .now = al_mono_us() };
    if (q)
        al_map_sweep(q->workers, count_recent, &c);
    return c.n;
}

static bool drop_stale_worker(const char *key, void *value, void *ud)
{
    if (*(int64_t *) ud - *(int64_t *) value <= WORKERS_WINDOW_US)
        return false;
    free(value);
    return true;
}

static bool drop_idle_queue(const char *key, void *value, void *ud)
{
    struct env_queue *q = value;
    al_map_sweep(q->workers, drop_stale_worker, ud);
    if (q->head || al_map_size(q->workers) > 0)
        return false;
    al_map_free(q->workers);
    free(q);
    return true;
}

/* Forgets worker ids not seen for the stats window, and environments with
 * nothing left to remember. */
static void queues_sweep(struct hub *h)
{
    int64_t now = al_mono_us();
    if (h->queues)
        al_map_sweep(h->queues, drop_idle_queue, &now);
}

static int deliver_locked(struct hub *h, const char *env_id, int64_t reclaim_us, json_t **ret)
{
    int64_t now = al_now_us();
    json_t *w = NULL;
    int e = al_store_work_next(h->store, env_id, now - reclaim_us, &w);
    if (e < 0)
        return e;
    json_object_set_new(w, "_delivered_us", json_integer(now));
    e = al_store_put(h->store, AL_KIND_WORK, json_string_value(json_object_get(w, "id")), 0, w);
    if (e < 0) {
        json_decref(w);
        return e;
    }
    json_t *data = json_object_get(w, "data");
    if (!strcmp(json_string_value(json_object_get(data, "type")) ?: "", "session")) {
        /* A fresh sessions token per delivery, carried in the secret. */
        char *tok = auth_issue_session_token(h, env_id, json_string_value(json_object_get(data, "id")),
                                             json_string_value(json_object_get(w, "id")));
        if (!tok) {
            json_decref(w);
            return -EIO;
        }
        json_t *payload = json_pack("{s:s, s:s}", "sessions_token", tok, "api_base_url", h->url);
        _cleanup_free_ char *text = json_dumps(payload, JSON_COMPACT);
        _cleanup_free_ char *secret = al_b64url_encode(text, strlen(text));
        explicit_bzero(tok, strlen(tok));
        explicit_bzero(text, strlen(text));
        free(tok);
        json_decref(payload);
        json_object_set_new(w, "secret", json_string(secret));
    }
    *ret = w;
    return 0;
}

/* Hands out the oldest deliverable item of env, or returns -ENOENT. The
 * delivery mark and the item's sessions token commit together. */
static int deliver(struct hub *h, const char *env_id, int64_t reclaim_us, json_t **ret)
{
    int e = hub_tx_begin(h);
    if (e < 0)
        return e;
    e = deliver_locked(h, env_id, reclaim_us, ret);
    if (e < 0) {
        (void) hub_tx_end(h, e);
        return e;
    }
    e = hub_tx_end(h, 0);
    if (e < 0) {
        json_decref(*ret);
        *ret = NULL;
    }
    return e;
}

static void reply_work(struct al_req *r, json_t *w)
{
    json_t *pub = work_public(w);
    al_reply_json(r, 200, pub);
}

static void waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct poll_waiter *w = arg;
    struct al_req *r = w->r;
    w->h->m.polls_empty++;
    r->on_close = NULL;
    waiter_free(w);
    al_reply_json(r, 200, NULL);
}

static void waiter_on_close(struct al_req *r)
{
    waiter_free(r->parked);
}

void work_wake(struct hub *h, const char *environment_id)
{
    struct env_queue *q = queue_of(h, environment_id, false);
    while (q && q->head) {
        json_t *item = NULL;
        int e = deliver(h, environment_id, q->head->reclaim_us, &item);
        if (e == -ENOENT)
            return;
        struct poll_waiter *w = queue_pop(q);
        struct al_req *r = w->r;
        r->on_close = NULL;
        waiter_destroy(w);
        if (e < 0) {
            api_store_error(r, e);
            continue;
        }
        h->m.polls_woken++;
        reply_work(r, item);
    }
}

static bool free_queue(const char *key, void *value, void *ud)
{
    struct env_queue *q = value;
    int64_t never = INT64_MAX;
    struct poll_waiter *w;
    while ((w = queue_pop(q))) {
        struct al_req *r = w->r;
        r->on_close = NULL;
        waiter_destroy(w);
        al_reply_json(r, 200, NULL);
    }
    al_map_sweep(q->workers, drop_stale_worker, &never);
    al_map_free(q->workers);
    free(q);
    return true;
}

void work_poll_waiters_free(struct hub *h)
{
    if (h->queues)
        al_map_sweep(h->queues, free_queue, NULL);
    h->queues = al_map_free(h->queues);
}

/* Expired leases return their items to the queue (the old holder's next
 * heartbeat gets 412); an item whose stop was requested just stops. */
void work_tick(struct hub *h)
{
    json_t *expired = json_array(), *w;
    size_t i;
    int64_t now = al_now_us();

    if (now - h->last_sweep_us >= 5000000) {
        h->last_sweep_us = now;
        queues_sweep(h);
    }

    if (al_store_work_expired(h->store, now, expired) < 0 || json_array_size(expired) == 0) {
        json_decref(expired);
        return;
    }
    if (hub_tx_begin(h) < 0) {
        json_decref(expired);
        return;
    }
    json_array_foreach(expired, i, w) {
        const char *id = json_string_value(json_object_get(w, "id"));
        bool stopping = !strcmp(json_string_value(json_object_get(w, "state")), "stopping");
        if (stopping) {
            _cleanup_free_ char *ts = now_str();
            json_object_set_new(w, "state", json_string("stopped"));
            json_object_set_new(w, "stopped_at", json_string(ts));
        } else {
            json_object_set_new(w, "state", json_string("queued"));
            json_object_set_new(w, "_last_heartbeat", json_null());
            json_object_set_new(w, "_delivered_us", json_integer(0));
        }
        json_object_set_new(w, "_lease_expires_us", json_integer(0));
        if (al_store_put(h->store, AL_KIND_WORK, id, 0, w) < 0)
            continue;   /* the commit below fails too; the next tick retries */
        h->m.leases_expired++;
        al_log(AL_INFO, "work.lease_expired", AL_STR("work", id), AL_STR("to", stopping ? "stopped" : "queued"));
    }
    if (hub_tx_end(h, 0) == 0)
        json_array_foreach(expired, i, w) work_wake(h, json_string_value(json_object_get(w, "environment_id")));
    json_decref(expired);
}

/* After a restart every holder gets one full TTL to heartbeat again: the
 * hub was away, not the workers, and their leases should not expire for
 * the downtime. */
void work_restart_grace(struct hub *h)
{
    json_t *items = json_array(), *w;
    size_t i;
    int64_t until = al_now_us() + h->cfg.lease_ttl_us;

    if (al_store_work_expired(h->store, until, items) == 0 && json_array_size(items) > 0 &&
        al_store_begin(h->store) == 0) {
        int e = 0;
        json_array_foreach(items, i, w) {
            if (e < 0 || !strcmp(json_string_value(json_object_get(w, "state")), "stopping"))
                continue;
            json_object_set_new(w, "_lease_expires_us", json_integer(until));
            e = al_store_put(h->store, AL_KIND_WORK, json_string_value(json_object_get(w, "id")), 0, w);
        }
        if (e == 0 && al_store_commit(h->store) == 0)
            al_log(AL_INFO, "work.leases_extended", AL_U64("items", json_array_size(items)));
        else if (e < 0)
            al_store_rollback(h->store);
    }
    json_decref(items);
}

static bool int_param(struct al_req *r, const char *name, int64_t min, int64_t max, int64_t def, int64_t *ret)
{
    const char *v = al_query_get(&r->query, name);
    *ret = def;
    if (!v)
        return true;
    if (al_parse_i64(v, min, INT64_MAX, ret) < 0) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_parameter", "%s: must be an integer >= %lld", name,
                       (long long) min);
        return false;
    }
    if (*ret > max)
        *ret = max;
    return true;
}

void h_work_poll(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    int64_t block_ms, reclaim_ms;
    json_t *env, *item = NULL;

    if (!auth_require_env(r, r->params[0], false, false) || !int_param(r, "block_ms", 0, 999, 0, &block_ms) ||
        !int_param(r, "reclaim_older_than_ms", 0, INT32_MAX, 5000, &reclaim_ms) || !(env = env_load(h, r, r->params[0])))
        return;
    json_decref(env);
    h->m.polls++;
    record_worker(h, r->params[0], al_req_header(r, "Anthropic-Worker-ID"));
    int e = deliver(h, r->params[0], reclaim_ms * 1000, &item);
    if (e == 0) {
        reply_work(r, item);
        return;
    }
    if (e != -ENOENT) {
        api_store_error(r, e);
        return;
    }
    if (block_ms == 0 || (int64_t) h->nwaiters >= h->cfg.max_poll_waiters) {
        h->m.polls_empty++;
        al_reply_json(r, 200, NULL);
        return;
    }
    struct poll_waiter *w = al_xcalloc(1, sizeof(*w));
    w->h = h;
    w->q = queue_of(h, r->params[0], true);
    w->r = r;
    w->reclaim_us = reclaim_ms * 1000;
    w->timer = evtimer_new(h->base, waiter_timeout, w);
    struct timeval tv = { block_ms / 1000, (block_ms % 1000) * 1000 };
    evtimer_add(w->timer, &tv);
    /* Oldest first: the longest waiter is served first. */
    w->prev = w->q->tail;
    if (w->q->tail)
        w->q->tail->next = w;
    else
        w->q->head = w;
    w->q->tail = w;
    h->nwaiters++;
    al_req_park(r, waiter_on_close, w);
}

/* Loads work item params[1] of environment params[0], or replies 404. */
static json_t *work_load(struct hub *h, struct al_req *r)
{
    json_t *w = NULL;
    int e = al_store_get(h->store, AL_KIND_WORK, r->params[1], 0, &w);
    if (e == 0 && strcmp(json_string_value(json_object_get(w, "environment_id")), r->params[0])) {
        json_decref(w);
        e = -ENOENT;
    }
    if (e == -ENOENT)
        api_not_found(r, "work");
    else if (e < 0)
        api_store_error(r, e);
    return e < 0 ? NULL : w;
}

/* Per-item calls take the environment key or the item's sessions token. */
static bool item_scope(struct al_req *r, json_t *w)
{
    struct principal *p = r->auth;
    if (p->kind == PRINCIPAL_SESSION_TOKEN) {
        const char *sid = json_string_value(json_object_get(json_object_get(w, "data"), "id"));
        if (!sid || strcmp(sid, p->session_id)) {
            api_not_found(r, "work");
            return false;
        }
    }
    return true;
}

static int save(struct hub *h, struct al_req *r, json_t *w)
{
    int e = al_store_put(h->store, AL_KIND_WORK, json_string_value(json_object_get(w, "id")), 0, w);
    if (e < 0)
        api_store_error(r, e);
    return e;
}

void h_work_ack(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *w;
    _cleanup_free_ char *now = NULL;
    if (!auth_require_env(r, r->params[0], false, true) || !(w = work_load(h, r)))
        return;
    if (!item_scope(r, w))
        goto out;
    const char *state = json_string_value(json_object_get(w, "state"));
    if (strcmp(state, "queued")) {
        al_reply_error_details(r, 409, "conflict_error", "work item is not queued",
                               json_pack("{s:s, s:s}", "error_code", "work_not_queued", "state", state), true);
        goto out;
    }
    now = now_str();
    json_object_set_new(w, "state", json_string("starting"));
    json_object_set_new(w, "acknowledged_at", json_string(now));
    json_object_set_new(w, "_delivered_us", json_integer(0));
    json_object_set_new(w, "_last_heartbeat", json_null());
    json_object_set_new(w, "_lease_expires_us", json_integer(al_now_us() + h->cfg.lease_ttl_us));
    if (save(h, r, w) == 0) {
        h->m.acks++;
        al_log(AL_INFO, "work.acked", AL_STR("work", r->params[1]));
        reply_work(r, json_incref(w));
    }
out:
    json_decref(w);
}

static json_t *heartbeat_state(json_t *w, bool extended, int64_t ttl_s)
{
    json_t *lh = json_object_get(w, "_last_heartbeat");
    return json_pack("{s:s, s:O, s:b, s:I}", "state", json_string_value(json_object_get(w, "state")),
                     "last_heartbeat", json_is_string(lh) ? lh : json_null(), "lease_extended", extended,
                     "ttl_seconds", (json_int_t) ttl_s);
}

void h_work_heartbeat(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *w;
    int64_t ttl_s;

    if (!auth_require_env(r, r->params[0], false, true) ||
        !int_param(r, "desired_ttl_seconds", 1, 600, h->cfg.lease_ttl_us / 1000000, &ttl_s) || !(w = work_load(h, r)))
        return;
    if (!item_scope(r, w))
        goto out;
    if (ttl_s < 10)
        ttl_s = 10;
    const char *expected = al_query_get(&r->query, "expected_last_heartbeat");
    const char *state = json_string_value(json_object_get(w, "state"));
    const char *last = json_string_value(json_object_get(w, "_last_heartbeat"));
    h->m.heartbeats++;

    if (!strcmp(state, "stopped") || !strcmp(state, "stopping")) {
        bool stopping = !strcmp(state, "stopping");
        json_t *hb = heartbeat_state(w, stopping, ttl_s);
        json_object_set_new(hb, "type", json_string("work_heartbeat"));
        json_object_set_new(hb, "last_heartbeat", json_string(last ? last : ""));
        al_reply_json(r, 200, hb);
        goto out;
    }
    bool match = expected && (!strcmp(expected, "NO_HEARTBEAT") ? last == NULL : last && !strcmp(expected, last));
    if (!strcmp(state, "queued") && (!expected || !strcmp(expected, "NO_HEARTBEAT"))) {
        al_reply_error_details(r, 409, "conflict_error", "work item has not been acknowledged",
                               json_pack("{s:s}", "error_code", "work_not_acknowledged"), true);
        goto out;
    }
    if (!strcmp(state, "queued") || (expected && !match)) {
        char msg[256];
        snprintf(msg, sizeof(msg), "Heartbeat precondition failed: expected %.80s, actual was %.80s",
                 expected ? expected : "NO_HEARTBEAT", last ? last : "NULL");
        h->m.heartbeat_412++;
        json_t *cs = heartbeat_state(w, false, ttl_s);
        al_log(AL_INFO, "work.heartbeat_precondition_failed", AL_STR("work", r->params[1]), AL_STR("state", state));
        al_reply_error_details(r, 412, "invalid_request_error", msg,
                               json_pack("{s:s, s:o}", "error_code", "heartbeat_precondition_failed", "current_state", cs),
                               false);
        goto out;
    }
    /* Each heartbeat stores a new, distinct timestamp: the lease token. */
    int64_t now = al_now_us();
    char ts[AL_RFC3339_MAX];
    al_rfc3339(now, ts);
    if (last && !strcmp(last, ts))
        al_rfc3339(now + 1, ts);
    json_object_set_new(w, "_last_heartbeat", json_string(ts));
    json_object_set_new(w, "latest_heartbeat_at", json_string(ts));
    json_object_set_new(w, "_lease_expires_us", json_integer(now + ttl_s * 1000000));
    if (!strcmp(state, "starting")) {
        json_object_set_new(w, "state", json_string("active"));
        json_object_set_new(w, "started_at", json_string(ts));
    }
    if (save(h, r, w) < 0)
        goto out;
    json_t *hb = heartbeat_state(w, true, ttl_s);
    json_object_set_new(hb, "type", json_string("work_heartbeat"));
    al_reply_json(r, 200, hb);
out:
    json_decref(w);
}

void h_work_stop(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *w = NULL, *body = NULL;
    _cleanup_free_ char *now = NULL;
    if (!auth_require_env(r, r->params[0], true, true) || al_req_json(r, &body) < 0)
        return;
    json_t *force = json_object_get(body, "force");
    if ((body && !json_is_object(body)) || (force && !json_is_boolean(force))) {
        api_bad_field(r, "force", "must be a boolean");
        goto out;
    }
    if (!(w = work_load(h, r)) || !item_scope(r, w))
        goto out;
    const char *state = json_string_value(json_object_get(w, "state"));
    if (!strcmp(state, "stopped")) {
        al_reply_error_details(r, 409, "conflict_error", "work item is already stopped",
                               json_pack("{s:s}", "error_code", "work_already_stopped"), true);
        goto out;
    }
    now = now_str();
    /* A graceful stop of an item nobody holds has nobody to wait for. */
    if (json_is_true(force) || !strcmp(state, "queued")) {
        json_object_set_new(w, "state", json_string("stopped"));
        json_object_set_new(w, "stopped_at", json_string(now));
        json_object_set_new(w, "_lease_expires_us", json_integer(0));
    } else if (strcmp(state, "stopping")) {
        json_object_set_new(w, "state", json_string("stopping"));
        json_object_set_new(w, "stop_requested_at", json_string(now));
    }
    if (save(h, r, w) == 0) {
        h->m.stops++;
        al_log(AL_INFO, "work.stop", AL_STR("work", r->params[1]), AL_BOOL("force", json_is_true(force)),
               AL_STR("state", json_string_value(json_object_get(w, "state"))));
        reply_work(r, json_incref(w));
    }
out:
    json_decref(w);
    json_decref(body);
}

void h_work_get(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *w;
    if (!auth_require_api_key(r) || !(w = work_load(h, r)))
        return;
    reply_work(r, w);
}

void h_work_update(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *w = NULL, *body = NULL;
    char why[256];
    if (!auth_require_api_key(r) || al_req_json(r, &body) < 0)
        return;
    json_t *md = json_object_get(body, "metadata");
    if (!json_is_object(body) || !md || json_object_size(body) != 1) {
        api_bad_field(r, "metadata", "is required and is the only field");
        goto out;
    }
    if (!json_metadata_valid(md, why, sizeof(why))) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_metadata", "%s", why);
        goto out;
    }
    if (!(w = work_load(h, r)))
        goto out;
    json_metadata_patch(json_object_get(w, "metadata"), md);
    if (json_object_size(json_object_get(w, "metadata")) > 16) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_metadata", "metadata may have at most 16 keys");
        goto out;
    }
    if (save(h, r, w) == 0)
        reply_work(r, json_incref(w));
out:
    json_decref(w);
    json_decref(body);
}

void h_work_list(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    struct al_list_query q = { .kind = AL_KIND_WORK, .include_archived = true, .desc = true };
    if (!auth_require_env(r, r->params[0], true, false) || !api_page_params(r, 20, 100, &q.limit, &q.after_seq))
        return;
    q.parent = r->params[0];
    api_reply_list(h, r, &q, work_public);
}

void h_work_stats(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *env;
    if (!auth_require_env(r, r->params[0], true, false) || !(env = env_load(h, r, r->params[0])))
        return;
    json_decref(env);
    /* depth: waiting to be claimed; pending: handed out by a poll within
     * the default reclaim window and not yet acked (spec §3.5). */
    struct al_work_stats st;
    int e = al_store_work_stats(h->store, r->params[0], al_now_us() - 5000000, &st);
    if (e < 0) {
        api_store_error(r, e);
        return;
    }
    char oldest[AL_RFC3339_MAX];
    json_t *out = json_pack("{s:s, s:I, s:I, s:o, s:I}", "type", "work_queue_stats", "depth", (json_int_t) st.depth,
                            "pending", (json_int_t) st.pending, "oldest_queued_at",
                            st.oldest_us ? json_string(al_rfc3339(st.oldest_us, oldest)) : json_null(),
                            "workers_polling", (json_int_t) workers_polling(h, r->params[0]));
    al_reply_json(r, 200, out);
}

void h_work_healthcheck(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *env, *w = NULL;
    if (!auth_require_api_key(r) || !(env = env_load(h, r, r->params[0])))
        return;
    json_decref(env);
    int e = work_enqueue(h, r->params[0], NULL, &w);
    if (e < 0) {
        api_store_error(r, e);
        return;
    }
    work_wake(h, r->params[0]);
    al_log(AL_INFO, "work.healthcheck", AL_STR("work", json_string_value(json_object_get(w, "id"))));
    reply_work(r, w);
}
