/* SPDX-License-Identifier: Apache-2.0 */
/* The agent loop. Each session's progress is derived from its stored
 * events (the current turn: newest user.message onwards), never from
 * memory, so a restarted hub picks up where it stopped. A step appends
 * events until the turn waits on something outside the hub: a tool result
 * from the worker, or a confirmation from the user. Steps run from a
 * deferred event, after the request that triggered them has committed. */
#include <event2/event.h>
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "hub.h"
#include "mcp_client.h"
#include "model.h"

#define STEP_MAX_ACTIONS 64   /* then yield to the loop and continue next tick */

struct agent_loop {
    struct hub *h;
    json_t *due;              /* session id → true */
    struct event *ev;         /* runs due sessions now (after a request commits) */
    struct event *later;      /* runs them on the next pass, after pending I/O */
};

static const struct model_provider *const providers[] = { &model_scripted };

static const struct model_provider *provider_for(json_t *agent)
{
    const char *id = json_string_value(json_object_get(json_object_get(agent, "model"), "id"));
    for (size_t i = 0; id && i < AL_ELEMENTSOF(providers); i++)
        if (providers[i]->matches(id))
            return providers[i];
    return NULL;
}

static const char *type_of(json_t *ev) { return json_string_value(json_object_get(ev, "type")) ?: ""; }

/* Where the turn stands. */
struct turn_state {
    bool ended;               /* an end_turn idle was emitted */
    bool interrupted;
    bool running;             /* last status event is status_running */
    json_t *open_call;        /* newest agent.tool_use or agent.mcp_tool_use without a result (borrowed) */
    json_t *confirmation;     /* its user.tool_confirmation, if any (borrowed) */
    bool waiting_announced;   /* a requires_action idle was emitted after the call */
};

static bool answers(json_t *ev, const char *call_id)
{
    const char *t = type_of(ev);
    if (!strcmp(t, "agent.mcp_tool_result"))
        return !strcmp(json_string_value(json_object_get(ev, "mcp_tool_use_id")) ?: "", call_id);
    return (!strcmp(t, "user.tool_result") || !strcmp(t, "agent.tool_result")) &&
           !strcmp(json_string_value(json_object_get(ev, "tool_use_id")) ?: "", call_id);
}

static void analyse(json_t *turn, struct turn_state *st)
{
    json_t *ev;
    size_t i;

    *st = (struct turn_state){ 0 };
    json_array_foreach(turn, i, ev) {
        const char *t = type_of(ev);
        if (!strcmp(t, "session.status_running"))
            st->running = true;
        else if (!strcmp(t, "session.status_idle")) {
            st->running = false;
            const char *why = json_string_value(json_object_get(json_object_get(ev, "stop_reason"), "type"));
            if (why && strcmp(why, "requires_action"))
                st->ended = true;
            else if (st->open_call)
                st->waiting_announced = true;
        } else if (!strcmp(t, "user.interrupt"))
            st->interrupted = true;
        else if (!strcmp(t, "agent.tool_use") || !strcmp(t, "agent.mcp_tool_use")) {
            st->open_call = ev;
            st->confirmation = NULL;
            st->waiting_announced = false;
        } else if (st->open_call && !strcmp(t, "user.tool_confirmation") &&
                   !strcmp(json_string_value(json_object_get(ev, "tool_use_id")) ?: "",
                           json_string_value(json_object_get(st->open_call, "id"))))
            st->confirmation = ev;
        else if (st->open_call && answers(ev, json_string_value(json_object_get(st->open_call, "id"))))
            st->open_call = NULL;
    }
}

/* The permission policy the agent gives tool name: always_allow, always_ask
 * or auto, or "disabled". Built-in tools come from agent_toolset_20260401;
 * with server set, name is a tool of that MCP server and the policy comes
 * from the mcp_toolset naming the server. No toolset (or no policy in it)
 * means always_allow. */
