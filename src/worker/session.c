/* SPDX-License-Identifier: Apache-2.0 */
/* One session's tool loop, as the SDK's SessionToolRunner (spec §5.4): open
 * the event stream, and once it is established list the whole history
 * ("reconcile") and run every call that is seen but unanswered; then follow
 * the stream. Tool calls of a session run one at a time, in event order:
 * every event goes through one task queue, and a task that runs a tool holds
 * the queue until its result is posted, as the SDK holds its stream. The
 * stream itself keeps being read meanwhile, so nothing backs up on the hub.
 * What happens to each event, and the calls themselves, is session_call.c.
 * Log lines use the SDK's own messages so that operators can search for
 * either. */
#include <errno.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "../lib/base/log.h"
#include "../lib/base/map.h"
#include "../lib/base/util.h"
#include "../lib/http/curl_ev.h"
#include "session-internal.h"

#define STREAM_BACKOFF_START_MS 500
#define STREAM_BACKOFF_CAP_MS   10000
#define SEND_RETRY_WINDOW_MS    (5 * 60000)
#define LIST_LIMIT              "1000"

static void connect_stream(struct wk_session *s);

/* --- tasks ---------------------------------------------------------------- */

static void push_task(struct wk_session *s, const char *kind, json_t *ev)
{
    json_array_append_new(s->tasks, json_pack("{s:s, s:O?}", "k", kind, "ev", ev));
    event_active(s->pump_ev, EV_TIMEOUT, 0);
}

static void on_pump(evutil_socket_t fd, short what, void *ud)
{
    wks_pump(ud);
}

/* --- reconcile ------------------------------------------------------------ */

static bool apply_held_verdicts(const char *key, void *value, void *ud)
{
    struct wk_session *s = ud;

    if (al_map_get(s->verdicts, key))
        push_task(s, "verdict", value);
    return false;
}

static void after_reconcile(struct wk_session *s, json_t *t)
{
    /* Held calls whose verdict is known (their tool_use fell outside the
     * listed window) are resolved now; then the idle clock is set from
     * whether the history ended a turn with nothing outstanding. */
    bool last_ended = json_is_true(json_object_get(t, "last_ended"));
    json_t *pending = json_object_get(t, "pending");
    size_t i;
    json_t *ev;
    size_t outstanding = 0;

    json_array_foreach(pending, i, ev) {
        const char *id = ev_str(ev, "id");
        if (!set_has(s->answered, id) && !wks_in_dead_thread(s, ev) && !al_map_get(s->awaiting, id))
            outstanding++;
    }
    if (last_ended && outstanding == 0)
        wks_idle_arm(s);
    else
        wks_idle_disarm(s);
}

static void reconciled(struct wk_session *s, bool ok)
{
    json_t *pending = json_array();
    bool last_ended = false;
    size_t i;
    json_t *ev;

    if (ok) {
        json_array_foreach(s->history, i, ev) {
            const char *t = ev_str(ev, "type");
            if (!t)
                continue;
            if (!strcmp(t, "agent.tool_use") || !strcmp(t, "agent.custom_tool_use")) {
                const char *id = ev_str(ev, "id");
                if (id) {
                    set_add(s->seen, id);
                    if (!set_has(s->answered, id))
                        json_array_append(pending, ev);
                }
            } else if (!strcmp(t, "user.tool_result")) {
                set_add(s->answered, ev_str(ev, "tool_use_id"));
            } else if (!strcmp(t, "user.custom_tool_result")) {
                set_add(s->answered, ev_str(ev, "custom_tool_use_id"));
            } else if (!strcmp(t, "user.tool_confirmation")) {
                const char *id = ev_str(ev, "tool_use_id");
                if (id && !set_has(s->answered, id))
                    al_map_put(s->verdicts, id, (void *) wks_verdict_of(ev));
            } else if (!strcmp(t, "session.thread_status_terminated")) {
                set_add(s->dead_threads, ev_str(ev, "session_thread_id"));
            }
            if (!wks_idle_neutral(ev))
                last_ended = wks_ends_turn(ev);
        }
        s->history_read = true;
        s->idle_may_be_stale = false;
        wks_release_dead_holds(s);
        json_t *unanswered = json_array();
        json_array_foreach(pending, i, ev) {
            if (!set_has(s->answered, ev_str(ev, "id")))
                json_array_append(unanswered, ev);
        }
        wks_idle_disarm(s);
        json_array_foreach(unanswered, i, ev)
            push_task(s, "wks_route", ev);
        al_map_sweep(s->awaiting, apply_held_verdicts, s);
        json_array_append_new(s->tasks, json_pack("{s:s, s:b, s:o}", "k", "reconciled", "last_ended", last_ended,
                                                  "pending", unanswered));
    } else {
        s->history_read = false;
        s->idle_may_be_stale = true;
        wks_release_dead_holds(s);
    }
    json_decref(pending);
    json_array_clear(s->history);
    /* The stream's events come after the history's. */
    json_array_foreach(s->buffered, i, ev)
        push_task(s, "stream", ev);
    json_array_clear(s->buffered);
    s->reconciling = false;
    event_active(s->pump_ev, EV_TIMEOUT, 0);
}

