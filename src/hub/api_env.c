/* SPDX-License-Identifier: Apache-2.0 */
/* Environments (spec §2) and their keys (airlock's addition). */
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "hub.h"

json_t *env_load(struct hub *h, struct al_req *r, const char *id)
{
    json_t *env = NULL;
    int e = al_store_get(h->store, AL_KIND_ENVIRONMENT, id, 0, &env);
    if (e == -ENOENT) {
        api_not_found(r, "environment");
        return NULL;
    }
    if (e < 0) {
        api_store_error(r, e);
        return NULL;
    }
    return env;
}

/* Validates a config object; returns a normalised copy or NULL (why set). */
static json_t *config_normalise(json_t *cfg, char *why, size_t n)
{
    const char *type = json_string_value(json_object_get(cfg, "type"));
    if (!json_is_object(cfg) || !type) {
        snprintf(why, n, "config.type is required (\"self_hosted\" or \"cloud\")");
        return NULL;
    }
    if (!strcmp(type, "self_hosted")) {
        if (json_object_size(cfg) != 1) {
            snprintf(why, n, "a self_hosted config has no other fields");
            return NULL;
        }
        return json_pack("{s:s}", "type", "self_hosted");
    }
    if (strcmp(type, "cloud") != 0) {
        snprintf(why, n, "config.type must be \"self_hosted\" or \"cloud\"");
        return NULL;
    }
    json_t *net = json_object_get(cfg, "networking"), *pk = json_object_get(cfg, "packages");
    if (net && !json_is_null(net)) {
        const char *nt = json_string_value(json_object_get(net, "type"));
        if (!nt || (strcmp(nt, "unrestricted") && strcmp(nt, "limited"))) {
            snprintf(why, n, "config.networking.type must be \"unrestricted\" or \"limited\"");
            return NULL;
        }
    }
    if (pk && !json_is_null(pk) && !json_is_object(pk)) {
        snprintf(why, n, "config.packages must be an object");
        return NULL;
    }
    return json_pack("{s:s, s:O?, s:O?}", "type", "cloud", "networking", net && !json_is_null(net) ? net : NULL,
                     "packages", pk && !json_is_null(pk) ? pk : NULL);
}

static bool check_fields(struct al_req *r, json_t *body, bool create)
{
    static const char *const allowed[] = { "name", "config", "description", "metadata", "scope", NULL };
    char why[256];

    if (!api_known_fields(r, body, allowed))
        return false;
    json_t *name = json_object_get(body, "name");
    if ((create || name) && (!json_is_string(name) || json_string_length(name) == 0 || json_string_length(name) > 256)) {
        api_bad_field(r, "name", "must be a string of 1 to 256 characters");
        return false;
    }
    json_t *d = json_object_get(body, "description");
    if (d && !json_is_null(d) && (!json_is_string(d) || json_string_length(d) > 2048)) {
        api_bad_field(r, "description", "must be a string of at most 2048 characters or null");
        return false;
    }
    json_t *md = json_object_get(body, "metadata");
    if (md && !json_metadata_valid(md, why, sizeof(why))) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_metadata", "%s", why);
        return false;
    }
    json_t *scope = json_object_get(body, "scope");
    if (scope && !json_is_null(scope) && (!json_is_string(scope) || strcmp(json_string_value(scope), "organization"))) {
        api_bad_field(r, "scope", "must be \"organization\"");
        return false;
    }
    return true;
}

static void reply_env(struct al_req *r, int status, json_t *env)
{
    al_reply_json(r, status, api_public(env));
}

