/* SPDX-License-Identifier: Apache-2.0 */
/* One claimed work item (spec §8.2, §8.3): the per-item credential, the
 * lease heartbeat (started before anything else), the session fetch, the
 * session directories and runner, the skills, the session's tool loop, and
 * the teardown: skill removal, runner close, heartbeats stopped, then a
 * force-stop unless the lease was lost. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "wk.h"

#define HEARTBEAT_DEFAULT_MS 30000
#define HEARTBEAT_TTL_DEFAULT_MS 90000
#define SKILL_MAX_BYTES (64u << 20)
#define HELPER "environments-worker"

enum phase { PH_SESSION, PH_SKILLS, PH_RUN, PH_CLEANUP, PH_STOP, PH_DONE };

static void teardown(struct wk_item *it);
static void next_skill(struct wk_item *it);
static void beat(struct wk_item *it);

/* Ids go into URL paths: only the characters real ids use. */
static bool safe_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || s[i] == '-' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

/* --- lease ---------------------------------------------------------------- */

static bool lease_lost(const struct wk_item *it)
{
    return it->lease == LEASE_LOST || it->lease == LEASE_ASSUMED_LOST;
}

/* Records why heartbeating ends (the first reason wins) and ends the item. */
static void lease_finish(struct wk_item *it, enum wk_lease_end why)
{
    if (it->lease == LEASE_HELD)
        it->lease = why;
    if (it->hb_timer)
        evtimer_del(it->hb_timer);
    if (it->hb_cutoff)
        evtimer_del(it->hb_cutoff);
    wk_call_cancel(it->hb_call);
    it->hb_call = NULL;
    if (why != LEASE_RUNNER_DONE)
        wk_item_finish(it, why);
}

static void schedule_beat(struct wk_item *it)
{
    struct timeval tv = { .tv_sec = it->hb_interval_ms / 1000, .tv_usec = (it->hb_interval_ms % 1000) * 1000 };
    evtimer_add(it->hb_timer, &tv);
}

static void on_beat(const struct wk_resp *r, void *ud)
{
    struct wk_item *it = ud;

    it->hb_call = NULL;
    evtimer_del(it->hb_cutoff);
    if (r->err == 0 && r->status == 200 && json_is_object(r->json)) {
        const char *last = json_string_value(json_object_get(r->json, "last_heartbeat"));
        const char *state = json_string_value(json_object_get(r->json, "state"));
        json_t *ttl = json_object_get(r->json, "ttl_seconds");

        it->last_success_us = al_mono_us();
        if (last) {
            free(it->last_heartbeat);
            it->last_heartbeat = al_xstrdup(last);
        }
        if (json_is_number(ttl) && json_number_value(ttl) > 0) {
            it->ttl_ms = (int64_t) (json_number_value(ttl) * 1000);
            it->hb_interval_ms = AL_MAX(1000, AL_MIN(it->ttl_ms / 2, HEARTBEAT_DEFAULT_MS));
            wk_session_set_retry_window(it->sess, it->ttl_ms);
        }
        if (state && (!strcmp(state, "stopping") || !strcmp(state, "stopped"))) {
            al_log(AL_INFO, "heartbeat signals shutdown", AL_STR("work_id", it->work_id), AL_STR("state", state));
            lease_finish(it, LEASE_HEARTBEAT_STOP);
            return;
        }
        if (!json_is_true(json_object_get(r->json, "lease_extended"))) {
            al_log(AL_WARN, "lease not extended, shutting down", AL_STR("work_id", it->work_id));
            lease_finish(it, LEASE_HEARTBEAT_STOP);
            return;
        }
        schedule_beat(it);
        return;
    }
    _cleanup_free_ char *why = wk_resp_describe(r);
    if (r->err == 0 && r->status == 412) {
        json_t *cur = json_object_get(json_object_get(json_object_get(r->json, "error"), "details"), "current_state");
        al_log(AL_ERROR, "lease lost: heartbeat precondition failed", AL_STR("work_id", it->work_id),
               AL_STR("server_state", json_string_value(json_object_get(cur, "state"))),
               AL_STR("server_last_heartbeat", json_string_value(json_object_get(cur, "last_heartbeat"))));
        lease_finish(it, LEASE_LOST);
        return;
    }
    if (r->err == 0 && wk_fatal_4xx(r->status)) {
        al_log(AL_ERROR, "permanent heartbeat failure", AL_STR("work_id", it->work_id), AL_STR("error", why));
        lease_finish(it, LEASE_REJECTED);
        return;
    }
    if ((al_mono_us() - it->last_success_us) / 1000 > it->ttl_ms) {
        al_log(AL_ERROR, "lease assumed lost: no successful heartbeat in ttl", AL_STR("work_id", it->work_id),
               AL_I64("ttl_ms", it->ttl_ms), AL_STR("error", why));
        lease_finish(it, LEASE_ASSUMED_LOST);
        return;
    }
    al_log(AL_WARN, "transient heartbeat failure", AL_STR("work_id", it->work_id), AL_STR("error", why));
    schedule_beat(it);
}

