/* SPDX-License-Identifier: Apache-2.0 */
/* One session's calls (spec §5.4, §5.6, §8.4): the idle clock, confirmation
 * gating (fails closed: only an explicit allow releases an "ask" call, and a
 * server-side deny wins), terminated threads, running a call in the
 * session's runner, and posting its result with retries inside the lease
 * TTL. The task queue that feeds it is in session.c. */
#include <errno.h>
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "session-internal.h"

#define SEND_BACKOFF_START_MS   1000
#define SEND_BACKOFF_CAP_MS     30000

static const char *const builtin_tools[] = { "bash", "read", "write", "edit", "glob", "grep" };

/* --- idle clock ---------------------------------------------------------- */

bool wks_ends_turn(const json_t *ev)
{
    const char *t = ev_str(ev, "type");
    if (!t || strcmp(t, "session.status_idle") != 0)
        return false;
    const char *r = json_string_value(json_object_get(json_object_get(ev, "stop_reason"), "type"));
    return !r || strcmp(r, "requires_action") != 0;
}

bool wks_idle_neutral(const json_t *ev)
{
    const char *t = ev_str(ev, "type");
    return t && (!strcmp(t, "user.tool_confirmation") || !strcmp(t, "session.thread_status_terminated"));
}

void wks_idle_disarm(struct wk_session *s)
{
    s->arm_pending = false;
    if (s->idle_armed) {
        evtimer_del(s->idle_timer);
        s->idle_armed = false;
    }
}

void wks_idle_arm(struct wk_session *s)
{
    int64_t ms = s->w->cfg.max_idle_us / 1000;

    if (ms <= 0)
        return;
    if (al_map_size(s->blockers) > 0) {
        s->arm_pending = true;
        return;
    }
    s->arm_pending = false;
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    evtimer_add(s->idle_timer, &tv);
    s->idle_armed = true;
}

static void idle_note_event(struct wk_session *s, const json_t *ev)
{
    const char *t = ev_str(ev, "type");

    if (s->idle_may_be_stale && t && !strcmp(t, "session.thread_status_terminated"))
        wks_idle_disarm(s);
    if (wks_idle_neutral(ev))
        return;
    s->idle_may_be_stale = false;
    if (wks_ends_turn(ev))
        wks_idle_arm(s);
    else
        wks_idle_disarm(s);
}

static void idle_block(struct wk_session *s, const char *id)
{
    set_add(s->blockers, id);
    if (s->idle_armed) {
        s->arm_pending = true;
        evtimer_del(s->idle_timer);
        s->idle_armed = false;
    }
}

static void idle_unblock(struct wk_session *s, const char *id)
{
    al_map_remove(s->blockers, id);
    if (al_map_size(s->blockers) == 0 && s->arm_pending)
        wks_idle_arm(s);
}

static void idle_abandon(struct wk_session *s, const char *id)
{
    if (s->idle_may_be_stale)
        wks_idle_disarm(s);
    idle_unblock(s, id);
}

void wks_on_idle(evutil_socket_t fd, short what, void *ud)
{
    struct wk_session *s = ud;

    s->idle_armed = false;
    al_log(AL_INFO, "session idle after its turn ended; stopping", AL_STR("component", "session-tool-runner"),
           AL_STR("session_id", sid(s)), AL_I64("max_idle_ms", s->w->cfg.max_idle_us / 1000));
    wk_session_stop(s, false);
}

/* --- terminated threads and confirmations --------------------------------- */

bool wks_in_dead_thread(const struct wk_session *s, const json_t *ev)
{
    const char *th = ev_str(ev, "session_thread_id");
    return th && *th && set_has(s->dead_threads, th);
}

struct release_ctx {
    struct wk_session *s;
};

static bool release_dead(const char *key, void *value, void *ud)
{
    struct wk_session *s = ud;
    json_t *held = value;

    if (!wks_in_dead_thread(s, held))
        return false;
    al_log(AL_INFO, "session thread terminated; not executing", AL_STR("component", "session-tool-runner"),
           AL_STR("session_id", sid(s)), AL_STR("session_thread_id", ev_str(held, "session_thread_id")),
           AL_STR("tool", ev_str(held, "name")), AL_STR("tool_use_id", key));
    idle_abandon(s, key);
    json_decref(held);
    return true;
}

