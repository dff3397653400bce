/* SPDX-License-Identifier: Apache-2.0 */
/* Sessions (spec §4): bound to one environment and a snapshot of one agent
 * version. On a self_hosted environment a session is a work item in the
 * queue; its events (api_events.c) are the durable history. */
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "hub.h"

json_t *session_load(struct hub *h, const char *session_id)
{
    json_t *s = NULL;
    return al_store_get(h->store, AL_KIND_SESSION, session_id, 0, &s) == 0 ? s : NULL;
}

/* Loads a session the principal may see, or replies 404. */
static json_t *session_for(struct hub *h, struct al_req *r, const char *id)
{
    struct principal *p = r->auth;
    if (p->kind == PRINCIPAL_SESSION_TOKEN && strcmp(p->session_id, id)) {
        api_not_found(r, "session");
        return NULL;
    }
    json_t *s = session_load(h, id);
    if (!s) {
        api_not_found(r, "session");
        return NULL;
    }
    if (!auth_require_session(r, id, json_string_value(json_object_get(s, "environment_id")))) {
        json_decref(s);
        return NULL;
    }
    return s;
}

/* The API reports an archived session as terminated (SDK 1.10 CHANGELOG). */
static json_t *session_public(json_t *s)
{
    s = api_public(s);
    if (json_is_string(json_object_get(s, "archived_at")))
        json_object_set_new(s, "status", json_string("terminated"));
    return s;
}

int session_set_status(struct hub *h, const char *session_id, const char *status)
{
    json_t *s = session_load(h, session_id);
    if (!s)
        return -ENOENT;
    int e = 0;
    if (strcmp(json_string_value(json_object_get(s, "status")) ?: "", status)) {
        _cleanup_free_ char *now = now_rfc3339();
        json_object_set_new(s, "status", json_string(status));
        json_object_set_new(s, "updated_at", json_string(now));
        e = al_store_put(h->store, AL_KIND_SESSION, session_id, 0, s);
    }
    json_decref(s);
    return e;
}

/* Resolves the agent reference of a create body to a snapshot. */
static json_t *resolve_agent(struct hub *h, struct al_req *r, json_t *ref)
{
    const char *id = json_string_value(ref);
    int64_t version = 0;
    json_t *agent = NULL;

    if (!id && json_is_object(ref)) {
        const char *type = json_string_value(json_object_get(ref, "type"));
        id = json_string_value(json_object_get(ref, "id"));
        json_t *v = json_object_get(ref, "version");
        if (v && !json_is_null(v)) {
            if (!json_is_integer(v) || json_integer_value(v) < 1) {
                api_bad_field(r, "agent.version", "must be a positive integer");
                return NULL;
            }
            version = json_integer_value(v);
        }
        if (!type || (strcmp(type, "agent") && strcmp(type, "agent_with_overrides"))) {
            api_bad_field(r, "agent.type", "must be \"agent\" or \"agent_with_overrides\"");
            return NULL;
        }
    }
    if (!id) {
        api_bad_field(r, "agent", "must be an agent id or {\"type\":\"agent\",\"id\":...}");
        return NULL;
    }
    int e = al_store_get(h->store, AL_KIND_AGENT, id, version, &agent);
    if (e == -ENOENT) {
        api_not_found(r, "agent");
        return NULL;
    }
    if (e < 0) {
        api_store_error(r, e);
        return NULL;
    }
    if (json_is_string(json_object_get(agent, "archived_at"))) {
        json_decref(agent);
        al_reply_error(r, 400, "invalid_request_error", "agent_archived", "the agent is archived");
        return NULL;
    }
    if (json_is_object(ref) && !strcmp(json_string_value(json_object_get(ref, "type")), "agent_with_overrides")) {
        static const char *const over[] = { "model", "system", "tools", "skills", "mcp_servers", NULL };
        for (size_t i = 0; over[i]; i++) {
            json_t *v = json_object_get(ref, over[i]);
            if (!v)
                continue;
            if (!strcmp(over[i], "model") && json_is_string(v))
                json_object_set_new(agent, "model", json_pack("{s:O, s:s}", "id", v, "speed", "standard"));
            else
                json_object_set(agent, over[i], v);
        }
    }
    json_object_set_new(agent, "type", json_string("agent"));
    json_object_del(agent, "created_at");
    json_object_del(agent, "updated_at");
    json_object_del(agent, "archived_at");
    json_object_del(agent, "metadata");
    if (!json_object_get(agent, "multiagent"))
        json_object_set_new(agent, "multiagent", json_null());
    return agent;
}