/* A heartbeat is cut off after one interval so a hung call cannot outlive
 * the lease it renews. */
static void on_cutoff(evutil_socket_t fd, short what, void *ud)
{
    struct wk_item *it = ud;
    struct wk_resp r = { .err = -ETIMEDOUT };

    wk_call_cancel(it->hb_call);
    it->hb_call = NULL;
    on_beat(&r, it);
}

static void beat(struct wk_item *it)
{
    char *esc = curl_easy_escape(NULL, it->last_heartbeat, 0);
    _cleanup_free_ char *url = wk_url(it->api_base, "/v1/environments/%s/work/%s/heartbeat?expected_last_heartbeat=%s",
                                      it->env_id, it->work_id, esc ? esc : "");
    struct wk_call_opts o = { .method = "POST", .url = url, .bearer = it->cred, .helper = HELPER, .max_retries = -1 };
    struct timeval tv = { .tv_sec = it->hb_interval_ms / 1000, .tv_usec = (it->hb_interval_ms % 1000) * 1000 };

    curl_free(esc);
    it->hb_call = wk_call(it->w, &o, on_beat, it);
    if (!it->hb_call) {
        struct wk_resp r = { .err = -EINVAL };
        on_beat(&r, it);
        return;
    }
    evtimer_add(it->hb_cutoff, &tv);
}

static void on_hb_timer(evutil_socket_t fd, short what, void *ud)
{
    beat(ud);
}

/* --- session directories -------------------------------------------------- */