void wks_release_dead_holds(struct wk_session *s)
{
    al_map_sweep(s->awaiting, release_dead, s);
}

/* --- executing one call --------------------------------------------------- */

static bool is_builtin(const char *name)
{
    for (size_t i = 0; name && i < AL_ELEMENTSOF(builtin_tools); i++)
        if (!strcmp(name, builtin_tools[i]))
            return true;
    return false;
}

void wks_call_finished(struct wk_session *s)
{
    const char *id = ev_str(s->cur, "id");

    if (s->cur_allow && id)
        idle_unblock(s, id);
    if (s->tool_timer)
        evtimer_del(s->tool_timer);
    json_decref(s->cur);
    json_decref(s->result);
    s->cur = s->result = NULL;
    s->cur_allow = false;
    s->cancel_sent = false;
    s->busy = false;
    if (s->stopping)
        wks_maybe_end(s);
    else
        wks_pump(s);
}

void wks_on_send_timer(evutil_socket_t fd, short what, void *ud)
{
    wks_send_result(ud);
}

static void on_sent(const struct wk_resp *r, void *ud)
{
    struct wk_session *s = ud;
    const char *id = ev_str(s->cur, "id");

    s->send_call = NULL;
    if (r->err == 0 && r->status >= 200 && r->status < 300) {
        set_add(s->answered, id);
        s->w->results_posted++;
        wks_call_finished(s);
        return;
    }
    _cleanup_free_ char *why = wk_resp_describe(r);
    int64_t remaining = s->retry_window_ms - (al_mono_us() - s->send_start_us) / 1000;
    /* While draining, retries go on (the drain's deadline ends them) but
     * no wait is longer than a second. */
    bool may_retry = !s->stopping || (s->drain && !s->cancel_sent);
    if (may_retry && !(r->err == 0 && wk_fatal_4xx(r->status)) && remaining > 0) {
        int64_t wait = AL_MIN(wk_backoff_ms(s->send_attempt - 1, SEND_BACKOFF_START_MS, SEND_BACKOFF_CAP_MS),
                              remaining);
        if (s->stopping)
            wait = AL_MIN(wait, 1000);
        al_log(AL_WARN, "tool result send failed; retrying", AL_STR("tool_use_id", id),
               AL_I64("attempt", s->send_attempt), AL_I64("backoff_ms", wait), AL_STR("error", why));
        struct timeval tv = { .tv_sec = wait / 1000, .tv_usec = (wait % 1000) * 1000 };
        evtimer_add(s->send_timer, &tv);
        return;
    }
    al_log(AL_ERROR, "failed to send tool result", AL_STR("tool_use_id", id), AL_I64("attempts", s->send_attempt),
           AL_STR("error", why));
    wks_call_finished(s);
}

void wks_send_result(struct wk_session *s)
{
    _cleanup_free_ char *url = wk_url(s->it->api_base, "/v1/sessions/%s/events", sid(s));
    json_t *body = json_pack("{s:[O]}", "events", s->result);

    s->send_attempt++;
    struct wk_call_opts o = { .method = "POST", .url = url, .bearer = s->it->cred, .body = body,
                              .helper = HELPER, .max_retries = -1, .no_parse = true };
    s->send_call = wk_call(s->w, &o, on_sent, s);
    json_decref(body);
    if (!s->send_call) {
        struct wk_resp r = { .err = -EINVAL };
        on_sent(&r, s);
    }
}

