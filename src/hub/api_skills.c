/* SPDX-License-Identifier: Apache-2.0 */
/* Skills (spec §7): created from an uploaded zip or tar archive, which is
 * checked with the worker's member rules before it is stored; versions are
 * immutable; the content endpoint returns the archive as uploaded. */
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "hub.h"
#include "../lib/archive/skill_archive.h"

static bool archive_type_ok(struct al_req *r)
{
    const char *ct = al_req_header(r, "Content-Type");
    static const char *const ok[] = { "application/zip", "application/x-tar", "application/gzip", "application/x-gzip",
                                      "application/octet-stream", "application/x-xz", "application/zstd", NULL };
    if (!ct)
        return true;
    for (size_t i = 0; ok[i]; i++)
        if (!strncasecmp(ct, ok[i], strlen(ok[i])))
            return true;
    al_reply_error(r, 415, "invalid_request_error", "unsupported_media_type",
                   "upload the skill as a zip or tar archive (Content-Type application/zip or application/x-tar)");
    return false;
}

/* A worker names the skill's directory after it, so it must be a plain
 * file name. */
static bool skill_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64 || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    for (const unsigned char *p = (const unsigned char *) name; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\')
            return false;
    return true;
}

/* Validates the uploaded archive; on success stores a new version of skill
 * (creating the skill when it is NULL) and replies. */
static void create_version(struct hub *h, struct al_req *r, json_t *skill)
{
    size_t n;
    const unsigned char *data = al_req_body(r, &n);
    struct al_skill_info info = { 0 };
    json_t *ver = NULL;
    _cleanup_free_ char *now = NULL, *skill_id = NULL, *key = NULL;
    bool created = !skill;

    if (!archive_type_ok(r))
        return;
    if (n == 0) {
        api_bad_field(r, "body", "the skill archive is required");
        return;
    }
    if (n > AL_SKILL_ARCHIVE_MAX) {
        al_reply_error(r, 413, "invalid_request_error", "request_too_large", "skill archives are limited to %u bytes",
                       AL_SKILL_ARCHIVE_MAX);
        return;
    }
    int e = al_skill_archive_inspect(data, n, &info);
    if (e < 0) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_skill_archive", "%s",
                       info.error[0] ? info.error : "not a readable zip or tar archive");
        goto out;
    }
    if (!skill_name_valid(info.name)) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_skill_archive",
                       "SKILL.md needs a \"name:\" of 1 to 64 characters without slashes or line breaks");
        goto out;
    }
    now = now_rfc3339();
    if (created) {
        const char *title = al_query_get(&r->query, "display_title");
        skill_id = al_id_new("skill");
        skill = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "skill", "id", skill_id, "display_title",
                          title && *title ? title : info.name, "source", "custom", "created_at", now, "updated_at", now);
    } else
        skill_id = al_xstrdup(json_string_value(json_object_get(skill, "id")));
    /* Version ids are decimal microsecond timestamps, strictly increasing. */
    int64_t vnum = al_now_us();
    const char *prev = json_string_value(json_object_get(skill, "latest_version"));
    int64_t pv = 0;
    if (prev && al_parse_i64(prev, 0, INT64_MAX, &pv) == 0 && pv >= vnum)
        vnum = pv + 1;
    char vid[32];
    snprintf(vid, sizeof(vid), "%lld", (long long) vnum);
    key = al_xasprintf("%s/%s", skill_id, vid);
    ver = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s, s:I, s:I}", "type", "skill_version", "id", vid,
                    "skill_id", skill_id, "name", info.name, "description", info.description, "directory",
                    info.directory, "version", vid, "created_at", now, "size_bytes", (json_int_t) n,
                    "excluded_members", (json_int_t) info.excluded);
    json_object_set_new(skill, "latest_version", json_string(vid));
    json_object_set_new(skill, "updated_at", json_string(now));
    e = hub_tx_begin(h);
    if (e == 0)
        e = al_store_put(h->store, AL_KIND_SKILL, skill_id, 0, skill);
    if (e == 0)
        e = al_store_put(h->store, AL_KIND_SKILL_VERSION, key, 0, ver);
    if (e == 0)
        e = al_store_blob_put(h->store, key, data, n);
    if (api_finish_tx(h, r, e) < 0)
        goto out;
    al_log(AL_INFO, "skill.version_created", AL_STR("skill", skill_id), AL_STR("version", vid),
           AL_U64("bytes", n), AL_U64("excluded", info.excluded));
    al_reply_json(r, 200, created ? json_incref(skill) : TAKE_PTR(ver));