void h_session_create(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *body = NULL, *env = NULL, *agent = NULL, *work = NULL;
    _cleanup_free_ char *id = NULL, *now = NULL;
    char why[256];
    static const char *const fields[] = { "agent", "environment_id", "initial_events", "metadata", "resources",
                                          "title", "vault_ids", "budget", NULL };

    if (!auth_require_api_key(r) || al_req_json(r, &body) < 0)
        return;
    if (!api_known_fields(r, body, fields))
        goto out;
    json_t *v;
    const char *env_id = json_string_value(json_object_get(body, "environment_id"));
    json_t *initial = json_object_get(body, "initial_events"), *md = json_object_get(body, "metadata");
    json_t *title = json_object_get(body, "title"), *resources = json_object_get(body, "resources");
    json_t *vaults = json_object_get(body, "vault_ids"), *budget = json_object_get(body, "budget");
    if (!env_id) {
        api_bad_field(r, "environment_id", "is required");
        goto out;
    }
    if (initial && (!json_is_array(initial) || json_array_size(initial) > 50)) {
        api_bad_field(r, "initial_events", "must be an array of at most 50 events");
        goto out;
    }
    size_t i;
    json_array_foreach(initial, i, v) if (!event_param_valid(v, true, why, sizeof(why))) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_event", "initial_events[%zu]: %s", i, why);
        goto out;
    }
    if (md && !json_metadata_valid(md, why, sizeof(why))) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_metadata", "%s", why);
        goto out;
    }
    if (title && !json_is_null(title) && (!json_is_string(title) || json_string_length(title) > 512)) {
        api_bad_field(r, "title", "must be a string of at most 512 characters or null");
        goto out;
    }
    if (resources && !json_is_array(resources)) {
        api_bad_field(r, "resources", "must be an array");
        goto out;
    }
    if (vaults && (!json_is_array(vaults) || json_array_size(vaults) > 0)) {
        api_bad_field(r, "vault_ids", "vaults are not supported by this hub");
        goto out;
    }
    if (budget && !json_is_null(budget) && !json_is_object(budget)) {
        api_bad_field(r, "budget", "must be an object or null");
        goto out;
    }
    if (!(env = env_load(h, r, env_id)))
        goto out;
    if (json_is_string(json_object_get(env, "archived_at"))) {
        al_reply_error(r, 400, "invalid_request_error", "environment_archived",
                       "an archived environment cannot receive new sessions");
        goto out;
    }
    if (!json_object_get(body, "agent")) {
        api_bad_field(r, "agent", "is required");
        goto out;
    }
    if (!(agent = resolve_agent(h, r, json_object_get(body, "agent"))))
        goto out;

    id = al_id_new("sesn");
    now = now_rfc3339();
    json_t *res_out = json_array();
    json_array_foreach(resources, i, v) {
        _cleanup_free_ char *rid = al_id_new("sesrsc");
        json_t *copy = json_deep_copy(v);
        json_object_del(copy, "authorization_token");   /* a secret: never echoed or stored in the body */
        json_object_set_new(copy, "id", json_string(rid));
        json_object_set_new(copy, "created_at", json_string(now));
        json_object_set_new(copy, "updated_at", json_string(now));
        json_array_append_new(res_out, copy);
    }
    json_t *mdc = json_object();
    if (md)
        json_metadata_patch(mdc, md);
    bool has_message = false;
    json_array_foreach(initial, i, v) has_message |= !strcmp(json_string_value(json_object_get(v, "type")), "user.message");
    json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:O, s:o, s:o, s:o, s:{s:i, s:i, s:i, s:i}, s:{s:i, s:i}, s:[],"
                          " s:[], s:O, s:n, s:s, s:s, s:n}",
                          "type", "session", "id", id, "status", has_message ? "running" : "idle", "environment_id", env_id, "title",
                          title ? title : json_null(), "metadata", mdc, "agent", agent, "resources", res_out,
                          "usage", "input_tokens", 0, "output_tokens", 0, "cache_creation_input_tokens", 0,
                          "cache_read_input_tokens", 0, "stats", "active_seconds", 0, "duration_seconds", 0,
                          "outcome_evaluations", "vault_ids", "budget", budget ? budget : json_null(),
                          "archived_at", "created_at", now, "updated_at", now, "deployment_id");
    agent = NULL;
    bool self_hosted = !strcmp(json_string_value(json_object_get(json_object_get(env, "config"), "type")) ?: "",
                               "self_hosted");
    int e = hub_tx_begin(h);
    if (e == 0)
        e = al_store_put(h->store, AL_KIND_SESSION, id, 0, s);
    json_array_foreach(initial, i, v) {
        if (e < 0)
            break;
        e = events_append(h, id, json_deep_copy(v), NULL);
    }
    if (e == 0 && self_hosted)
        e = work_enqueue(h, env_id, s, &work);
    if (api_finish_tx(h, r, e) < 0) {
        json_decref(s);
        goto out;
    }
    if (work)
        work_wake(h, env_id);
    al_log(AL_INFO, "session.created", AL_STR("session", id), AL_STR("environment", env_id),
           AL_STR("work", work ? json_string_value(json_object_get(work, "id")) : NULL));
    if (json_array_size(initial) > 0)
        loop_notify(h, id);
    al_reply_json(r, 200, session_public(s));