static void list_page(struct wk_session *s, const char *page);

static void on_list(const struct wk_resp *r, void *ud)
{
    struct wk_session *s = ud;

    s->list_call = NULL;
    if (r->err == 0 && r->status == 200 && json_is_array(json_object_get(r->json, "data"))) {
        json_array_extend(s->history, json_object_get(r->json, "data"));
        const char *next = ev_str(r->json, "next_page");
        if (next && *next) {
            list_page(s, next);
            return;
        }
        reconciled(s, true);
        return;
    }
    _cleanup_free_ char *why = wk_resp_describe(r);
    al_log(AL_WARN, "reconcile list failed", AL_STR("session_id", sid(s)), AL_STR("error", why));
    reconciled(s, false);
}

static void list_page(struct wk_session *s, const char *page)
{
    _cleanup_free_ char *url = NULL;

    if (page) {
        char *esc = curl_easy_escape(NULL, page, 0);
        url = wk_url(s->it->api_base, "/v1/sessions/%s/events?limit=" LIST_LIMIT "&page=%s", sid(s),
                     esc ? esc : "");
        curl_free(esc);
    } else {
        url = wk_url(s->it->api_base, "/v1/sessions/%s/events?limit=" LIST_LIMIT, sid(s));
    }
    struct wk_call_opts o = { .url = url, .bearer = s->it->cred, .helper = HELPER, .max_retries = -1 };
    s->list_call = wk_call(s->w, &o, on_list, s);
    if (!s->list_call) {
        struct wk_resp r = { .err = -EINVAL };
        on_list(&r, s);
    }
}

/* --- the stream ----------------------------------------------------------- */

/* The stream transfer's user data: it outlives a session freed at exit,
 * whose transfer's done fires only when the client is freed. */
struct stream_ref {
    struct wk_session *s;
};

static void on_stream_open(long status, void *ud)
{
    struct wk_session *s = ((struct stream_ref *) ud)->s;

    if (!s)
        return;

    al_log(AL_DEBUG, "event stream open", AL_STR("session_id", sid(s)));
    json_array_clear(s->history);
    list_page(s, NULL);
}

static bool needs_body(const char *name)
{
    static const char *const full[] = {
        "agent.tool_use", "agent.custom_tool_use", "user.tool_confirmation", "user.tool_result",
        "user.custom_tool_result", "session.status_idle", "session.thread_status_terminated",
    };

    for (size_t i = 0; i < AL_ELEMENTSOF(full); i++)
        if (!strcmp(name, full[i]))
            return true;
    /* Unknown names are parsed: the JSON type decides, as in the SDK. */
    return strncmp(name, "user.", 5) && strncmp(name, "agent.", 6) && strncmp(name, "span.", 5) &&
           strncmp(name, "session.", 8);
}

static int on_stream_event(const char *name, const char *data, size_t len, void *ud)
{
    struct wk_session *s = ((struct stream_ref *) ud)->s;
    json_t *ev;

    if (!s)
        return -ECANCELED;
    if (!name || !strcmp(name, "ping"))
        return 0;                        /* the SDK drops both */
    if (!strcmp(name, "error")) {
        al_log(AL_WARN, "event stream reported an error", AL_STR("session_id", sid(s)));
        return -EPROTO;
    }
    /* Only these events' contents matter here (§5.4); for the rest the type
     * is enough (the idle clock), so their bodies, a whole user turn or the
     * results this worker posted itself, are not parsed. The hub names each
     * frame after its event's type (§5.3). */
    if (!needs_body(name))
        ev = json_pack("{s:s}", "type", name);
    else
        ev = json_loadb(data, len, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        al_log(AL_WARN, "malformed event on the stream", AL_STR("session_id", sid(s)), AL_STR("sse_event", name));
        return -EBADMSG;
    }
    s->backoff_ms = STREAM_BACKOFF_START_MS;
    if (s->reconciling)
        json_array_append(s->buffered, ev);
    else
        push_task(s, "stream", ev);
    json_decref(ev);
    return 0;
}