static const char *policy_for(json_t *agent, const char *server, const char *name)
{
    json_t *tools = json_object_get(agent, "tools"), *t, *c;
    size_t i, j;
    json_array_foreach(tools, i, t) {
        if (server ? strcmp(type_of(t), "mcp_toolset") ||
                         strcmp(json_string_value(json_object_get(t, "mcp_server_name")) ?: "", server)
                   : strcmp(type_of(t), "agent_toolset_20260401"))
            continue;
        json_t *def = json_object_get(t, "default_config");
        const char *policy = json_string_value(json_object_get(json_object_get(def, "permission_policy"), "type"));
        bool enabled = !json_is_false(json_object_get(def, "enabled"));
        json_array_foreach(json_object_get(t, "configs"), j, c) {
            if (strcmp(json_string_value(json_object_get(c, "name")) ?: "", name))
                continue;
            if (json_is_boolean(json_object_get(c, "enabled")))
                enabled = json_is_true(json_object_get(c, "enabled"));
            const char *p = json_string_value(json_object_get(json_object_get(c, "permission_policy"), "type"));
            if (p)
                policy = p;
        }
        return enabled ? policy ? policy : "always_allow" : "disabled";
    }
    return "always_allow";
}

static int append(struct hub *h, const char *sid, json_t *ev, json_t **stored)
{
    return events_append(h, sid, ev, stored);
}

static int set_status(struct hub *h, const char *sid, const char *status)
{
    return session_set_status(h, sid, status);
}

static int emit_idle(struct hub *h, const char *sid, json_t *stop_reason)
{
    int e = append(h, sid, json_pack("{s:s, s:o, s:n}", "type", "session.status_idle", "stop_reason", stop_reason,
                                     "stop_details"), NULL);
    return e ? e : set_status(h, sid, "idle");
}

static int emit_running(struct hub *h, const char *sid)
{
    int e = append(h, sid, json_pack("{s:s}", "type", "session.status_running"), NULL);
    return e ? e : set_status(h, sid, "running");
}

static int emit_text(struct hub *h, const char *sid, const char *type, const char *text)
{
    return append(h, sid, json_pack("{s:s, s:[{s:s, s:s}]}", "type", type, "content", "type", "text", "text", text), NULL);
}

/* Resolves a call the worker must not or cannot run: the hub appends the
 * result itself, as an error the model sees. */
static int resolve_call(struct hub *h, const char *sid, const char *call_id, const char *msg)
{
    return append(h, sid, json_pack("{s:s, s:s, s:[{s:s, s:s}], s:b}", "type", "agent.tool_result", "tool_use_id",
                                    call_id, "content", "type", "text", "text", msg, "is_error", 1), NULL);
}

/* Appends the result of MCP call call_id (content stolen) and, for a
 * failure to reach the server, a session.error of error_type (spec §5.5;
 * retry_status terminal: the hub does not retry a tool call on its own). */
static int append_mcp_result(struct hub *h, const char *sid, const char *call_id, json_t *content, bool is_error,
                             const char *error_type, const char *msg)
{
    int e = append(h, sid, json_pack("{s:s, s:s, s:o, s:b}", "type", "agent.mcp_tool_result", "mcp_tool_use_id",
                                     call_id, "content", content, "is_error", is_error), NULL);
    if (e == 0 && error_type)
        e = append(h, sid, json_pack("{s:s, s:{s:s, s:s, s:{s:s}}}", "type", "session.error", "error", "type",
                                     error_type, "message", msg ? msg : "MCP call failed", "retry_status", "type",
                                     "terminal"), NULL);
    return e;
}

/* What a policy makes of a call: allow, ask or deny. */
static const char *permission(const char *policy)
{
    return !strcmp(policy, "always_ask") ? "ask" : !strcmp(policy, "disabled") ? "deny" : "allow";
}

/* The evaluation object of a call under policy (new reference). */
static json_t *evaluation(const char *policy)
{
    if (!strcmp(policy, "auto"))
        return json_pack("{s:s, s:{s:s}}", "type", "auto", "evaluated_permission", "type", "allow");
    return json_pack("{s:s}", "type", !strcmp(policy, "disabled") ? "always_allow" : policy);
}