static void on_tool_reply(const struct wk_runner_reply *rep, void *ud)
{
    struct wk_session *s = ud;
    const char *type = ev_str(s->cur, "type");
    bool custom = type && !strcmp(type, "agent.custom_tool_use");
    bool is_error;
    json_t *text;

    if (rep->err == -ECANCELED && s->stopping) {
        wks_call_finished(s);                /* the item is going away: nothing to post */
        return;
    }
    if (rep->err < 0) {
        is_error = true;
        text = json_string("Error: the tool runner exited unexpectedly");
        /* The session gets a fresh runner on its next call. */
        struct wk_runner *dead = s->it->runner;
        s->it->runner = NULL;
        wk_runner_close(dead);
    } else {
        is_error = rep->is_error;
        text = rep->len > 0 ? json_stringn(rep->text, rep->len) : json_string("(no output)");
        if (!text)
            text = json_string("Error: the tool produced a result that is not valid UTF-8");
    }
    s->w->tools_run++;
    if (s->stopping && (!s->drain || s->cancel_sent)) {
        /* Aborted by the runner's end, as the SDK's abort signal: no post. */
        json_decref(text);
        wks_call_finished(s);
        return;
    }
    s->result = json_pack("{s:s, s:s, s:b, s:[{s:s, s:o}]}", "type", custom ? "user.custom_tool_result" : "user.tool_result",
                          custom ? "custom_tool_use_id" : "tool_use_id", ev_str(s->cur, "id"), "is_error", is_error,
                          "content", "type", "text", "text", text);
    s->send_attempt = 0;
    s->send_start_us = al_mono_us();
    wks_send_result(s);
}

void wks_on_tool_timer(evutil_socket_t fd, short what, void *ud)
{
    struct wk_session *s = ud;

    if (!s->it->runner)
        return;
    if (!s->cancel_sent) {
        s->cancel_sent = true;
        wk_runner_cancel_current(s->it->runner);
        struct timeval tv = { TOOL_KILL_MS / 1000, 0 };
        evtimer_add(s->tool_timer, &tv);
        return;
    }
    al_log(AL_ERROR, "tool runner did not answer a cancelled call; killing it", AL_STR("session_id", sid(s)));
    struct wk_runner *stuck = s->it->runner;
    s->it->runner = NULL;
    wk_runner_close(stuck);             /* the pending reply fires with -ECANCELED */
}

/* Runs ev (already routed and allowed). Returns true when it holds the queue. */
static bool execute(struct wk_session *s, json_t *ev, bool allow)
{
    const char *id = ev_str(ev, "id");
    const char *name = ev_str(ev, "name");

    if (set_has(s->answered, id))
        return false;
    al_log(AL_INFO, "executing tool", AL_STR("component", "session-tool-runner"), AL_STR("session_id", sid(s)),
           AL_STR("tool", name), AL_STR("tool_use_id", id));
    if (!is_builtin(name)) {
        al_log(AL_INFO, "tool not owned by this runner; leaving the tool_use_id pending for its owner",
               AL_STR("component", "session-tool-runner"), AL_STR("session_id", sid(s)), AL_STR("tool", name),
               AL_STR("tool_use_id", id));
        if (allow)
            wks_idle_disarm(s);
        return false;
    }
    if (!s->it->runner) {
        s->it->runner = wk_runner_start(s->w, sid(s), s->it->workdir, s->it->outputs, s->it->tmpdir);
    }
    s->cur = json_incref(ev);
    s->cur_allow = allow;
    s->busy = true;
    struct timeval tv = { TOOL_TIMEOUT_MS / 1000, 0 };
    evtimer_add(s->tool_timer, &tv);
    if (!s->it->runner) {
        struct wk_runner_reply rep = { .err = -ECHILD };
        on_tool_reply(&rep, s);
        return true;
    }
    json_t *input = json_object_get(ev, "input");
    wk_runner_tool(s->it->runner, name, json_is_object(input) ? input : NULL, on_tool_reply, s);
    return true;
}

