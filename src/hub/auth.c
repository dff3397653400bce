/* SPDX-License-Identifier: Apache-2.0 */
/* Credentials (spec §1.4): the API key, environment keys and per-item
 * sessions tokens. Secrets are random (256 bits), stored only as SHA-256
 * digests, compared in constant time, and never logged. A credential used
 * outside its scope gets the same 404 as a resource that does not exist. */
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/map.h"
#include "../lib/base/util.h"
#include "../lib/tls/crypto.h"
#include "hub.h"

#define SESSION_TOKEN_TTL_US (24LL * 3600 * 1000000)
#define CRED_CACHE_MAX       100000

/* Credentials already verified against the store, by SHA-256 hex, so that
 * a worker's every request is not a store lookup. Revocation removes the
 * entry (auth_forget); tokens carry their expiry. */
struct cred {
    enum principal_kind kind;
    char *environment_id, *session_id, *work_id;
    int64_t expires_us;   /* 0 = never */
};

static bool cred_free(const char *key, void *value, void *ud)
{
    struct cred *c = value;
    free(c->environment_id);
    free(c->session_id);
    free(c->work_id);
    free(c);
    return true;
}

void auth_cache_free(struct hub *h)
{
    if (h->creds)
        al_map_sweep(h->creds, cred_free, NULL);
    h->creds = al_map_free(h->creds);
}

void auth_forget(struct hub *h, const char *hash_hex)
{
    struct cred *c = h->creds ? al_map_remove(h->creds, hash_hex) : NULL;
    if (c)
        cred_free(NULL, c, NULL);
}

static struct principal *principal_of(const struct cred *c)
{
    struct principal *p = al_xcalloc(1, sizeof(*p));
    p->kind = c->kind;
    p->environment_id = al_xstrdup(c->environment_id);
    if (c->kind == PRINCIPAL_SESSION_TOKEN) {
        p->session_id = al_xstrdup(c->session_id);
        p->work_id = al_xstrdup(c->work_id);
    }
    return p;
}