/* Starts the MCP call event call (borrowed) may make. It goes out once this
 * step's pass has committed (curl_ev connects from a later loop pass); its
 * result arrives through loop_mcp_resolve, and *more becomes 0 (the turn
 * waits). One that cannot start is resolved here, and *more is left alone.
 * Returns 0 or -errno. */
static int mcp_start(struct hub *h, json_t *session, json_t *call, int *more)
{
    const char *sid = json_string_value(json_object_get(session, "id"));
    const char *call_id = json_string_value(json_object_get(call, "id"));
    _cleanup_free_ char *msg = NULL;
    const char *error_type = NULL;
    int d = mcp_call_start(h, session, call_id, json_string_value(json_object_get(call, "mcp_server_name")),
                           json_string_value(json_object_get(call, "name")), json_object_get(call, "input"), &msg,
                           &error_type);
    if (d < 0)
        return d;
    if (d == 0) {
        *more = 0;
        return 0;
    }
    return append_mcp_result(h, sid, call_id, json_pack("[{s:s, s:s}]", "type", "text", "text", msg), true,
                             error_type, msg);
}

/* The tool-dispatch point: who runs a built-in tool call that may run. On a
 * self_hosted environment the session's worker does, and the turn waits for
 * its user.tool_result. Other environment types have no sandbox on this hub,
 * so the call is resolved at once with an error. Returns 1 when the call
 * was resolved here, 0 when the turn waits for a worker, or -errno. */
static int dispatch(struct hub *h, json_t *session, const char *call_id)
{
    json_t *env = NULL;
    const char *env_id = json_string_value(json_object_get(session, "environment_id"));
    int e = al_store_get(h->store, AL_KIND_ENVIRONMENT, env_id, 0, &env);
    if (e < 0 && e != -ENOENT)
        return e;
    bool self_hosted = e == 0 && !strcmp(json_string_value(json_object_get(json_object_get(env, "config"), "type")) ?: "",
                                         "self_hosted");
    json_decref(env);
    if (self_hosted)
        return 0;
    e = resolve_call(h, json_string_value(json_object_get(session, "id")), call_id,
                     "built-in tools run only on self_hosted environments on this hub");
    return e < 0 ? e : 1;
}

/* One model turn: span start, the action's event(s), span end. Returns 1 to
 * keep stepping, 0 when the turn now waits, or -errno. */