static void on_stream_done(int err, long status, void *ud)
{
    struct stream_ref *ref = ud;
    struct wk_session *s = ref->s;
    json_t *t;

    free(ref);
    if (!s)
        return;
    s->stream = NULL;
    s->stream_ref = NULL;
    if (s->stopping) {
        wks_maybe_end(s);
        return;
    }
    /* The end is handled in order, after the events before it. */
    t = json_pack("{s:s, s:i, s:i}", "k", "ended", "err", err, "status", (int) status);
    if (s->reconciling) {
        wk_call_cancel(s->list_call);
        s->list_call = NULL;
        reconciled(s, false);
    }
    json_array_append_new(s->tasks, t);
    event_active(s->pump_ev, EV_TIMEOUT, 0);
}

static void on_reconnect(evutil_socket_t fd, short what, void *ud)
{
    connect_stream(ud);
}

static void stream_ended(struct wk_session *s, json_t *t)
{
    int err = (int) json_integer_value(json_object_get(t, "err"));
    long status = (long) json_integer_value(json_object_get(t, "status"));

    if (err == -EPROTO && wk_fatal_4xx(status)) {
        al_log(AL_ERROR, "permanent stream failure, shutting down", AL_STR("session_id", sid(s)),
               AL_I64("status", status));
        wk_session_stop(s, false);
        return;
    }
    const char *name = err < 0 ? al_errno_name(-err) : NULL;
    al_log(AL_WARN, "stream disconnected, reconnecting", AL_STR("session_id", sid(s)),
           AL_STR("error", err == 0 ? "stream ended" : (name ? name : "error")), AL_I64("status", status),
           AL_I64("backoff_ms", s->backoff_ms));
    struct timeval tv = { .tv_sec = s->backoff_ms / 1000, .tv_usec = (s->backoff_ms % 1000) * 1000 };
    evtimer_add(s->reconnect, &tv);
    s->backoff_ms = AL_MIN(s->backoff_ms * 2, STREAM_BACKOFF_CAP_MS);
}

static void connect_stream(struct wk_session *s)
{
    _cleanup_free_ char *url = wk_url(s->it->api_base, "/v1/sessions/%s/events/stream", sid(s));
    const char *hdrs[] = { "anthropic-version: 2026-10-21", "anthropic-beta: managed-agents-2026-04-01",
                           "x-stainless-helper: " HELPER, NULL };
    struct al_curl_req_opts o = {
        .url = url,
        .bearer = s->it->cred,
        .timeout_ms = 0,
        .headers = hdrs,
        .cainfo = s->w->cfg.cacert,
        .on_open = on_stream_open,
    };
    int r;

    s->reconciling = true;
    json_array_clear(s->buffered);
    s->stream_ref = al_xcalloc(1, sizeof(*s->stream_ref));
    s->stream_ref->s = s;
    r = al_curl_sse(s->w->curl, &o, on_stream_event, on_stream_done, s->stream_ref, &s->stream);
    if (r < 0) {
        s->stream = NULL;
        free(s->stream_ref);
        s->stream_ref = NULL;
        al_log_errno(AL_ERROR, r, "cannot open the event stream", AL_STR("session_id", sid(s)));
        wk_session_stop(s, false);
    }
}

/* --- the queue ------------------------------------------------------------ */

void wks_pump(struct wk_session *s)
{
    while (!s->busy && !s->stopping && json_array_size(s->tasks) > 0) {
        json_t *t = json_incref(json_array_get(s->tasks, 0));
        json_array_remove(s->tasks, 0);
        const char *k = ev_str(t, "k");
        json_t *ev = json_object_get(t, "ev");

        if (!strcmp(k, "stream"))
            (void) wks_handle_stream_event(s, ev);
        else if (!strcmp(k, "wks_route"))
            (void) wks_route(s, ev);
        else if (!strcmp(k, "verdict")) {
            const char *v = al_map_get(s->verdicts, ev_str(ev, "id"));
            if (v && al_map_get(s->awaiting, ev_str(ev, "id")))
                (void) wks_apply_verdict(s, ev, v);
        } else if (!strcmp(k, "reconciled"))
            after_reconcile(s, t);
        else if (!strcmp(k, "ended"))
            stream_ended(s, t);
        json_decref(t);
    }
}

/* --- life cycle ----------------------------------------------------------- */

struct wk_session *wk_session_start(struct wk_item *it)
{
    struct wk_session *s = al_xcalloc(1, sizeof(*s));
    struct event_base *base = it->w->base;

