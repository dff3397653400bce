/* SPDX-License-Identifier: Apache-2.0 */
/* Session events (spec §5): the durable log, its list with cursors and
 * filters, the send endpoint with per-type validation, and the SSE stream.
 * Events are appended inside the caller's transaction and published to
 * streams only after it commits, so a client never sees an event that a
 * crash could take back. */
#include <event2/event.h>
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "../lib/http/sse.h"
#include "hub.h"

#define STREAM_QUEUE_CAP (4u << 20)   /* bytes queued to a slow SSE client before it is dropped */

/* An open stream. Streams end while others are being walked (a slow
 * client, a terminated session), so ending only marks the record dead; the
 * reaper unlinks and frees dead records on the next loop pass. */
struct stream_sub {
    struct stream_sub *next;
    struct hub *h;
    struct al_req *r;          /* NULL once ended or closed by the client */
    char *session_id;
    bool dead;
};

int events_append(struct hub *h, const char *session_id, json_t *ev, json_t **ret_stored)
{
    _cleanup_free_ char *id = al_id_new("sevt"), *now = now_rfc3339();
    json_object_set_new(ev, "id", json_string(id));
    json_object_set_new(ev, "processed_at", json_string(now));
    int e = al_store_event_append(h->store, session_id, ev, NULL);
    if (e < 0) {
        json_decref(ev);
        return e;
    }
    h->m.events_appended++;
    if (!h->pending)
        h->pending = json_array();
    json_array_append_new(h->pending, json_pack("[s, o]", session_id, ev));
    if (ret_stored)
        *ret_stored = ev;
    return 0;
}

static void sub_end(struct stream_sub *s)
{
    if (s->dead)
        return;
    s->dead = true;
    s->h->nsubs--;
    if (s->r) {
        struct al_req *r = TAKE_PTR(s->r);
        r->on_close = NULL;
        al_reply_stream_end(r);
    }
    event_active(s->h->reap_ev, EV_TIMEOUT, 0);
}

static void reap(evutil_socket_t fd, short what, void *arg)
{
    struct hub *h = arg;
    struct stream_sub **pp = &h->subs;
    while (*pp) {
        struct stream_sub *s = *pp;
        if (!s->dead) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        free(s->session_id);
        free(s);
    }
}

void events_init(struct hub *h)
{
    h->reap_ev = event_new(h->base, -1, 0, reap, h);
}

void events_done(struct hub *h)
{
    for (struct stream_sub *s = h->subs; s; s = s->next)
        sub_end(s);
    if (h->reap_ev) {
        reap(-1, 0, h);
        event_free(h->reap_ev);
        h->reap_ev = NULL;
    }
}

static void sub_write(struct stream_sub *s, const char *frame, size_t n)
{
    if (s->dead)
        return;
    int e = al_reply_stream_write(s->r, frame, n, STREAM_QUEUE_CAP);
    if (e < 0) {
        s->h->m.sse_dropped++;
        al_log(AL_WARN, "stream.dropped", AL_STR("session", s->session_id), AL_ERR(e));
        sub_end(s);
        return;
    }
    s->h->m.sse_frames++;
}

static void publish(struct hub *h, const char *session_id, json_t *ev)
{
    _cleanup_free_ char *data = json_dumps(ev, JSON_COMPACT);
    const char *type = json_string_value(json_object_get(ev, "type"));
    size_t n;
    _cleanup_free_ char *frame = al_sse_frame(type, data, strlen(data), &n);

    for (struct stream_sub *s = h->subs; s; s = s->next)
        if (!strcmp(s->session_id, session_id))
            sub_write(s, frame, n);
}

void events_publish_pending(struct hub *h)
{
    json_t *p = h->pending, *v;
    size_t i;
    h->pending = NULL;
    json_array_foreach(p, i, v) {
        const char *sid = json_string_value(json_array_get(v, 0));
        json_t *ev = json_array_get(v, 1);
        publish(h, sid, ev);
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (!strcmp(type, "session.status_terminated") || !strcmp(type, "session.deleted"))
            events_close_streams(h, sid);
    }
    json_decref(p);
}