static int mkdir_p(const char *path)
{
    _cleanup_free_ char *p = al_xstrdup(path);

    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

uid_t wk_session_uid(const char *session_id)
{
    uint32_t h = 2166136261u;

    if (geteuid() != 0)
        return getuid();
    /* FNV-1a of the id into a 2^20 range far above real users: a session
     * keeps its uid (and its files) across work items; two sessions share
     * one only on a hash collision, which weakens nothing but RLIMIT_NPROC. */
    for (const char *p = session_id; *p; p++) {
        h ^= (unsigned char) *p;
        h *= 16777619u;
    }
    return (uid_t) (0x40000000u + (h & 0xfffffu));
}

/* The session's directories, owned by its sandbox uid. ROOT and
 * ROOT/sessions/<id> are 0711: the sandbox may pass through them to its
 * own directories, but list nothing. */
static int make_dirs(struct wk_item *it)
{
    const char *root = it->w->cfg.root;
    _cleanup_free_ char *sessions = al_xasprintf("%s/sessions", root);
    _cleanup_free_ char *mine = al_xasprintf("%s/sessions/%s", root, it->session_id);
    uid_t uid = wk_session_uid(it->session_id);
    bool root_user = geteuid() == 0;
    int r;

    it->workdir = al_xasprintf("%s/workspace", mine);
    it->outputs = al_xasprintf("%s/outputs", mine);
    it->tmpdir = al_xasprintf("%s/tmp", mine);
    if ((r = mkdir_p(it->workdir)) < 0 || (r = mkdir_p(it->outputs)) < 0 || (r = mkdir_p(it->tmpdir)) < 0)
        return r;
    if (it->w->isolation && (chmod(root, 0711) < 0 || chmod(sessions, 0711) < 0 || chmod(mine, 0711) < 0))
        return -errno;
    if (root_user && it->w->isolation) {
        const char *own[] = { it->workdir, it->outputs, it->tmpdir };
        for (size_t i = 0; i < AL_ELEMENTSOF(own); i++)
            if (chown(own[i], uid, uid) < 0)
                return -errno;
    }
    return 0;
}

/* --- skills (spec §7) ----------------------------------------------------- */

/* The directory a skill lands in: the basename of its trimmed name, or its
 * id when that is empty, "." or "..". Only a plain single component is
 * used; anything else falls back to the id. */
static char *skill_dirname(const char *name, const char *skill_id)
{
    _cleanup_free_ char *t = al_xstrdup(name ? name : "");
    char *b = t, *e, *slash;

    while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r')
        b++;
    e = b + strlen(b);
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    while (e > b && e[-1] == '/')
        *--e = '\0';
    slash = strrchr(b, '/');
    if (slash)
        b = slash + 1;
    if (!*b || !strcmp(b, ".") || !strcmp(b, ".."))
        return al_xstrdup(skill_id);
    for (const char *p = b; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f || *p == '\\')
            return al_xstrdup(skill_id);
    return al_xstrdup(b);
}

static void skill_failed(struct wk_item *it, const char *skill_id, const char *why)
{
    al_log(AL_WARN, "failed to download skill", AL_STR("component", "agent-tool-context"),
           AL_STR("skill_id", skill_id), AL_STR("error", why));
    it->skill_i++;
    next_skill(it);
}

static void on_skill_installed(const struct wk_runner_reply *rep, void *ud)
{
    struct wk_item *it = ud;
    json_t *sk = json_array_get(it->skills, it->skill_i);
    const char *skill_id = json_string_value(json_object_get(sk, "skill_id"));

    if (rep->err < 0 || rep->is_error) {
        skill_failed(it, skill_id, rep->err < 0 ? "the tool runner exited" : rep->text);
        return;
    }
    json_array_append_new(it->installed, json_string(it->skill_dir));
    al_log(AL_INFO, "downloaded skill", AL_STR("component", "agent-tool-context"), AL_STR("skill_id", skill_id),
           AL_STR("dir", it->skill_dir));
    it->skill_i++;
    next_skill(it);
}

static void on_skill_content(const struct wk_resp *r, void *ud)
{
    struct wk_item *it = ud;
    json_t *sk = json_array_get(it->skills, it->skill_i);
    const char *skill_id = json_string_value(json_object_get(sk, "skill_id"));

    it->call = NULL;
    if (r->err < 0 || r->status != 200) {
        _cleanup_free_ char *why = wk_resp_describe(r);
        skill_failed(it, skill_id, why);
        return;
    }
    wk_runner_skill_install(it->runner, it->skill_dir, r->body, r->len, on_skill_installed, it);
}

static void on_skill_version(const struct wk_resp *r, void *ud)
{
    struct wk_item *it = ud;
    json_t *sk = json_array_get(it->skills, it->skill_i);
    const char *skill_id = json_string_value(json_object_get(sk, "skill_id"));

    it->call = NULL;
    const char *vid = r->json ? json_string_value(json_object_get(r->json, "id")) : NULL;
    if (r->err < 0 || r->status != 200 || !safe_id(vid)) {
        _cleanup_free_ char *why = r->status == 200 ? al_xstrdup("malformed skill version") : wk_resp_describe(r);
        skill_failed(it, skill_id, why);
        return;
    }
    free(it->skill_dir);
    it->skill_dir = skill_dirname(json_string_value(json_object_get(r->json, "name")), skill_id);
    _cleanup_free_ char *url = wk_url(it->api_base, "/v1/skills/%s/versions/%s/content", skill_id, vid);
    struct wk_call_opts o = { .url = url, .bearer = it->cred, .helper = HELPER, .max_retries = -1,
                              .accept = "application/binary", .no_beta = true, .max_response = SKILL_MAX_BYTES };
    it->call = wk_call(it->w, &o, on_skill_content, it);
    if (!it->call)
        skill_failed(it, skill_id, "cannot start the download");
}

static void start_session(struct wk_item *it)
{
    it->phase = PH_RUN;
    it->sess = wk_session_start(it);
}

static void next_skill(struct wk_item *it)
{
    if (it->phase != PH_SKILLS)
        return;
    if (it->skill_i >= json_array_size(it->skills)) {
        start_session(it);
        return;
    }
    json_t *sk = json_array_get(it->skills, it->skill_i);
    const char *skill_id = json_string_value(json_object_get(sk, "skill_id"));
    json_t *ver = json_object_get(sk, "version");
    _cleanup_free_ char *vstr = json_is_integer(ver) ? al_xasprintf("%lld", (long long) json_integer_value(ver))
                                                     : al_xstrdup(json_string_value(ver) ? json_string_value(ver) : "latest");
    if (!safe_id(skill_id) || !safe_id(vstr)) {
        skill_failed(it, skill_id ? skill_id : "(none)", "malformed skill reference");
        return;
    }
    _cleanup_free_ char *url = wk_url(it->api_base, "/v1/skills/%s/versions/%s", skill_id, vstr);
    /* The SDK sends no anthropic-beta on skills calls. */
    struct wk_call_opts o = { .url = url, .bearer = it->cred, .helper = HELPER, .max_retries = -1, .no_beta = true };
    it->call = wk_call(it->w, &o, on_skill_version, it);
    if (!it->call)
        skill_failed(it, skill_id, "cannot start the request");
}

/* --- session fetch -------------------------------------------------------- */

static void on_session(const struct wk_resp *r, void *ud)
{
    struct wk_item *it = ud;
    const char *status;
    int e;

    it->call = NULL;
    if (r->err < 0 || r->status != 200 || !json_is_object(r->json)) {
        _cleanup_free_ char *why = wk_resp_describe(r);
        it->failed = true;
        al_log(AL_ERROR, "work item failed", AL_STR("work_id", it->work_id), AL_STR("error", why));
        teardown(it);
        return;
    }
    it->session = json_incref(r->json);
    status = json_string_value(json_object_get(r->json, "status"));
    if (status && !strcmp(status, "terminated")) {
        al_log(AL_INFO, "skipping the work item of a terminated session", AL_STR("session_id", it->session_id),
               AL_STR("work_id", it->work_id));
        teardown(it);
        return;
    }
    e = make_dirs(it);
    if (e < 0) {
        it->failed = true;
        al_log_errno(AL_ERROR, e, "work item failed: cannot create the session directories",
                     AL_STR("work_id", it->work_id));
        teardown(it);
        return;
    }
    it->runner = wk_runner_start(it->w, it->session_id, it->workdir, it->outputs, it->tmpdir);
    if (!it->runner) {
        it->failed = true;
        al_log(AL_ERROR, "work item failed: cannot start the tool runner", AL_STR("work_id", it->work_id));
        teardown(it);
        return;
    }
    json_t *skills = json_object_get(json_object_get(r->json, "agent"), "skills");
    it->skills = json_is_array(skills) ? json_incref(skills) : json_array();
    it->phase = PH_SKILLS;
    it->skill_i = 0;
    next_skill(it);
}

/* --- teardown ------------------------------------------------------------- */

static void on_stopped(const struct wk_resp *r, void *ud)
{
    struct wk_item *it = ud;

    it->call = NULL;
    if (!(r->err == 0 && ((r->status >= 200 && r->status < 300) || r->status == 409))) {
        _cleanup_free_ char *why = wk_resp_describe(r);
        al_log(AL_ERROR, "force-stop on exit failed", AL_STR("work_id", it->work_id), AL_STR("error", why));
    }
    it->phase = PH_DONE;
    event_active(it->defer, EV_TIMEOUT, 0);
}

static void stop_or_release(struct wk_item *it)
{
    it->phase = PH_STOP;
    lease_finish(it, LEASE_RUNNER_DONE);
    if (lease_lost(it)) {
        al_log(AL_INFO, "lease lost; released without stopping it", AL_STR("session_id", it->session_id),
               AL_STR("work_id", it->work_id));
        it->phase = PH_DONE;
        event_active(it->defer, EV_TIMEOUT, 0);
        return;
    }
    _cleanup_free_ char *url = wk_url(it->api_base, "/v1/environments/%s/work/%s/stop", it->env_id, it->work_id);
    json_t *body = json_pack("{s:b}", "force", 1);
    struct wk_call_opts o = { .method = "POST", .url = url, .bearer = it->cred, .body = body, .helper = HELPER,
                              .max_retries = -1 };
    it->call = wk_call(it->w, &o, on_stopped, it);
    json_decref(body);
    if (!it->call) {
        struct wk_resp r = { .err = -EINVAL };
        on_stopped(&r, it);
    }
}

static void on_skill_removed(const struct wk_runner_reply *rep, void *ud)
{
    struct wk_item *it = ud;

    if (rep->err < 0 || rep->is_error)
        al_log(AL_WARN, "skill cleanup failed", AL_STR("session_id", it->session_id), AL_STR("work_id", it->work_id),
               AL_STR("error", rep->err < 0 ? "the tool runner exited" : rep->text));
    json_array_remove(it->installed, 0);
    teardown(it);
}

/* Called again after each step until the item is stopped or released. */
static void teardown(struct wk_item *it)
{
    if (it->phase == PH_STOP || it->phase == PH_DONE)
        return;
    it->phase = PH_CLEANUP;
    wk_call_cancel(it->call);
    it->call = NULL;
    if (it->sess && !wk_session_ended(it->sess)) {
        wk_session_stop(it->sess, it->w->draining);
        return;                          /* wk_item_session_ended comes back here */
    }
    if (it->runner && json_array_size(it->installed) > 0) {
        wk_runner_skill_remove(it->runner, json_string_value(json_array_get(it->installed, 0)), on_skill_removed, it);
        return;
    }
    wk_runner_close(it->runner);
    it->runner = NULL;
    stop_or_release(it);
}

static void on_defer(evutil_socket_t fd, short what, void *ud)
{
    struct wk_item *it = ud;

    if (it->phase == PH_DONE) {
        wk_worker_item_done(it->w, it);
        return;
    }
    teardown(it);
}

void wk_item_session_ended(struct wk_item *it)
{
    /* Out of the session's own callback before anything is freed. */
    event_active(it->defer, EV_TIMEOUT, 0);
}

void wk_item_finish(struct wk_item *it, enum wk_lease_end why)
{
    if (it->lease == LEASE_HELD)
        it->lease = why;
    if (it->phase == PH_STOP || it->phase == PH_DONE)
        return;
    if (it->sess && !wk_session_ended(it->sess)) {
        it->phase = PH_CLEANUP;
        /* A lost lease or a stop request aborts at once; a drain waits. */
        wk_session_stop(it->sess, why == LEASE_RUNNER_DONE && it->w->draining);
        return;
    }
    event_active(it->defer, EV_TIMEOUT, 0);
}

/* --- start ---------------------------------------------------------------- */

void wk_item_start(struct worker *w, json_t *work)
{
    struct wk_item *it = al_xcalloc(1, sizeof(*it));
    json_t *data = json_object_get(work, "data");
    const char *secret = json_string_value(json_object_get(work, "secret"));
    char *tok;

    it->w = w;
    it->work_id = al_xstrdup(json_string_value(json_object_get(work, "id")));
    it->env_id = al_xstrdup(json_string_value(json_object_get(work, "environment_id")) ?: w->cfg.environment_id);
    it->data_type = al_xstrdup(json_string_value(json_object_get(data, "type")) ?: "");
    it->session_id = al_xstrdup(json_string_value(json_object_get(data, "id")) ?: "");
    it->installed = json_array();
    it->hb_interval_ms = HEARTBEAT_DEFAULT_MS;
    it->ttl_ms = HEARTBEAT_TTL_DEFAULT_MS;
    it->last_success_us = al_mono_us();
    it->last_heartbeat = al_xstrdup("NO_HEARTBEAT");
    it->hb_timer = evtimer_new(w->base, on_hb_timer, it);
    it->hb_cutoff = evtimer_new(w->base, on_cutoff, it);
    it->defer = event_new(w->base, -1, 0, on_defer, it);
    it->api_base = al_xstrdup(w->cfg.base_url);
    TAILQ_INSERT_TAIL(&w->items, it, link);
    w->n_items++;

    char *base = NULL;
    tok = wk_secret_decode(secret, &base);
    if (tok) {
        it->cred = tok;
        it->has_token = true;
        if (base && w->cfg.honor_api_base_url) {
            free(it->api_base);
            it->api_base = TAKE_PTR(base);
        }
        free(base);
    } else {
        if (secret && *secret && w->cfg.environment_key)
            al_log(AL_WARN, "work item carried a secret payload but no sessions token could be extracted; "
                            "falling back to the environment key", AL_STR("work_id", it->work_id));
        it->cred = w->cfg.environment_key ? al_xstrdup(w->cfg.environment_key) : NULL;
    }
    if (!safe_id(it->work_id) || !safe_id(it->env_id)) {
        it->failed = true;
        al_log(AL_ERROR, "malformed work item: bad id; dropping it", AL_STR("work_id", it->work_id));
        it->phase = PH_DONE;
        event_active(it->defer, EV_TIMEOUT, 0);
        return;
    }
    if (!it->cred) {
        it->failed = true;
        al_log(AL_ERROR, "work item failed: no sessions token and no environment key", AL_STR("work_id", it->work_id));
        it->phase = PH_DONE;
        event_active(it->defer, EV_TIMEOUT, 0);
        return;
    }
    /* The SDK's heartbeat for a non-session item is aborted before it is
     * sent (docs/PROTOCOL-NOTES.md): ack, then force-stop, nothing between. */
    if (strcmp(it->data_type, "session") != 0) {
        al_log(AL_DEBUG, "skipping non-session work item", AL_STR("work_id", it->work_id),
               AL_STR("type", it->data_type));
        it->phase = PH_CLEANUP;
        event_active(it->defer, EV_TIMEOUT, 0);
        return;
    }
    if (!safe_id(it->session_id)) {
        it->failed = true;
        al_log(AL_ERROR, "malformed work item: bad session id", AL_STR("work_id", it->work_id));
        it->phase = PH_CLEANUP;
        event_active(it->defer, EV_TIMEOUT, 0);
        return;
    }
    /* The heartbeat starts before the session fetch and the downloads. */
    beat(it);
    it->phase = PH_SESSION;
    _cleanup_free_ char *url = wk_url(it->api_base, "/v1/sessions/%s", it->session_id);
    struct wk_call_opts o = { .url = url, .bearer = it->cred, .helper = HELPER, .max_retries = -1 };
    it->call = wk_call(w, &o, on_session, it);
    if (!it->call)
        event_active(it->defer, EV_TIMEOUT, 0);
}

void wk_item_free(struct wk_item *it)
{
    if (!it)
        return;
    wk_session_free(it->sess);
    wk_call_cancel(it->call);
    wk_call_cancel(it->hb_call);
    wk_runner_close(it->runner);
    event_free(it->hb_timer);
    event_free(it->hb_cutoff);
    event_free(it->defer);
    json_decref(it->session);
    json_decref(it->skills);
    json_decref(it->installed);
    if (it->cred) {
        explicit_bzero(it->cred, strlen(it->cred));
        free(it->cred);
    }
    free(it->work_id);
    free(it->env_id);
    free(it->session_id);
    free(it->data_type);
    free(it->last_heartbeat);
    free(it->workdir);
    free(it->outputs);
    free(it->tmpdir);
    free(it->skill_dir);
    free(it->api_base);
    free(it);
}