/* Looks hex up in the store; on success caches and returns the credential. */
static const struct cred *cred_load(struct hub *h, const char *hex)
{
    json_t *obj = NULL;
    struct cred *c = NULL;

    if (al_store_credential_by_hash(h->store, hex, &obj) < 0)
        return NULL;
    const char *stored = json_string_value(json_object_get(obj, "_hash"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    bool revoked = json_is_string(json_object_get(obj, "revoked_at"));
    if (stored && kind && strlen(stored) == strlen(hex) && al_ct_equal(stored, hex, strlen(hex)) && !revoked) {
        c = al_xcalloc(1, sizeof(*c));
        c->kind = !strcmp(kind, "environment_key") ? PRINCIPAL_ENV_KEY : PRINCIPAL_SESSION_TOKEN;
        c->environment_id = al_xstrdup(json_string_value(json_object_get(obj, "environment_id")) ?: "");
        c->session_id = al_xstrdup(json_string_value(json_object_get(obj, "session_id")) ?: "");
        c->work_id = al_xstrdup(json_string_value(json_object_get(obj, "work_id")) ?: "");
        c->expires_us = json_integer_value(json_object_get(obj, "_expires_us"));
        if (!h->creds)
            h->creds = al_map_new();
        if (al_map_size(h->creds) >= CRED_CACHE_MAX) {
            auth_cache_free(h);   /* start over rather than track recency */
            h->creds = al_map_new();
        }
        al_map_put(h->creds, hex, c);
    }
    json_decref(obj);
    return c;
}

void principal_free(struct principal *p)
{
    if (!p)
        return;
    free(p->environment_id);
    free(p->session_id);
    free(p->work_id);
    free(p);
}

static const char *credential_of(struct al_req *r)
{
    const char *a = al_req_header(r, "Authorization");
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ')
            a++;
        return *a ? a : NULL;
    }
    const char *k = al_req_header(r, "x-api-key");
    return k && *k ? k : NULL;
}

bool auth_authenticate(struct hub *h, struct al_req *r)
{
    const char *cred = credential_of(r);
    unsigned char d[AL_SHA256_LEN];
    char hex[2 * AL_SHA256_LEN + 1];
    struct principal *p;

    if (!cred) {
        h->m.auth_failures++;
        al_reply_error(r, 401, "authentication_error", "missing_credential",
                       "no credential: send Authorization: Bearer <key> or x-api-key");
        return false;
    }
    al_sha256(cred, strlen(cred), d);
    if (al_ct_equal(d, h->api_key_hash, sizeof(d))) {
        p = al_xcalloc(1, sizeof(*p));
        p->kind = PRINCIPAL_API_KEY;
        r->auth = p;
        return true;
    }
    al_hex(d, sizeof(d), hex);
    const struct cred *c = h->creds ? al_map_get(h->creds, hex) : NULL;
    if (!c)
        c = cred_load(h, hex);
    if (c && (c->expires_us == 0 || c->expires_us > al_now_us())) {
        r->auth = principal_of(c);
        return true;
    }
    h->m.auth_failures++;
    al_log(AL_INFO, "auth.rejected", AL_STR("request_id", r->request_id), AL_STR("path", r->path));
    al_reply_error(r, 401, "authentication_error", "invalid_credential", "invalid or revoked credential");
    return false;
}

bool auth_require_api_key(struct al_req *r)
{
    struct principal *p = r->auth;
    if (p->kind == PRINCIPAL_API_KEY)
        return true;
    al_reply_error(r, 403, "permission_error", "permission_denied",
                   "this operation needs the API key; the credential presented is scoped to %s",
                   p->kind == PRINCIPAL_ENV_KEY ? "one environment" : "one session");
    return false;
}

bool auth_require_env(struct al_req *r, const char *environment_id, bool api_key_ok, bool token_ok)
{
    struct principal *p = r->auth;
    switch (p->kind) {
    case PRINCIPAL_API_KEY:
        if (api_key_ok)
            return true;
        al_reply_error(r, 403, "permission_error", "permission_denied",
                       "this operation takes an environment key, not the API key");
        return false;
    case PRINCIPAL_ENV_KEY:
        if (!strcmp(p->environment_id, environment_id))
            return true;
        break;
    case PRINCIPAL_SESSION_TOKEN:
        if (token_ok && !strcmp(p->environment_id, environment_id))
            return true;
        break;
    default:
        break;
    }
    api_not_found(r, "environment");
    return false;
}

bool auth_require_session(struct al_req *r, const char *session_id, const char *environment_id)
{
    struct principal *p = r->auth;
    switch (p->kind) {
    case PRINCIPAL_API_KEY:
        return true;
    case PRINCIPAL_ENV_KEY:
        if (environment_id && !strcmp(p->environment_id, environment_id))
            return true;
        break;
    case PRINCIPAL_SESSION_TOKEN:
        if (!strcmp(p->session_id, session_id))
            return true;
        break;
    default:
        break;
    }
    api_not_found(r, "session");
    return false;
}

static char *issue(struct hub *h, const char *prefix, json_t *obj)
{
    char *secret = al_secret_new(prefix);
    char hex[2 * AL_SHA256_LEN + 1];
    al_sha256_hex(secret, hex);
    json_object_set_new(obj, "_hash", json_string(hex));
    int r = al_store_put(h->store, AL_KIND_CREDENTIAL, json_string_value(json_object_get(obj, "id")), 0, obj);
    if (r < 0) {
        free(secret);
        return NULL;
    }
    return secret;
}

char *auth_issue_env_key(struct hub *h, const char *environment_id, json_t **ret_obj)
{
    _cleanup_free_ char *id = al_id_new("ekey"), *now = now_rfc3339();
    json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:n}", "type", "environment_key", "id", id, "kind",
                            "environment_key", "environment_id", environment_id, "created_at", now, "revoked_at");
    char *secret = issue(h, "al-env-", obj);
    if (secret && ret_obj)
        *ret_obj = json_incref(obj);
    json_decref(obj);
    return secret;
}

char *auth_issue_session_token(struct hub *h, const char *environment_id, const char *session_id,
                               const char *work_id)
{
    _cleanup_free_ char *id = al_id_new("stok"), *now = now_rfc3339();
    json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "type", "sessions_token", "id", id, "kind",
                            "sessions_token", "environment_id", environment_id, "session_id", session_id,
                            "work_id", work_id, "created_at", now, "_expires_us",
                            (json_int_t) (al_now_us() + SESSION_TOKEN_TTL_US));
    char *secret = issue(h, "al-req-", obj);
    json_decref(obj);
    return secret;
}