static int model_turn(struct hub *h, json_t *session, const struct model_provider *p, json_t *turn)
{
    const char *sid = json_string_value(json_object_get(session, "id"));
    json_t *agent = json_object_get(session, "agent");
    struct model_action a;
    json_t *start = NULL;
    int e = p->next(agent, turn, &a), more = 1;
    if (e < 0)
        return e;
    e = append(h, sid, json_pack("{s:s}", "type", "span.model_request_start"), &start);
    const char *start_id = e == 0 ? json_string_value(json_object_get(start, "id")) : NULL;
    _cleanup_free_ char *sid_copy = start_id ? al_xstrdup(start_id) : NULL;
    json_t *after = NULL;   /* events that follow the span's end */

    if (e < 0)
        goto out;
    switch (a.kind) {
    case MODEL_MESSAGE:
        e = emit_text(h, sid, "agent.message", a.text);
        break;
    case MODEL_END_TURN:
        e = emit_text(h, sid, "agent.message", a.text && *a.text ? a.text : "(no directives)");
        more = 0;
        break;
    case MODEL_MCP_CALL: {
        const char *policy = policy_for(agent, a.server, a.name);
        const char *perm = permission(policy);
        json_t *call = NULL;
        e = append(h, sid, json_pack("{s:s, s:s, s:s, s:O, s:s, s:o, s:n}", "type", "agent.mcp_tool_use", "name",
                                     a.name, "mcp_server_name", a.server, "input", a.input, "evaluated_permission",
                                     perm, "evaluation", evaluation(policy), "session_thread_id"), &call);
        if (e < 0)
            break;
        const char *call_id = json_string_value(json_object_get(call, "id"));
        if (!strcmp(perm, "deny")) {
            _cleanup_free_ char *msg = al_xasprintf("tool %s of MCP server %s is disabled for this agent", a.name,
                                                    a.server);
            e = append_mcp_result(h, sid, call_id, json_pack("[{s:s, s:s}]", "type", "text", "text", msg), true,
                                  NULL, NULL);
        } else if (!strcmp(perm, "ask")) {
            more = 0;
            after = json_pack("{s:s, s:[s]}", "type", "requires_action", "event_ids", call_id);
        } else {
            int d = mcp_start(h, session, call, &more);
            if (d < 0)
                e = d;
        }
        break;
    }
    case MODEL_TOOL_USE: {
        const char *policy = policy_for(agent, NULL, a.name);
        const char *perm = permission(policy);
        json_t *eval = evaluation(policy);
        json_t *call = NULL;
        e = append(h, sid, json_pack("{s:s, s:s, s:O, s:s, s:o, s:n}", "type", "agent.tool_use", "name", a.name, "input",
                                     a.input, "evaluated_permission", perm, "evaluation", eval, "session_thread_id"),
                   &call);
        if (e < 0)
            break;
        const char *call_id = json_string_value(json_object_get(call, "id"));
        if (!strcmp(perm, "deny")) {
            /* A denied call never reaches the worker; the server resolves it. */
            _cleanup_free_ char *msg = al_xasprintf("tool %s is disabled for this agent", a.name);
            e = resolve_call(h, sid, call_id, msg);
        } else if (!strcmp(perm, "ask")) {
            more = 0;
            after = json_pack("{s:s, s:[s]}", "type", "requires_action", "event_ids", call_id);
        } else {
            int d = dispatch(h, session, call_id);
            if (d < 0)
                e = d;
            else
                more = d;
        }
        break;
    }
    }
    if (e == 0)
        e = append(h, sid, json_pack("{s:s, s:s, s:b, s:O}", "type", "span.model_request_end", "model_request_start_id",
                                     sid_copy, "is_error", 0, "model_usage", a.usage), NULL);
    if (e == 0 && a.kind == MODEL_END_TURN)
        e = emit_idle(h, sid, json_pack("{s:s}", "type", "end_turn"));
    if (e == 0 && after)
        e = emit_idle(h, sid, TAKE_PTR(after));
out:
    json_decref(after);
    model_action_done(&a);
    return e < 0 ? e : more;
}

/* The result text of a tool call the user denied (the SDK's wording). */
static char *denial_text(const json_t *confirmation)
{
    const json_t *dm = json_object_get(confirmation, "deny_message");

    return json_is_string(dm) ? al_xasprintf("The user denied this tool call: %s", json_string_value(dm))
                              : al_xstrdup("The user denied this tool call.");
}

/* Advances one session by at most one action. Returns 1 when it should be
 * stepped again, 0 when it waits or is done, -errno on failure. */
