/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the API handlers: timestamps, public views of stored
 * objects, metadata rules, pagination cursors, common error replies. */
#include <stdio.h>
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "hub.h"

char *now_rfc3339(void)
{
    char buf[AL_RFC3339_MAX];
    return al_xstrdup(al_rfc3339(al_now_us(), buf));
}

json_t *api_public(json_t *obj)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;

    json_object_foreach(obj, k, v)
        if (k[0] != '_')
            json_object_set(out, k, v);
    json_decref(obj);
    return out;
}

void json_metadata_patch(json_t *md, json_t *patch)
{
    const char *k;
    json_t *v;

    json_object_foreach(patch, k, v) {
        if (json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
            json_object_del(md, k);
        else
            json_object_set(md, k, v);
    }
}

char *page_token(int64_t seq)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "page_%lld", (long long) seq);
    return al_b64url_encode(buf, strlen(buf));
}

static int page_parse(const char *tok, int64_t *ret)
{
    unsigned char *dec = NULL;
    size_t n = 0;
    int r = al_b64_decode(tok, strlen(tok), &dec, &n);
    if (r < 0)
        return r;
    if (n < 6 || memcmp(dec, "page_", 5) != 0)
        r = -EINVAL;
    else
        r = al_parse_i64((const char *) dec + 5, 1, INT64_MAX, ret);
    free(dec);
    return r;
}

bool api_page_params(struct al_req *r, int def, int max, int *ret_limit, int64_t *ret_after)
{
    const char *limit = al_query_get(&r->query, "limit"), *page = al_query_get(&r->query, "page");
    int64_t v = def;

    if (limit && al_parse_i64(limit, 1, max, &v) < 0) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_parameter", "limit: must be an integer from 1 to %d",
                       max);
        return false;
    }
    *ret_limit = (int) v;
    *ret_after = 0;
    if (page && *page && page_parse(page, ret_after) < 0) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_parameter", "page: not a cursor this API issued");
        return false;
    }
    return true;
}

json_t *api_page(json_t *data, int64_t next)
{
    json_t *out = json_object();
    json_object_set_new(out, "data", data);
    if (next) {
        _cleanup_free_ char *tok = page_token(next);
        json_object_set_new(out, "next_page", json_string(tok));
    } else
        json_object_set_new(out, "next_page", json_null());
    return out;
}

bool api_bool_param(struct al_req *r, const char *name, bool def, bool *ret)
{
    const char *v = al_query_get(&r->query, name);
    if (!v) {
        *ret = def;
        return true;
    }
    if (!strcmp(v, "true") || !strcmp(v, "1")) {
        *ret = true;
        return true;
    }
    if (!strcmp(v, "false") || !strcmp(v, "0")) {
        *ret = false;
        return true;
    }
    al_reply_error(r, 400, "invalid_request_error", "invalid_parameter", "%s: must be true or false", name);
    return false;
}

void api_bad_field(struct al_req *r, const char *field, const char *why)
{
    al_reply_error(r, 400, "invalid_request_error", "invalid_request", "%s: %s", field, why);
}

void api_store_error(struct al_req *r, int err)
{
    al_log(AL_ERROR, "store.failed", AL_ERR(err), AL_STR("request_id", r->request_id));
    al_reply_error(r, err == -ENOSPC ? 507 : 500, "api_error", "store_error", "the store could not complete the request");
}

void api_not_found(struct al_req *r, const char *what)
{
    char code[64];
    snprintf(code, sizeof(code), "%s_not_found", what);
    al_reply_error(r, 404, "not_found_error", code, "%s not found", what);
}

json_t *api_list(struct hub *h, struct al_req *r, const struct al_list_query *q, json_t *(*view)(json_t *))
{
    json_t *data = json_array(), *v;
    int64_t next = 0;
    size_t i;
    int e = al_store_list(h->store, q, data, &next);

    if (e < 0) {
        json_decref(data);
        api_store_error(r, e);
        return NULL;
    }
    if (view)
        json_array_foreach(data, i, v) json_array_set_new(data, i, view(json_incref(v)));
    return api_page(data, next);
}

void api_reply_list(struct hub *h, struct al_req *r, const struct al_list_query *q, json_t *(*view)(json_t *))
{
    json_t *page = api_list(h, r, q, view);
    if (page)
        al_reply_json(r, 200, page);
}

bool api_known_fields(struct al_req *r, json_t *body, const char *const *allowed)
{
    const char *k;
    json_t *v;

    if (!json_is_object(body)) {
        api_bad_field(r, "body", "must be a JSON object");
        return false;
    }
    json_object_foreach(body, k, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(k, allowed[i]);
        if (!ok) {
            api_bad_field(r, k, "unknown field");
            return false;
        }
    }
    return true;
}

int api_finish_tx(struct hub *h, struct al_req *r, int e)
{
    e = hub_tx_end(h, e);
    if (e < 0)
        api_store_error(r, e);
    return e;
}

bool api_begin(struct hub *h, struct al_req *r)
{
    int e = hub_pass_begin(h);
    if (e < 0) {
        api_store_error(r, e);
        return false;
    }
    return auth_authenticate(h, r);
}
