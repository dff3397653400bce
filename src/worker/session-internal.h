/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between session.c (life cycle, task queue, stream and reconcile)
 * and session_call.c (gating, the idle clock, running one call and posting
 * its result). Not for other modules: they use wk.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "../lib/base/map.h"
#include "wk.h"

#define TOOL_TIMEOUT_MS         120000
#define TOOL_KILL_MS            10000     /* after the cancel, before the runner is killed */
#define HELPER                  "environments-worker, session-tool-runner"

struct stream_ref;

struct wk_session {
    struct wk_item *it;
    struct worker *w;

    struct al_curl_xfer *stream;
    struct stream_ref *stream_ref;
    json_t *buffered;            /* stream events held during reconcile */
    struct wk_call *list_call;
    json_t *history;             /* events listed so far */
    struct event *reconnect;
    int64_t backoff_ms;

    json_t *tasks;               /* [{k, ev...}] handled one at a time */
    struct event *pump_ev;

    struct al_map *seen, *answered, *verdicts, *awaiting, *dead_threads;

    /* idle clock */
    struct event *idle_timer;
    struct al_map *blockers;

    /* the call in flight */
    json_t *cur;                 /* the tool event */
    json_t *result;              /* the result event to post */
    struct wk_call *send_call;
    struct event *send_timer, *tool_timer;
    int64_t send_start_us;
    int64_t retry_window_ms;
    struct event *drain_timer;
    int send_attempt;

    bool reconciling;            /* stream up, history not read yet: buffer */
    bool busy;                   /* a task holds the queue */
    bool history_read;
    bool idle_armed, arm_pending, idle_may_be_stale;
    bool cur_allow;              /* dispatched by an allow verdict */
    bool cancel_sent;
    bool stopping, drain, ended;
};

static inline const char *sid(const struct wk_session *s)
{
    return s->it->session_id;
}

static inline const char *ev_str(const json_t *ev, const char *k)
{
    return json_string_value(json_object_get(ev, k));
}

static inline void set_add(struct al_map *m, const char *k)
{
    if (k && !al_map_get(m, k))
        al_map_put(m, k, (void *) 1);
}

static inline bool set_has(const struct al_map *m, const char *k)
{
    return k && al_map_get(m, k) != NULL;
}

/* session.c */
void wks_pump(struct wk_session *s);
void wks_maybe_end(struct wk_session *s);

/* session_call.c: the idle clock (§8.4) */
bool wks_ends_turn(const json_t *ev);
bool wks_idle_neutral(const json_t *ev);
void wks_idle_arm(struct wk_session *s);
void wks_idle_disarm(struct wk_session *s);
void wks_on_idle(evutil_socket_t fd, short what, void *ud);

/* session_call.c: events, gating and calls. The bool results say whether
 * the event started a call, which then holds the session's queue. */
bool wks_handle_stream_event(struct wk_session *s, json_t *ev);
bool wks_route(struct wk_session *s, json_t *ev);
bool wks_apply_verdict(struct wk_session *s, json_t *ev, const char *verdict);
const char *wks_verdict_of(const json_t *ev);
bool wks_in_dead_thread(const struct wk_session *s, const json_t *ev);
void wks_release_dead_holds(struct wk_session *s);
void wks_call_finished(struct wk_session *s);
void wks_send_result(struct wk_session *s);
void wks_on_send_timer(evutil_socket_t fd, short what, void *ud);
void wks_on_tool_timer(evutil_socket_t fd, short what, void *ud);