void events_discard(struct hub *h)
{
    json_decref(h->pending);
    h->pending = NULL;
}

void events_close_streams(struct hub *h, const char *session_id)
{
    for (struct stream_sub *s = h->subs; s; s = s->next)
        if (!strcmp(s->session_id, session_id))
            sub_end(s);
}

void streams_ping(struct hub *h)
{
    static const char ping[] = "event: ping\ndata: {}\n\n";
    for (struct stream_sub *s = h->subs; s; s = s->next)
        sub_write(s, ping, sizeof(ping) - 1);
}

/* The client went away; the server frees r after this returns. */
static void on_stream_close(struct al_req *r)
{
    struct stream_sub *s = r->parked;
    s->r = NULL;
    sub_end(s);
}

/* Loads the session the principal may read; replies 404 otherwise. */
static json_t *readable_session(struct hub *h, struct al_req *r)
{
    struct principal *p = r->auth;
    if (p->kind == PRINCIPAL_SESSION_TOKEN && strcmp(p->session_id, r->params[0])) {
        api_not_found(r, "session");
        return NULL;
    }
    json_t *s = session_load(h, r->params[0]);
    if (!s) {
        api_not_found(r, "session");
        return NULL;
    }
    if (!auth_require_session(r, r->params[0], json_string_value(json_object_get(s, "environment_id")))) {
        json_decref(s);
        return NULL;
    }
    return s;
}

void h_events_stream(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *s = readable_session(h, r);
    if (!s)
        return;
    bool ended = json_is_string(json_object_get(s, "archived_at")) ||
                 !strcmp(json_string_value(json_object_get(s, "status")) ?: "", "terminated");
    json_decref(s);
    if ((int64_t) h->nsubs >= h->cfg.max_streams) {
        al_req_add_header(r, "retry-after", "1");
        al_reply_error(r, 503, "overloaded_error", "too_many_streams", "too many open event streams; retry later");
        return;
    }
    al_reply_stream_start(r, "text/event-stream");
    if (ended) {
        al_reply_stream_end(r);
        return;
    }
    struct stream_sub *sub = al_xcalloc(1, sizeof(*sub));
    sub->h = h;
    sub->r = r;
    sub->session_id = al_xstrdup(r->params[0]);
    sub->next = h->subs;
    h->subs = sub;
    h->nsubs++;
    al_req_park(r, on_stream_close, sub);
    /* An initial comment flushes the headers through any proxy at once. */
    sub_write(sub, ": stream open\n\n", 15);
}

void h_events_list(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    struct al_event_query q = { .session_id = r->params[0] };
    const char *types[33] = { 0 };
    int64_t next;
    static const struct { const char *key; size_t off; } ranges[] = {
        { "created_at[gt]", offsetof(struct al_event_query, created_gt) },
        { "created_at[gte]", offsetof(struct al_event_query, created_gte) },
        { "created_at[lt]", offsetof(struct al_event_query, created_lt) },
        { "created_at[lte]", offsetof(struct al_event_query, created_lte) },
    };
    json_t *s;

    if (!api_page_params(r, 100, 1000, &q.limit, &q.after_seq))
        return;
    const char *order = al_query_get(&r->query, "order");
    if (order && strcmp(order, "asc") && strcmp(order, "desc")) {
        api_bad_field(r, "order", "must be asc or desc");
        return;
    }
    q.desc = order && !strcmp(order, "desc");
    size_t nt = al_query_get_all(&r->query, "types", types, 32);
    q.types = nt ? types : NULL;
    for (size_t i = 0; i < AL_ELEMENTSOF(ranges); i++) {
        const char *v = al_query_get(&r->query, ranges[i].key);
        if (v && al_rfc3339_parse(v, (int64_t *) ((char *) &q + ranges[i].off)) < 0) {
            api_bad_field(r, ranges[i].key, "must be an RFC 3339 date-time");
            return;
        }
    }
    if (!(s = readable_session(h, r)))
        return;
    json_decref(s);
    json_t *data = json_array();
    int e = al_store_event_list(h->store, &q, data, &next);
    if (e < 0) {
        json_decref(data);
        api_store_error(r, e);
        return;
    }
    al_reply_json(r, 200, api_page(data, next));
}