out:
    json_decref(work);
    json_decref(agent);
    json_decref(env);
    json_decref(body);
}

void h_session_list(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    struct al_list_query q = { .kind = AL_KIND_SESSION, .desc = true };
    const char *statuses[9] = { 0 };
    static const struct { const char *key; size_t off; } ranges[] = {
        { "created_at[gt]", offsetof(struct al_list_query, created_gt) },
        { "created_at[gte]", offsetof(struct al_list_query, created_gte) },
        { "created_at[lt]", offsetof(struct al_list_query, created_lt) },
        { "created_at[lte]", offsetof(struct al_list_query, created_lte) },
    };

    if (!auth_require_api_key(r) || !api_page_params(r, 20, 100, &q.limit, &q.after_seq) ||
        !api_bool_param(r, "include_archived", false, &q.include_archived))
        return;
    const char *order = al_query_get(&r->query, "order");
    if (order && strcmp(order, "asc") && strcmp(order, "desc")) {
        api_bad_field(r, "order", "must be asc or desc");
        return;
    }
    q.desc = !order || !strcmp(order, "desc");
    q.agent_id = al_query_get(&r->query, "agent_id");
    const char *av = al_query_get(&r->query, "agent_version");
    if (av && al_parse_i64(av, 1, INT32_MAX, &q.agent_version) < 0) {
        api_bad_field(r, "agent_version", "must be a positive integer");
        return;
    }
    size_t ns = al_query_get_all(&r->query, "statuses", statuses, 8);
    for (size_t i = 0; i < ns; i++)
        if (strcmp(statuses[i], "idle") && strcmp(statuses[i], "running") && strcmp(statuses[i], "rescheduling") &&
            strcmp(statuses[i], "terminated")) {
            api_bad_field(r, "statuses", "must be idle, running, rescheduling or terminated");
            return;
        }
    q.statuses = ns ? statuses : NULL;
    for (size_t i = 0; i < AL_ELEMENTSOF(ranges); i++) {
        const char *v = al_query_get(&r->query, ranges[i].key);
        if (v && al_rfc3339_parse(v, (int64_t *) ((char *) &q + ranges[i].off)) < 0) {
            api_bad_field(r, ranges[i].key, "must be an RFC 3339 date-time");
            return;
        }
    }
    json_t *out = api_list(h, r, &q, session_public);
    if (!out)
        return;
    json_object_set_new(out, "prev_page", json_null());   /* the sessions list also has a backward cursor */
    al_reply_json(r, 200, out);
}

void h_session_get(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *s = session_for(h, r, r->params[0]);
    if (s)
        al_reply_json(r, 200, session_public(s));
}