void h_env_create(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *body = NULL;
    char why[256];

    if (!auth_require_api_key(r) || al_req_json(r, &body) < 0)
        return;
    if (!check_fields(r, body, true)) {
        json_decref(body);
        return;
    }
    json_t *cfg_in = json_object_get(body, "config");
    json_t *cfg = cfg_in && !json_is_null(cfg_in) ? config_normalise(cfg_in, why, sizeof(why))
                                                  : json_pack("{s:s, s:n, s:n}", "type", "cloud", "networking", "packages");
    if (!cfg) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_config", "%s", why);
        json_decref(body);
        return;
    }
    _cleanup_free_ char *id = al_id_new("env"), *now = now_rfc3339();
    json_t *md = json_object();
    json_t *md_in = json_object_get(body, "metadata");
    if (md_in)
        json_metadata_patch(md, md_in);
    json_t *d = json_object_get(body, "description");
    json_t *env = json_pack("{s:s, s:s, s:O, s:O, s:o, s:o, s:s, s:s, s:s, s:n}", "type", "environment", "id", id,
                            "name", json_object_get(body, "name"), "description", d ? d : json_null(), "config", cfg,
                            "metadata", md, "scope", "organization", "created_at", now, "updated_at", now,
                            "archived_at");
    json_decref(body);
    int e = al_store_put(h->store, AL_KIND_ENVIRONMENT, id, 0, env);
    if (e < 0) {
        json_decref(env);
        api_store_error(r, e);
        return;
    }
    al_log(AL_INFO, "environment.created", AL_STR("environment", id), AL_STR("request_id", r->request_id));
    reply_env(r, 200, env);
}

void h_env_list(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    struct al_list_query q = { .kind = AL_KIND_ENVIRONMENT };

    if (!auth_require_api_key(r) || !api_page_params(r, 20, 100, &q.limit, &q.after_seq) ||
        !api_bool_param(r, "include_archived", false, &q.include_archived))
        return;
    api_reply_list(h, r, &q, api_public);
}

/* Environment reads are open to the environment's own key too. */
void h_env_get(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    if (!auth_require_env(r, r->params[0], true, true))
        return;
    json_t *env = env_load(h, r, r->params[0]);
    if (env)
        reply_env(r, 200, env);
}

void h_env_update(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *body = NULL, *env;
    char why[256];

    if (!auth_require_api_key(r) || al_req_json(r, &body) < 0)
        return;
    if (!body)
        body = json_object();
    if (!check_fields(r, body, false) || !(env = env_load(h, r, r->params[0]))) {
        json_decref(body);
        return;
    }
    if (json_is_string(json_object_get(env, "archived_at"))) {
        al_reply_error(r, 400, "invalid_request_error", "environment_archived", "an archived environment cannot be updated");
        goto done;
    }
    json_t *cfg_in = json_object_get(body, "config");
    if (cfg_in && !json_is_null(cfg_in)) {
        json_t *cfg = config_normalise(cfg_in, why, sizeof(why));
        if (!cfg) {
            al_reply_error(r, 400, "invalid_request_error", "invalid_config", "%s", why);
            goto done;
        }
        if (!json_equal(json_object_get(cfg, "type"), json_object_get(json_object_get(env, "config"), "type"))) {
            json_decref(cfg);
            al_reply_error(r, 400, "invalid_request_error", "invalid_config_type_change",
                           "config.type of an environment cannot change");
            goto done;
        }
        json_object_set_new(env, "config", cfg);
    }
    if (json_object_get(body, "name"))
        json_object_set(env, "name", json_object_get(body, "name"));
    if (json_object_get(body, "description"))
        json_object_set(env, "description", json_object_get(body, "description"));
    if (json_object_get(body, "metadata")) {
        json_t *md = json_object_get(env, "metadata");
        json_metadata_patch(md, json_object_get(body, "metadata"));
        if (json_object_size(md) > 16) {
            al_reply_error(r, 400, "invalid_request_error", "invalid_metadata", "metadata may have at most 16 keys");
            goto done;
        }
    }
    json_object_set_new(env, "updated_at", json_string_nocheck(al_rfc3339(al_now_us(), (char[AL_RFC3339_MAX]){ 0 })));
    int e = al_store_put(h->store, AL_KIND_ENVIRONMENT, r->params[0], 0, env);
    if (e < 0) {
        api_store_error(r, e);
        goto done;
    }
    reply_env(r, 200, json_incref(env));
done:
    json_decref(env);
    json_decref(body);
}

void h_env_archive(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *env;
    if (!auth_require_api_key(r) || !(env = env_load(h, r, r->params[0])))
        return;
    if (!json_is_string(json_object_get(env, "archived_at"))) {
        _cleanup_free_ char *now = now_rfc3339();
        json_object_set_new(env, "archived_at", json_string(now));
        json_object_set_new(env, "updated_at", json_string(now));
        int e = al_store_put(h->store, AL_KIND_ENVIRONMENT, r->params[0], 0, env);
        if (e < 0) {
            json_decref(env);
            api_store_error(r, e);
            return;
        }
    }
    reply_env(r, 200, env);
}

