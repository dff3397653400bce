/* SPDX-License-Identifier: Apache-2.0 */
/* Agents: versioned configurations (model, system prompt, tools, MCP
 * servers, skills). An update stores a new version; sessions bind to a
 * snapshot of one version. */
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "hub.h"

static const char *const agent_fields[] = { "name", "description", "system", "model", "tools", "mcp_servers",
                                            "skills", "metadata", "version", NULL };

static bool valid_tools(struct al_req *r, json_t *tools)
{
    size_t i;
    json_t *t;

    if (!json_is_array(tools) || json_array_size(tools) > 128) {
        api_bad_field(r, "tools", "must be an array of at most 128 tools");
        return false;
    }
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!type) {
            api_bad_field(r, "tools", "every tool needs a type");
            return false;
        }
        if (!strcmp(type, "custom")) {
            const char *name = json_string_value(json_object_get(t, "name"));
            if (!name || !*name || strlen(name) > 128 || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(name) ||
                !strncmp(name, "mcp__", 5)) {
                api_bad_field(r, "tools", "a custom tool name is 1-128 characters of [A-Za-z0-9_-], not starting with mcp__");
                return false;
            }
        } else if (strcmp(type, "agent_toolset_20260401") && strcmp(type, "mcp_toolset")) {
            api_bad_field(r, "tools", "type must be agent_toolset_20260401, mcp_toolset or custom");
            return false;
        }
        json_t *pp = json_object_get(json_object_get(t, "default_config"), "permission_policy");
        const char *ppt = json_string_value(json_object_get(pp, "type"));
        if (pp && (!ppt || (strcmp(ppt, "always_allow") && strcmp(ppt, "always_ask") && strcmp(ppt, "auto")))) {
            api_bad_field(r, "tools", "permission_policy.type must be always_allow, always_ask or auto");
            return false;
        }
    }
    return true;
}

/* Checks body against the agent schema; create requires name and model. */
static bool valid_agent_body(struct al_req *r, json_t *body, bool create)
{
    json_t *v;
    char why[256];

    if (!api_known_fields(r, body, agent_fields))
        return false;
    json_t *name = json_object_get(body, "name"), *model = json_object_get(body, "model");
    if ((create || name) && (!json_is_string(name) || !json_string_length(name) || json_string_length(name) > 256)) {
        api_bad_field(r, "name", "must be a string of 1 to 256 characters");
        return false;
    }
    if ((create || model) && !json_is_string(model) && !json_is_string(json_object_get(model, "id"))) {
        api_bad_field(r, "model", "must be a model id or {\"id\": ...}");
        return false;
    }
    json_t *sys = json_object_get(body, "system");
    if (sys && !json_is_null(sys) && !json_is_string(sys)) {
        api_bad_field(r, "system", "must be a string or null");
        return false;
    }
    if (json_object_get(body, "tools") && !valid_tools(r, json_object_get(body, "tools")))
        return false;
    json_t *mcp = json_object_get(body, "mcp_servers"), *skills = json_object_get(body, "skills");
    if (mcp && !json_is_array(mcp)) {
        api_bad_field(r, "mcp_servers", "must be an array");
        return false;
    }
    if (skills) {
        size_t i;
        if (!json_is_array(skills) || json_array_size(skills) > 64) {
            api_bad_field(r, "skills", "must be an array of at most 64 skills");
            return false;
        }
        json_array_foreach(skills, i, v) if (!json_is_string(json_object_get(v, "skill_id"))) {
            api_bad_field(r, "skills", "every skill needs a skill_id");
            return false;
        }
    }
    json_t *md = json_object_get(body, "metadata");
    if (md && !json_metadata_valid(md, why, sizeof(why))) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_metadata", "%s", why);
        return false;
    }
    return true;
}

static json_t *normalise_model(json_t *m)
{
    if (json_is_string(m))
        return json_pack("{s:O, s:s}", "id", m, "speed", "standard");
    json_t *out = json_deep_copy(m);
    if (!json_object_get(out, "speed"))
        json_object_set_new(out, "speed", json_string("standard"));
    return out;
}

static json_t *normalise_skills(json_t *skills)
{
    json_t *out = json_array(), *v;
    size_t i;
    json_array_foreach(skills, i, v) {
        json_t *s = json_deep_copy(v);
        if (!json_object_get(s, "type"))
            json_object_set_new(s, "type", json_string("custom"));
        if (!json_is_string(json_object_get(s, "version")))
            json_object_set_new(s, "version", json_string("latest"));
        json_array_append_new(out, s);
    }
    return out;
}

/* Applies body's fields to agent (a new version object). */
static void apply(json_t *agent, json_t *body)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        if (!strcmp(k, "version"))
            continue;
        if (!strcmp(k, "model"))
            json_object_set_new(agent, k, normalise_model(v));
        else if (!strcmp(k, "skills"))
            json_object_set_new(agent, k, normalise_skills(v));
        else if (!strcmp(k, "metadata"))
            json_metadata_patch(json_object_get(agent, "metadata"), v);
        else
            json_object_set(agent, k, v);
    }
}

static int store_agent(struct hub *h, struct al_req *r, json_t *agent)
{
    int e = al_store_put(h->store, AL_KIND_AGENT, json_string_value(json_object_get(agent, "id")),
                         json_integer_value(json_object_get(agent, "version")), agent);
    if (e < 0)
        api_store_error(r, e);
    return e;
}