out:
    if (created)
        json_decref(skill);
    json_decref(ver);
    al_skill_info_done(&info);
}

void h_skill_create(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    if (auth_require_api_key(r))
        create_version(h, r, NULL);
}

static json_t *skill_load(struct hub *h, struct al_req *r)
{
    json_t *s = NULL;
    int e = al_store_get(h->store, AL_KIND_SKILL, r->params[0], 0, &s);
    if (e == -ENOENT)
        api_not_found(r, "skill");
    else if (e < 0)
        api_store_error(r, e);
    return e < 0 ? NULL : s;
}

void h_skill_version_create(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *s;
    if (!auth_require_api_key(r) || !(s = skill_load(h, r)))
        return;
    create_version(h, r, s);
    json_decref(s);
}

void h_skill_list(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    struct al_list_query q = { .kind = AL_KIND_SKILL, .desc = true };
    if (!auth_require_api_key(r) || !api_page_params(r, 20, 100, &q.limit, &q.after_seq))
        return;
    api_reply_list(h, r, &q, NULL);
}

/* Skills are readable with any valid credential: workers download the
 * skills of the sessions they serve with their environment key or token. */
void h_skill_get(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *s = skill_load(h, r);
    if (s)
        al_reply_json(r, 200, s);
}

void h_skill_version_list(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    struct al_list_query q = { .kind = AL_KIND_SKILL_VERSION, .desc = true };
    json_t *s;
    if (!api_page_params(r, 20, 100, &q.limit, &q.after_seq) || !(s = skill_load(h, r)))
        return;
    json_decref(s);
    q.parent = r->params[0];
    api_reply_list(h, r, &q, NULL);
}

/* Resolves params[1] ("latest" or a version id) to the stored version. */
static json_t *version_load(struct hub *h, struct al_req *r, char **ret_key)
{
    json_t *s = skill_load(h, r), *v = NULL;
    if (!s)
        return NULL;
    const char *ver = r->params[1];
    if (!strcmp(ver, "latest"))
        ver = json_string_value(json_object_get(s, "latest_version"));
    char *key = al_xasprintf("%s/%s", r->params[0], ver ? ver : "");
    int e = al_store_get(h->store, AL_KIND_SKILL_VERSION, key, 0, &v);
    json_decref(s);
    if (e < 0) {
        free(key);
        if (e == -ENOENT)
            api_not_found(r, "skill_version");
        else
            api_store_error(r, e);
        return NULL;
    }
    *ret_key = key;
    return v;
}

void h_skill_version_get(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    _cleanup_free_ char *key = NULL;
    json_t *v = version_load(h, r, &key);
    if (v)
        al_reply_json(r, 200, v);
}

void h_skill_version_content(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    _cleanup_free_ char *key = NULL;
    json_t *v = version_load(h, r, &key);
    void *data = NULL;
    size_t n = 0;
    if (!v)
        return;
    json_decref(v);
    int e = al_store_blob_get(h->store, key, &data, &n);
    if (e < 0) {
        api_store_error(r, e);
        return;
    }
    const unsigned char *b = data;
    const char *ct = n >= 4 && !memcmp(b, "PK\x03\x04", 4) ? "application/zip" : "application/x-tar";
    al_reply_bytes(r, 200, ct, data, n);
    free(data);
}