static int step_once(struct hub *h, const char *sid)
{
    json_t *s = session_load(h, sid), *turn = json_array();
    struct turn_state st;
    int ret = 0;

    if (!s || json_is_string(json_object_get(s, "archived_at")) ||
        !strcmp(json_string_value(json_object_get(s, "status")) ?: "", "terminated"))
        goto out;
    if ((ret = al_store_event_turn(h->store, sid, turn)) < 0 || json_array_size(turn) == 0)
        goto out;
    analyse(turn, &st);
    if (st.ended)
        goto out;
    json_t *agent = json_object_get(s, "agent");
    if (st.interrupted) {
        /* An MCP call in flight is abandoned: its answer could no longer be
         * used, and the connection need not wait for it. */
        if (st.open_call && !strcmp(type_of(st.open_call), "agent.mcp_tool_use"))
            mcp_call_cancel(h, json_string_value(json_object_get(st.open_call, "id")));
        ret = emit_idle(h, sid, json_pack("{s:s}", "type", "end_turn"));
        goto out;
    }
    if (st.open_call && !strcmp(type_of(st.open_call), "agent.mcp_tool_use")) {
        const char *call_id = json_string_value(json_object_get(st.open_call, "id"));
        bool ask = !strcmp(json_string_value(json_object_get(st.open_call, "evaluated_permission")) ?: "", "ask");
        if (ask && !st.confirmation) {
            if (!st.waiting_announced)
                ret = emit_idle(h, sid, json_pack("{s:s, s:[s]}", "type", "requires_action", "event_ids", call_id));
            goto out;
        }
        if (ask && !strcmp(json_string_value(json_object_get(st.confirmation, "result")) ?: "", "deny")) {
            _cleanup_free_ char *msg = denial_text(st.confirmation);
            if (!st.running && (ret = emit_running(h, sid)) < 0)
                goto out;
            ret = append_mcp_result(h, sid, call_id, json_pack("[{s:s, s:s}]", "type", "text", "text", msg), true,
                                    NULL, NULL);
            ret = ret < 0 ? ret : 1;
            goto out;
        }
        if (ask && !st.running) {
            /* Allowed, and not running since the requires_action idle: this
             * is the first step after the confirmation, so the call has not
             * been made yet. (Once it has, the session is running.) */
            int more = 1;
            if ((ret = emit_running(h, sid)) == 0 && (ret = mcp_start(h, s, st.open_call, &more)) == 0)
                ret = more;
            goto out;
        }
        if (!st.running && (ret = emit_running(h, sid)) < 0)
            goto out;
        if (mcp_call_in_flight(h, call_id))
            goto out;   /* its result wakes the session */
        /* Open, yet no call in this process: the hub stopped while it was
         * in flight. It may or may not have reached the server; calling it
         * again could run the tool twice, so it is resolved as failed. */
        al_log(AL_INFO, "loop.mcp_interrupted", AL_STR("session", sid), AL_STR("call", call_id));
        ret = append_mcp_result(h, sid, call_id,
                                json_pack("[{s:s, s:s}]", "type", "text", "text", "interrupted by a hub restart"),
                                true, NULL, NULL);
        ret = ret < 0 ? ret : 1;
        goto out;
    }
    if (st.open_call) {
        const char *perm = json_string_value(json_object_get(st.open_call, "evaluated_permission")) ?: "allow";
        const char *call_id = json_string_value(json_object_get(st.open_call, "id"));
        if (strcmp(perm, "ask")) {
            if (!st.running)
                ret = emit_running(h, sid);
            goto out;
        }
        if (!st.confirmation) {
            if (!st.waiting_announced)
                ret = emit_idle(h, sid, json_pack("{s:s, s:[s]}", "type", "requires_action", "event_ids", call_id));
            goto out;
        }
        if (!strcmp(json_string_value(json_object_get(st.confirmation, "result")), "deny")) {
            _cleanup_free_ char *msg = denial_text(st.confirmation);
            if (!st.running && (ret = emit_running(h, sid)) < 0)
                goto out;
            ret = resolve_call(h, sid, call_id, msg);
            ret = ret < 0 ? ret : 1;
            goto out;
        }
        /* Allowed: it goes where any allowed call goes. */
        if (!st.running && (ret = emit_running(h, sid)) < 0)
            goto out;
        ret = dispatch(h, s, call_id);
        goto out;
    }
    const struct model_provider *p = provider_for(agent);
    if (!st.running && (ret = emit_running(h, sid)) < 0)
        goto out;
    if (!p) {
        const char *model = json_string_value(json_object_get(json_object_get(agent, "model"), "id")) ?: "?";
        _cleanup_free_ char *msg = al_xasprintf("no model provider serves \"%s\" on this hub", model);
        ret = append(h, sid, json_pack("{s:s, s:{s:s, s:s, s:{s:s}}}", "type", "session.error", "error", "type",
                                       "model_request_failed_error", "message", msg, "retry_status", "type", "terminal"),
                     NULL);
        if (ret == 0)
            ret = emit_idle(h, sid, json_pack("{s:s}", "type", "end_turn"));
        goto out;
    }
    ret = model_turn(h, s, p, turn);
out:
    json_decref(turn);
    json_decref(s);
    return ret;
}