void h_agent_create(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *body = NULL;
    if (!auth_require_api_key(r) || al_req_json(r, &body) < 0)
        return;
    if (!valid_agent_body(r, body, true)) {
        json_decref(body);
        return;
    }
    _cleanup_free_ char *id = al_id_new("agent"), *now = now_rfc3339();
    json_t *agent = json_pack("{s:s, s:s, s:i, s:n, s:n, s:n, s:[], s:[], s:[], s:{}, s:s, s:s, s:n}", "type",
                              "agent", "id", id, "version", 1, "name", "description", "system", "tools",
                              "mcp_servers", "skills", "metadata", "created_at", now, "updated_at", now,
                              "archived_at");
    apply(agent, body);
    json_decref(body);
    if (store_agent(h, r, agent) < 0) {
        json_decref(agent);
        return;
    }
    al_log(AL_INFO, "agent.created", AL_STR("agent", id));
    al_reply_json(r, 200, agent);
}

void h_agent_list(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    struct al_list_query q = { .kind = AL_KIND_AGENT, .latest_only = true };
    if (!auth_require_api_key(r) || !api_page_params(r, 20, 100, &q.limit, &q.after_seq) ||
        !api_bool_param(r, "include_archived", false, &q.include_archived))
        return;
    api_reply_list(h, r, &q, NULL);
}

static json_t *agent_load(struct hub *h, struct al_req *r, const char *id, int64_t version)
{
    json_t *a = NULL;
    int e = al_store_get(h->store, AL_KIND_AGENT, id, version, &a);
    if (e == -ENOENT)
        api_not_found(r, "agent");
    else if (e < 0)
        api_store_error(r, e);
    return e < 0 ? NULL : a;
}

void h_agent_get(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    int64_t version = 0;
    const char *v = al_query_get(&r->query, "version");
    if (!auth_require_api_key(r))
        return;
    if (v && al_parse_i64(v, 1, INT32_MAX, &version) < 0) {
        api_bad_field(r, "version", "must be a positive integer");
        return;
    }
    json_t *a = agent_load(h, r, r->params[0], version);
    if (a)
        al_reply_json(r, 200, a);
}

void h_agent_update(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *body = NULL, *a;
    if (!auth_require_api_key(r) || al_req_json(r, &body) < 0)
        return;
    if (!body)
        body = json_object();
    if (!valid_agent_body(r, body, false) || !(a = agent_load(h, r, r->params[0], 0))) {
        json_decref(body);
        return;
    }
    json_int_t cur = json_integer_value(json_object_get(a, "version"));
    json_t *want = json_object_get(body, "version");
    if (want && (!json_is_integer(want) || json_integer_value(want) != cur)) {
        al_reply_error_details(r, 409, "conflict_error", "version does not match the agent's current version",
                               json_pack("{s:s, s:I}", "error_code", "agent_version_mismatch", "current_version", cur),
                               true);
    } else if (json_is_string(json_object_get(a, "archived_at"))) {
        al_reply_error(r, 400, "invalid_request_error", "agent_archived", "an archived agent cannot be updated");
    } else {
        _cleanup_free_ char *now = now_rfc3339();
        json_t *next = json_deep_copy(a);
        apply(next, body);
        json_t *old = json_deep_copy(a);
        json_object_set_new(next, "version", json_integer(cur + 1));
        json_object_set_new(next, "updated_at", json_string(now));
        /* An update that changes nothing does not make a new version. */
        json_object_del(old, "updated_at");
        json_t *cmp = json_deep_copy(next);
        json_object_del(cmp, "updated_at");
        json_object_set_new(cmp, "version", json_integer(cur));
        if (json_equal(old, cmp)) {
            al_reply_json(r, 200, json_incref(a));
            json_decref(next);
        } else if (store_agent(h, r, next) == 0) {
            al_log(AL_INFO, "agent.updated", AL_STR("agent", r->params[0]), AL_I64("version", cur + 1));
            al_reply_json(r, 200, next);
        } else
            json_decref(next);
        json_decref(old);
        json_decref(cmp);
    }
    json_decref(a);
    json_decref(body);
}

void h_agent_archive(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *a;
    if (!auth_require_api_key(r) || !(a = agent_load(h, r, r->params[0], 0)))
        return;
    if (!json_is_string(json_object_get(a, "archived_at"))) {
        _cleanup_free_ char *now = now_rfc3339();
        json_object_set_new(a, "archived_at", json_string(now));
        json_object_set_new(a, "updated_at", json_string(now));
        if (store_agent(h, r, a) < 0) {
            json_decref(a);
            return;
        }
    }
    al_reply_json(r, 200, a);
}

void h_agent_versions(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *a;
    int limit;
    int64_t after;
    if (!auth_require_api_key(r) || !api_page_params(r, 20, 100, &limit, &after) ||
        !(a = agent_load(h, r, r->params[0], 0)))
        return;
    json_t *data = json_array();
    json_int_t cur = json_integer_value(json_object_get(a, "version"));
    json_decref(a);
    /* Versions newest first; the cursor is the version to continue below. */
    int64_t v = after ? after - 1 : cur, next = 0;
    for (int n = 0; v >= 1; v--, n++) {
        if (n == limit) {
            next = v + 1;
            break;
        }
        json_t *x = NULL;
        if (al_store_get(h->store, AL_KIND_AGENT, r->params[0], v, &x) == 0)
            json_array_append_new(data, x);
    }
    al_reply_json(r, 200, api_page(data, next));
}