/* Normalises a stored result so that duplicates compare equal. */
static json_t *result_key(json_t *ev)
{
    json_t *c = json_object_get(ev, "content");
    json_t *ie = json_object_get(ev, "is_error");
    return json_pack("{s:O, s:b}", "content", c ? c : json_array(), "is_error", json_is_true(ie));
}

/* Checks a tool result or confirmation against the call it answers.
 * Returns 1 to store it, 0 when it is an identical duplicate (*dup set),
 * or -1 after replying with an error. */
static int check_answer(struct hub *h, struct al_req *r, json_t *session, json_t *ev, json_t **dup)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    bool custom = !strcmp(type, "user.custom_tool_result"), confirm = !strcmp(type, "user.tool_confirmation");
    const char *key = custom ? "custom_tool_use_id" : "tool_use_id";
    const char *id = json_string_value(json_object_get(ev, key));
    json_t *call = NULL, *prev = NULL;
    int ret = -1;

    if (al_store_event_by_id(h->store, r->params[0], id, &call) < 0) {
        al_reply_error(r, 400, "invalid_request_error", "tool_use_not_found", "%s: no such tool call in this session", key);
        goto out;
    }
    const char *ctype = json_string_value(json_object_get(call, "type"));
    const char *want = custom ? "agent.custom_tool_use" : "agent.tool_use";
    if (confirm && !strcmp(ctype, "agent.mcp_tool_use"))
        want = "agent.mcp_tool_use";
    if (strcmp(ctype, want)) {
        al_reply_error(r, 400, "invalid_request_error", "tool_use_type_mismatch", "%s refers to a %s event, not %s", key,
                       ctype, want);
        goto out;
    }
    if (confirm) {
        if (strcmp(json_string_value(json_object_get(call, "evaluated_permission")) ?: "", "ask")) {
            al_reply_error(r, 400, "invalid_request_error", "confirmation_not_required",
                           "tool call %s is not waiting for a confirmation", id);
            goto out;
        }
        if (al_store_event_by_tool_use(h->store, r->params[0], "user.tool_confirmation", id, &prev) == 0) {
            if (json_equal(json_object_get(prev, "result"), json_object_get(ev, "result"))) {
                *dup = TAKE_PTR(prev);
                ret = 0;
            } else
                al_reply_error(r, 400, "invalid_request_error", "already_confirmed",
                               "tool call %s was already answered with \"%s\"", id,
                               json_string_value(json_object_get(prev, "result")));
            goto out;
        }
        ret = 1;
        goto out;
    }
    if (!custom) {
        const char *env_id = json_string_value(json_object_get(session, "environment_id"));
        json_t *env = NULL;
        bool self_hosted = al_store_get(h->store, AL_KIND_ENVIRONMENT, env_id, 0, &env) == 0 &&
                           !strcmp(json_string_value(json_object_get(json_object_get(env, "config"), "type")) ?: "",
                                   "self_hosted");
        json_decref(env);
        if (!self_hosted) {
            al_reply_error(r, 400, "invalid_request_error", "not_self_hosted",
                           "user.tool_result is only valid on self_hosted environments");
            goto out;
        }
        if (al_store_event_by_tool_use(h->store, r->params[0], "agent.tool_result", id, &prev) == 0) {
            al_reply_error(r, 400, "invalid_request_error", "tool_use_resolved",
                           "tool call %s was already resolved by the server", id);
            goto out;
        }
    }
    if (al_store_event_by_tool_use(h->store, r->params[0], type, id, &prev) == 0) {
        json_t *a = result_key(prev), *b = result_key(ev);
        bool same = json_equal(a, b);
        json_decref(a);
        json_decref(b);
        if (same) {
            *dup = TAKE_PTR(prev);
            ret = 0;
        } else
            /* Never 409: the SDK would retry a conflict for a whole lease. */
            al_reply_error(r, 400, "invalid_request_error", "tool_result_conflict",
                           "tool call %s already has a different result", id);
        goto out;
    }
    ret = 1;