static void step(struct hub *h, const char *sid)
{
    for (int i = 0; i < STEP_MAX_ACTIONS; i++) {
        if (hub_tx_begin(h) < 0)
            return;
        int r = step_once(h, sid);
        int c = hub_tx_end(h, r < 0 ? r : 0);
        if (r < 0 || c < 0) {
            al_log(AL_ERROR, "loop.step_failed", AL_STR("session", sid), AL_ERR(r < 0 ? r : c));
            return;
        }
        if (r == 0)
            return;
    }
    /* More to do: continue after the loop has served I/O. */
    json_object_set_new(h->loop->due, sid, json_true());
    struct timeval zero = { 0, 0 };
    evtimer_add(h->loop->later, &zero);
}

void loop_mcp_resolve(struct hub *h, const char *sid, const char *call_id, json_t *content, bool is_error,
                      const char *error_type, const char *msg)
{
    json_t *s = NULL, *turn = json_array();
    struct turn_state st;
    const char *drop = NULL;

    int e = hub_tx_begin(h);
    if (e < 0)
        goto out;
    s = session_load(h, sid);
    if (!s || json_is_string(json_object_get(s, "archived_at")) ||
        !strcmp(json_string_value(json_object_get(s, "status")) ?: "", "terminated"))
        drop = "session_gone";
    else if ((e = al_store_event_turn(h->store, sid, turn)) == 0) {
        analyse(turn, &st);
        if (st.ended || !st.open_call || strcmp(json_string_value(json_object_get(st.open_call, "id")) ?: "", call_id))
            drop = "not_the_open_call";   /* interrupted, or a new turn began */
        else
            e = append_mcp_result(h, sid, call_id, TAKE_PTR(content), is_error, error_type, msg);
    }
    e = hub_tx_end(h, e);
out:
    if (e < 0)
        al_log(AL_ERROR, "loop.mcp_result_failed", AL_STR("session", sid), AL_STR("call", call_id), AL_ERR(e));
    else if (drop)
        al_log(AL_INFO, "loop.mcp_result_dropped", AL_STR("session", sid), AL_STR("call", call_id),
               AL_STR("why", drop));
    else
        loop_notify(h, sid);
    json_decref(content);
    json_decref(turn);
    json_decref(s);
}

static void on_due(evutil_socket_t fd, short what, void *arg)
{
    struct agent_loop *l = arg;
    json_t *due = l->due;
    const char *sid;
    json_t *v;

    l->due = json_object();
    json_object_foreach(due, sid, v) step(l->h, sid);
    json_decref(due);
}

void loop_notify(struct hub *h, const char *session_id)
{
    if (!h->loop)
        return;
    json_object_set_new(h->loop->due, session_id, json_true());
    event_active(h->loop->ev, EV_TIMEOUT, 0);
}

void loop_start(struct hub *h)
{
    struct agent_loop *l = al_xcalloc(1, sizeof(*l));
    json_t *running = json_array(), *s;
    size_t i;

    l->h = h;
    l->due = json_object();
    l->ev = event_new(h->base, -1, 0, on_due, l);
    l->later = evtimer_new(h->base, on_due, l);
    h->loop = l;
    /* Sessions that were mid-turn when the hub stopped carry on. */
    if (al_store_sessions_running(h->store, running) == 0)
        json_array_foreach(running, i, s) {
            al_log(AL_INFO, "loop.resume", AL_STR("session", json_string_value(json_object_get(s, "id"))));
            loop_notify(h, json_string_value(json_object_get(s, "id")));
        }
    json_decref(running);
}

void loop_stop(struct hub *h)
{
    struct agent_loop *l = h->loop;
    if (!l)
        return;
    event_free(l->ev);
    event_free(l->later);
    json_decref(l->due);
    free(l);
    h->loop = NULL;
}