void h_session_update(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *body = NULL, *s = NULL, *work = NULL;
    _cleanup_free_ char *now = NULL;
    char why[256];

    if (!auth_require_api_key(r) || al_req_json(r, &body) < 0)
        return;
    if (!body)
        body = json_object();
    if (!json_is_object(body)) {
        api_bad_field(r, "body", "must be a JSON object");
        goto out;
    }
    if (!(s = session_for(h, r, r->params[0])))
        goto out;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        if (!strcmp(k, "title")) {
            if (!json_is_null(v) && !json_is_string(v)) {
                api_bad_field(r, "title", "must be a string or null");
                goto out;
            }
        } else if (!strcmp(k, "metadata")) {
            if (!json_metadata_valid(v, why, sizeof(why))) {
                al_reply_error(r, 400, "invalid_request_error", "invalid_metadata", "%s", why);
                goto out;
            }
        } else if (!strcmp(k, "budget")) {
            if (!json_is_null(v) && !json_is_object(v)) {
                api_bad_field(r, "budget", "must be an object or null");
                goto out;
            }
        } else if (!strcmp(k, "agent")) {
            if (!strcmp(json_string_value(json_object_get(s, "status")), "running")) {
                al_reply_error(r, 400, "invalid_request_error", "session_running",
                               "the agent of a running session cannot change");
                goto out;
            }
            if (!json_is_object(v)) {
                api_bad_field(r, "agent", "must be an object with tools and/or mcp_servers");
                goto out;
            }
        } else if (!strcmp(k, "vault_ids")) {
            api_bad_field(r, "vault_ids", "is reserved");
            goto out;
        } else {
            api_bad_field(r, k, "unknown field");
            goto out;
        }
    }
    json_t *upd = json_pack("{s:s}", "type", "session.updated");
    json_object_foreach(body, k, v) {
        if (!strcmp(k, "metadata")) {
            json_t *md = json_object_get(s, "metadata");
            json_metadata_patch(md, v);
            if (json_object_size(md) > 16) {
                json_decref(upd);
                al_reply_error(r, 400, "invalid_request_error", "invalid_metadata", "metadata may have at most 16 keys");
                goto out;
            }
            json_object_set(upd, "metadata", md);
        } else if (!strcmp(k, "agent")) {
            json_t *agent = json_object_get(s, "agent");
            if (json_object_get(v, "tools"))
                json_object_set(agent, "tools", json_object_get(v, "tools"));
            if (json_object_get(v, "mcp_servers"))
                json_object_set(agent, "mcp_servers", json_object_get(v, "mcp_servers"));
            json_object_set(upd, "agent", agent);
        } else {
            json_object_set(s, k, v);
            json_object_set(upd, k, v);
        }
    }
    now = now_rfc3339();
    json_object_set_new(s, "updated_at", json_string(now));
    int e = hub_tx_begin(h);
    if (e == 0)
        e = al_store_put(h->store, AL_KIND_SESSION, r->params[0], 0, s);
    if (e == 0)
        e = events_append(h, r->params[0], upd, NULL);
    else
        json_decref(upd);
    /* Session metadata is projected onto its live work item. */
    if (e == 0 && json_object_get(body, "metadata") && al_store_work_for_session(h->store, r->params[0], &work) == 0) {
        json_object_set(work, "metadata", json_object_get(s, "metadata"));
        e = al_store_put(h->store, AL_KIND_WORK, json_string_value(json_object_get(work, "id")), 0, work);
    }
    if (api_finish_tx(h, r, e) < 0)
        goto out;
    al_reply_json(r, 200, session_public(json_incref(s)));
out:
    json_decref(work);
    json_decref(s);
    json_decref(body);
}

/* Ends a session: a terminated status event, streams closed, its live work
 * item stopped. Used by archive and delete. */
static int session_end(struct hub *h, const char *id, const char *event_type)
{
    json_t *work = NULL;
    int e = events_append(h, id, json_pack("{s:s}", "type", event_type), NULL);
    if (e == 0 && al_store_work_for_session(h->store, id, &work) == 0) {
        _cleanup_free_ char *now = now_rfc3339();
        json_object_set_new(work, "state", json_string("stopped"));
        json_object_set_new(work, "stopped_at", json_string(now));
        e = al_store_put(h->store, AL_KIND_WORK, json_string_value(json_object_get(work, "id")), 0, work);
        json_decref(work);
    }
    return e;
}

void h_session_archive(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *s;
    if (!auth_require_api_key(r) || !(s = session_for(h, r, r->params[0])))
        return;
    if (json_is_string(json_object_get(s, "archived_at"))) {
        al_reply_json(r, 200, session_public(s));
        return;
    }
    _cleanup_free_ char *now = now_rfc3339();
    json_object_set_new(s, "archived_at", json_string(now));
    json_object_set_new(s, "updated_at", json_string(now));
    json_object_set_new(s, "status", json_string("terminated"));
    int e = hub_tx_begin(h);
    if (e == 0)
        e = al_store_put(h->store, AL_KIND_SESSION, r->params[0], 0, s);
    if (e == 0)
        e = session_end(h, r->params[0], "session.status_terminated");
    if (api_finish_tx(h, r, e) < 0) {
        json_decref(s);
        return;
    }
    al_log(AL_INFO, "session.archived", AL_STR("session", r->params[0]));
    al_reply_json(r, 200, session_public(s));
}

void h_session_delete(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *s;
    if (!auth_require_api_key(r) || !(s = session_for(h, r, r->params[0])))
        return;
    json_decref(s);
    /* session.deleted is sent to open streams but is not kept: the history
     * goes with the session. */
    int e = hub_tx_begin(h);
    if (e == 0)
        e = session_end(h, r->params[0], "session.deleted");
    if (e == 0)
        e = al_store_event_delete_session(h->store, r->params[0]);
    if (e == 0)
        e = al_store_delete(h->store, AL_KIND_SESSION, r->params[0]);
    if (api_finish_tx(h, r, e) < 0)
        return;
    al_log(AL_INFO, "session.deleted", AL_STR("session", r->params[0]));
    al_reply_json(r, 200, json_pack("{s:s, s:s}", "id", r->params[0], "type", "session_deleted"));
}