    s->it = it;
    s->w = it->w;
    s->buffered = json_array();
    s->history = json_array();
    s->tasks = json_array();
    s->seen = al_map_new();
    s->answered = al_map_new();
    s->verdicts = al_map_new();
    s->awaiting = al_map_new();
    s->dead_threads = al_map_new();
    s->blockers = al_map_new();
    s->pump_ev = event_new(base, -1, 0, on_pump, s);
    s->idle_timer = evtimer_new(base, wks_on_idle, s);
    s->reconnect = evtimer_new(base, on_reconnect, s);
    s->send_timer = evtimer_new(base, wks_on_send_timer, s);
    s->tool_timer = evtimer_new(base, wks_on_tool_timer, s);
    s->backoff_ms = STREAM_BACKOFF_START_MS;
    s->retry_window_ms = it->ttl_ms > 0 ? it->ttl_ms : SEND_RETRY_WINDOW_MS;
    al_log(AL_INFO, "session tool runner starting", AL_STR("component", "session-tool-runner"),
           AL_STR("session_id", it->session_id));
    connect_stream(s);
    return s;
}

void wk_session_set_retry_window(struct wk_session *s, int64_t ms)
{
    if (s)
        s->retry_window_ms = ms;
}

bool wk_session_ended(const struct wk_session *s)
{
    return s->ended;
}

bool wk_session_busy(const struct wk_session *s)
{
    return s && s->busy;
}

static void on_drain_timer(evutil_socket_t fd, short what, void *ud)
{
    struct wk_session *s = ud;

    al_log(AL_WARN, "drain timeout exceeded", AL_STR("session_id", sid(s)));
    s->cancel_sent = true;
    if (!s->busy)
        return;
    if (s->result) {                     /* posting, or waiting to retry */
        wk_call_cancel(s->send_call);
        s->send_call = NULL;
        evtimer_del(s->send_timer);
        wks_call_finished(s);
    } else if (s->it->runner) {
        wk_runner_cancel_current(s->it->runner);
        struct timeval tv = { TOOL_KILL_MS / 1000, 0 };
        evtimer_add(s->tool_timer, &tv);
    }
}

void wks_maybe_end(struct wk_session *s)
{
    if (s->ended || s->busy || s->stream)
        return;
    s->ended = true;
    wk_item_session_ended(s->it);
}

void wk_session_stop(struct wk_session *s, bool drain)
{
    if (!s)
        return;
    if (s->stopping) {
        if (!drain && s->drain && s->busy)
            on_drain_timer(-1, 0, s);    /* a harder stop cuts a drain short */
        s->drain = s->drain && drain;
        return;
    }
    s->stopping = true;
    s->drain = drain;
    wks_idle_disarm(s);
    evtimer_del(s->reconnect);
    wk_call_cancel(s->list_call);
    s->list_call = NULL;
    if (s->stream)
        al_curl_cancel(s->stream);       /* its done fires later and calls wks_maybe_end */
    if (s->busy) {
        if (drain && s->result && !s->send_call) {
            evtimer_del(s->send_timer);  /* waiting to retry: try now */
            wks_send_result(s);
        }
        if (drain) {
            int64_t us = s->w->cfg.drain_us;
            struct timeval tv = { .tv_sec = us / 1000000, .tv_usec = us % 1000000 };
            s->drain_timer = evtimer_new(s->w->base, on_drain_timer, s);
            evtimer_add(s->drain_timer, &tv);
        } else if (s->send_call) {
            wk_call_cancel(s->send_call);
            s->send_call = NULL;
            wks_call_finished(s);
        } else if (s->result) {
            evtimer_del(s->send_timer);  /* waiting to retry a send */
            wks_call_finished(s);
        } else if (s->it->runner) {
            /* The runner answers a cancel at once; one that does not is
             * killed TOOL_KILL_MS later (wks_on_tool_timer). */
            s->cancel_sent = true;
            wk_runner_cancel_current(s->it->runner);
            struct timeval tv = { TOOL_KILL_MS / 1000, 0 };
            evtimer_add(s->tool_timer, &tv);
        }
    }
    wks_maybe_end(s);
}

static bool free_json_value(const char *key, void *value, void *ud)
{
    json_decref(value);
    return true;
}

void wk_session_free(struct wk_session *s)
{
    if (!s)
        return;
    wk_call_cancel(s->list_call);
    wk_call_cancel(s->send_call);
    if (s->stream)
        al_curl_cancel(s->stream);
    if (s->stream_ref)
        s->stream_ref->s = NULL;         /* the transfer's done frees it */
    json_decref(s->buffered);
    json_decref(s->history);
    json_decref(s->tasks);
    json_decref(s->cur);
    json_decref(s->result);
    al_map_sweep(s->awaiting, free_json_value, NULL);
    al_map_free(s->seen);
    al_map_free(s->answered);
    al_map_free(s->verdicts);
    al_map_free(s->awaiting);
    al_map_free(s->dead_threads);
    al_map_free(s->blockers);
    event_free(s->pump_ev);
    event_free(s->idle_timer);
    event_free(s->reconnect);
    event_free(s->send_timer);
    event_free(s->tool_timer);
    if (s->drain_timer)
        event_free(s->drain_timer);
    free(s);
}