void h_env_delete(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *env;
    if (!auth_require_api_key(r) || !(env = env_load(h, r, r->params[0])))
        return;
    json_decref(env);
    static const char *const live[] = { "idle", "running", "rescheduling", NULL };
    struct al_list_query q = { .kind = AL_KIND_SESSION, .parent = r->params[0], .statuses = live, .limit = 1 };
    json_t *found = json_array();
    int64_t next;
    int e = al_store_list(h->store, &q, found, &next);
    size_t n = json_array_size(found);
    json_decref(found);
    if (e < 0) {
        api_store_error(r, e);
        return;
    }
    if (n > 0) {
        al_reply_error(r, 400, "invalid_request_error", "environment_in_use",
                       "the environment has live sessions; archive or delete them first");
        return;
    }
    e = al_store_delete(h->store, AL_KIND_ENVIRONMENT, r->params[0]);
    if (e < 0) {
        api_store_error(r, e);
        return;
    }
    al_log(AL_INFO, "environment.deleted", AL_STR("environment", r->params[0]));
    al_reply_json(r, 200, json_pack("{s:s, s:s}", "id", r->params[0], "type", "environment_deleted"));
}

/* An environment key as the API shows it: no digest, no internal kind. */
static json_t *key_public(json_t *key)
{
    key = api_public(key);
    json_object_del(key, "kind");
    return key;
}

void h_env_key_create(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *env, *obj = NULL;
    if (!auth_require_api_key(r) || !(env = env_load(h, r, r->params[0])))
        return;
    bool archived = json_is_string(json_object_get(env, "archived_at"));
    json_decref(env);
    if (archived) {
        al_reply_error(r, 400, "invalid_request_error", "environment_archived", "the environment is archived");
        return;
    }
    char *secret = auth_issue_env_key(h, r->params[0], &obj);
    if (!secret) {
        api_store_error(r, -EIO);
        return;
    }
    obj = key_public(obj);
    json_object_set_new(obj, "key", json_string(secret));
    explicit_bzero(secret, strlen(secret));
    free(secret);
    al_log(AL_INFO, "environment_key.created", AL_STR("environment", r->params[0]),
           AL_STR("key_id", json_string_value(json_object_get(obj, "id"))));
    al_reply_json(r, 200, obj);
}

void h_env_key_list(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *env;
    struct al_list_query q = { .kind = AL_KIND_CREDENTIAL, .include_archived = true };
    static const char *const kinds[] = { "environment_key", NULL };

    if (!auth_require_api_key(r) || !api_page_params(r, 20, 100, &q.limit, &q.after_seq) ||
        !(env = env_load(h, r, r->params[0])))
        return;
    json_decref(env);
    q.parent = r->params[0];
    q.statuses = kinds;
    api_reply_list(h, r, &q, key_public);
}

void h_env_key_revoke(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *key = NULL;
    if (!auth_require_api_key(r))
        return;
    int e = al_store_get(h->store, AL_KIND_CREDENTIAL, r->params[1], 0, &key);
    if (e == -ENOENT || (e == 0 && (strcmp(json_string_value(json_object_get(key, "kind")) ?: "", "environment_key") ||
                                    strcmp(json_string_value(json_object_get(key, "environment_id")) ?: "", r->params[0])))) {
        json_decref(key);
        api_not_found(r, "environment_key");
        return;
    }
    if (e < 0) {
        api_store_error(r, e);
        return;
    }
    if (!json_is_string(json_object_get(key, "revoked_at"))) {
        _cleanup_free_ char *now = now_rfc3339();
        json_object_set_new(key, "revoked_at", json_string(now));
        e = al_store_put(h->store, AL_KIND_CREDENTIAL, r->params[1], 0, key);
        if (e < 0) {
            json_decref(key);
            api_store_error(r, e);
            return;
        }
        auth_forget(h, json_string_value(json_object_get(key, "_hash")));
        al_log(AL_INFO, "environment_key.revoked", AL_STR("key_id", r->params[1]));
    }
    al_reply_json(r, 200, key_public(key));
}