bool wks_apply_verdict(struct wk_session *s, json_t *ev, const char *verdict)
{
    const char *id = ev_str(ev, "id");
    json_t *held = al_map_remove(s->awaiting, id);
    bool was_held = held != NULL;

    json_decref(held);
    if (verdict && !strcmp(verdict, "allow")) {
        al_log(AL_INFO, "tool call confirmed", AL_STR("component", "session-tool-runner"),
               AL_STR("session_id", sid(s)), AL_STR("tool", ev_str(ev, "name")), AL_STR("tool_use_id", id));
        if (!was_held)
            idle_block(s, id);
        if (execute(s, ev, true))
            return true;
        idle_unblock(s, id);
        return false;
    }
    if (was_held)
        idle_unblock(s, id);
    set_add(s->answered, id);
    al_log(AL_INFO, "tool call denied; not executing", AL_STR("component", "session-tool-runner"),
           AL_STR("session_id", sid(s)), AL_STR("tool", ev_str(ev, "name")), AL_STR("tool_use_id", id));
    return false;
}

bool wks_route(struct wk_session *s, json_t *ev)
{
    const char *id = ev_str(ev, "id");
    const char *perm = ev_str(ev, "evaluated_permission");
    const char *verdict;

    if (wks_in_dead_thread(s, ev)) {
        al_log(AL_DEBUG, "session thread terminated; not executing", AL_STR("session_id", sid(s)),
               AL_STR("tool_use_id", id));
        return false;
    }
    verdict = (perm && !strcmp(perm, "deny")) ? "deny" : al_map_get(s->verdicts, id);
    if (!verdict) {
        if (!perm || !strcmp(perm, "allow"))
            return execute(s, ev, false);
        if (!al_map_get(s->awaiting, id)) {
            al_log(AL_INFO, "tool call awaiting confirmation; holding", AL_STR("component", "session-tool-runner"),
                   AL_STR("session_id", sid(s)), AL_STR("tool", ev_str(ev, "name")), AL_STR("tool_use_id", id));
            al_map_put(s->awaiting, id, json_incref(ev));
            idle_block(s, id);
        }
        return false;
    }
    return wks_apply_verdict(s, ev, verdict);
}

/* Verdicts are kept as static strings: "allow" or anything else (deny). */
const char *wks_verdict_of(const json_t *ev)
{
    const char *r = ev_str(ev, "result");
    return r && !strcmp(r, "allow") ? "allow" : "deny";
}

static bool note_confirmation(struct wk_session *s, json_t *ev)
{
    const char *id = ev_str(ev, "tool_use_id");
    const char *v = wks_verdict_of(ev);
    json_t *held;

    if (!id)
        return false;
    al_map_put(s->verdicts, id, (void *) v);
    held = json_incref(al_map_get(s->awaiting, id));
    if (!held)
        return false;
    bool hold = wks_apply_verdict(s, held, v);
    json_decref(held);
    return hold;
}

/* --- stream events -------------------------------------------------------- */

/* Returns true when the task holds the queue. */
bool wks_handle_stream_event(struct wk_session *s, json_t *ev)
{
    const char *t = ev_str(ev, "type");

    idle_note_event(s, ev);
    if (!t)
        return false;
    if (!strcmp(t, "agent.tool_use") || !strcmp(t, "agent.custom_tool_use")) {
        const char *id = ev_str(ev, "id");
        if (id && !set_has(s->seen, id)) {
            set_add(s->seen, id);
            return wks_route(s, ev);
        }
    } else if (!strcmp(t, "user.tool_confirmation")) {
        return note_confirmation(s, ev);
    } else if (!strcmp(t, "user.tool_result")) {
        set_add(s->answered, ev_str(ev, "tool_use_id"));
    } else if (!strcmp(t, "user.custom_tool_result")) {
        set_add(s->answered, ev_str(ev, "custom_tool_use_id"));
    } else if (!strcmp(t, "session.thread_status_terminated")) {
        set_add(s->dead_threads, ev_str(ev, "session_thread_id"));
        wks_release_dead_holds(s);
    } else if (!strcmp(t, "session.status_terminated") || !strcmp(t, "session.deleted")) {
        al_log(AL_INFO, "session terminated", AL_STR("component", "session-tool-runner"),
               AL_STR("session_id", sid(s)));
        wk_session_stop(s, false);
    }
    return false;
}