out:
    json_decref(prev);
    json_decref(call);
    return ret;
}

void h_events_send(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *body = NULL, *s = NULL, *events, *v, *out = json_array(), *work = NULL;
    char why[256];
    size_t i;
    bool user_message = false, wake_loop = false;

    if (al_req_json(r, &body) < 0)
        goto done;
    if (!events_body_valid(body, why, sizeof(why))) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_event", "%s", why);
        goto done;
    }
    events = json_object_get(body, "events");
    if (!(s = readable_session(h, r)))
        goto done;
    if (json_is_string(json_object_get(s, "archived_at")) || !strcmp(json_string_value(json_object_get(s, "status")), "terminated")) {
        al_reply_error(r, 400, "invalid_request_error", "session_terminated", "the session has ended");
        goto done;
    }
    struct principal *p = r->auth;
    json_array_foreach(events, i, v) {
        const char *t = json_string_value(json_object_get(v, "type"));
        /* Workers answer tool calls; only the API key speaks for the user. */
        if (p->kind != PRINCIPAL_API_KEY && strcmp(t, "user.tool_result") && strcmp(t, "user.custom_tool_result")) {
            al_reply_error(r, 403, "permission_error", "permission_denied",
                           "a worker credential may only send tool results");
            goto done;
        }
    }
    int e = hub_tx_begin(h);
    json_array_foreach(events, i, v) {
        if (e < 0)
            break;
        const char *t = json_string_value(json_object_get(v, "type"));
        json_t *dup = NULL, *stored = NULL;
        if (!strcmp(t, "user.tool_result") || !strcmp(t, "user.custom_tool_result") || !strcmp(t, "user.tool_confirmation")) {
            int c = check_answer(h, r, s, v, &dup);
            if (c < 0) {
                (void) hub_tx_end(h, -ECANCELED);   /* check_answer has replied */
                goto done;
            }
            if (c == 0) {
                json_array_append_new(out, dup);
                continue;
            }
        }
        json_t *ev = json_deep_copy(v);
        if (!strcmp(t, "user.tool_result") || !strcmp(t, "user.custom_tool_result")) {
            if (!json_object_get(ev, "is_error") || json_is_null(json_object_get(ev, "is_error")))
                json_object_set_new(ev, "is_error", json_false());
            if (!json_object_get(ev, "content"))
                json_object_set_new(ev, "content", json_array());
        }
        if (!strcmp(t, "user.tool_confirmation") && !json_object_get(ev, "deny_message"))
            json_object_set_new(ev, "deny_message", json_null());
        e = events_append(h, r->params[0], ev, &stored);
        if (e == 0)
            json_array_append(out, stored);
        user_message |= !strcmp(t, "user.message");
        wake_loop = true;
    }
    /* A user message makes the session running in the same transaction, so
     * a hub that dies before the loop runs resumes the turn on restart. */
    if (e == 0 && user_message)
        e = session_set_status(h, r->params[0], "running");
    /* A stopped session that receives a new message gets a new work item. */
    const char *env_id = json_string_value(json_object_get(s, "environment_id"));
    if (e == 0 && user_message && al_store_work_for_session(h->store, r->params[0], &work) == -ENOENT) {
        json_t *env = NULL;
        if (al_store_get(h->store, AL_KIND_ENVIRONMENT, env_id, 0, &env) == 0 &&
            !strcmp(json_string_value(json_object_get(json_object_get(env, "config"), "type")) ?: "", "self_hosted"))
            e = work_enqueue(h, env_id, s, &work);
        json_decref(env);
    }
    if (api_finish_tx(h, r, e) < 0)
        goto done;
    if (work)
        work_wake(h, env_id);
    if (wake_loop)
        loop_notify(h, r->params[0]);
    al_reply_json(r, 200, json_pack("{s:O}", "data", out));
done:
    json_decref(work);
    json_decref(out);
    json_decref(s);
    json_decref(body);
}
