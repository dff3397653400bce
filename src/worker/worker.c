/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock worker`: the environment worker (spec §8). The poll loop claims
 * up to --max-sessions items at once and serves each on this one event loop
 * (item.c, session.c); --on-work hands each claimed item to a command
 * instead; `airlock worker run` serves one item that something else claimed.
 * SIGTERM/SIGINT stop claiming, let in-flight tools finish for up to
 * --drain, then force-stop the items and exit 0; a second signal cuts the
 * drain short. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "../lib/base/log.h"
#include "../lib/base/map.h"
#include "../lib/base/opt.h"
#include "../lib/base/util.h"
#include "../lib/http/curl_ev.h"
#include "../lib/http/server.h"
#include "../sandbox/sandbox.h"
#include "worker.h"
#include "wk.h"

extern char **environ;

#define POLL_BLOCK_MS      "999"
#define POLL_BACKOFF_BASE  1000
#define POLL_BACKOFF_CAP   60000
#define IDLE_REPORT_US     (300 * 1000000LL)
#define SHUTDOWN_SLACK_US  (15 * 1000000LL)
#define MAX_SECRET_FILE    (64 * 1024)

#define C(f) offsetof(struct wk_config, f)
static const struct al_opt worker_opts[] = {
    { "environment-id", AL_OPT_STR, C(environment_id), NULL, "environment to serve (or ANTHROPIC_ENVIRONMENT_ID)", "ID" },
    { "environment-key-file", AL_OPT_STR, C(environment_key_file), NULL,
      "read the environment key from FILE (or set ANTHROPIC_ENVIRONMENT_KEY)", "FILE" },
    { "base-url", AL_OPT_STR, C(base_url), NULL, "API base URL (or ANTHROPIC_BASE_URL; default https://api.anthropic.com)", "URL" },
    { "root", AL_OPT_STR, C(root), "./var/worker", "session directories: ROOT/sessions/<session id>/{workspace,outputs}", "DIR" },
    { "max-sessions", AL_OPT_INT, C(max_sessions), "1", "sessions served at once (1..4096)", "N" },
    { "max-idle", AL_OPT_DURATION, C(max_idle_us), "60s", "stop a session this long after its turn ended (0 = never)", "DURATION" },
    { "drain", AL_OPT_DURATION, C(drain_us), "30s", "on SIGTERM, how long in-flight tools may finish", "DURATION" },
    { "on-work", AL_OPT_STR, C(on_work), NULL, "run CMD (sh -c) per claimed item instead of serving it here", "CMD" },
    { "on-work-key", AL_OPT_BOOL, C(on_work_key), "false", "also pass ANTHROPIC_ENVIRONMENT_KEY to --on-work commands", NULL },
    { "worker-id", AL_OPT_STR, C(worker_id), NULL, "Anthropic-Worker-ID (default HOSTNAME-<uuid>)", "ID" },
    { "cacert", AL_OPT_STR, C(cacert), NULL, "CA bundle for TLS to the API (default: the system's)", "FILE" },
    { "work-secret-file", AL_OPT_STR, C(work_secret_file), NULL,
      "worker run: the item's secret (or ANTHROPIC_WORK_SECRET_FILE / ANTHROPIC_WORK_SECRET)", "FILE" },
    { "honor-api-base-url", AL_OPT_BOOL, C(honor_api_base_url), "false",
      "use the api_base_url of a work item's secret for its calls (the SDK ignores it)", NULL },
    { "runner-exe", AL_OPT_STR, C(runner_exe), NULL,
      "binary started as `PATH sandbox-runner ...` for each session (default: airlock-sandbox-runner beside this binary, else this one)", "PATH" },
    { "runner-zygote", AL_OPT_BOOL, C(runner_zygote), "true",
      "fork each session's runner from one pre-started runner process instead of exec'ing it (faster start, shared pages)", NULL },
    { "min-isolation", AL_OPT_STR, C(min_isolation), "B",
      "refuse to start below this isolation level (A: everything, B: no cgroups, C: no namespaces)", "LEVEL" },
    { "check", AL_OPT_BOOL, C(check), "false", "print what isolation this host allows (JSON) and exit: 0 if >= --min-isolation", NULL },
    { "network", AL_OPT_STR, C(network), "none", "sessions' network: none (loopback only) or host", "MODE" },
    { "memory-max", AL_OPT_INT, C(lim.memory_max), "0", "per-session memory, bytes (0 = 2 GiB)", "BYTES" },
    { "pids-max", AL_OPT_INT, C(lim.pids_max), "0", "per-session processes (0 = 512)", "N" },
    { "cpu", AL_OPT_INT, C(lim.cpu_pct), "0", "per-session CPU, percent of one core (0 = 100)", "PCT" },
    { "nofile", AL_OPT_INT, C(lim.nofile), "0", "per-process open files in sessions (0 = 4096)", "N" },
    { "fsize", AL_OPT_INT, C(lim.fsize), "0", "largest file a session may write, bytes (0 = 1 GiB)", "BYTES" },
    { "tmp-size", AL_OPT_INT, C(lim.tmp_size), "0", "per-session /tmp, bytes (0 = 512 MiB)", "BYTES" },
    { "admin-listen", AL_OPT_STR, C(admin_listen), NULL,
      "serve GET /healthz and /metrics on ADDR (e.g. 127.0.0.1:9464); off by default", "ADDR" },
    { "ready-fd", AL_OPT_INT, C(ready_fd), "-1", "write the base URL to fd N after the first poll, then close it", "N" },
    { "log-level", AL_OPT_STR, C(log_level), "info", "debug, info, warn or error", "LEVEL" },
    { 0 },
};
#undef C

/* --on-work children: pid -> 1. */
static struct al_map *children;

static void poll_next(struct worker *w);
static void shutdown_begin(struct worker *w, bool hard);

static size_t in_use(const struct worker *w)
{
    return w->n_items + (children ? al_map_size(children) : 0);
}

static bool has_room(const struct worker *w)
{
    return !w->draining && in_use(w) < (size_t) w->cfg.max_sessions;
}

static void maybe_exit(struct worker *w)
{
    if ((w->draining || w->one_shot) && in_use(w) == 0 && !w->poll_call)
        event_base_loopexit(w->base, NULL);
}

void wk_worker_item_done(struct worker *w, struct wk_item *it)
{
    TAILQ_REMOVE(&w->items, it, link);
    w->n_items--;
    if (w->one_shot && it->failed)
        w->exit_code = 1;
    wk_item_free(it);
    if (w->one_shot || w->draining) {
        maybe_exit(w);
        return;
    }
    if (!w->poll_call && !evtimer_pending(w->poll_timer, NULL))
        poll_next(w);
}

/* --- the poll loop (spec §8.1) ------------------------------------------ */

static void poll_after(struct worker *w, int64_t ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    evtimer_add(w->poll_timer, &tv);
}

static void idle_log(struct worker *w)
{
    int64_t now = al_mono_us();

    if (!w->idle_since_us) {
        w->idle_since_us = w->idle_report_us = now;
        al_log(AL_INFO, "idle; polling for work", AL_STR("component", "work-poller"),
               AL_STR("environment_id", w->cfg.environment_id));
    } else if (now - w->idle_report_us >= IDLE_REPORT_US) {
        w->idle_report_us = now;
        al_log(AL_INFO, "still polling", AL_STR("component", "work-poller"), AL_I64("idle_s", (now - w->idle_since_us) / 1000000),
               AL_STR("environment_id", w->cfg.environment_id));
    } else {
        al_log(AL_DEBUG, "poll returned no work", AL_STR("component", "work-poller"));
    }
}

static void spawn_on_work(struct worker *w, json_t *work)
{
    const char *sid = json_string_value(json_object_get(json_object_get(work, "data"), "id"));
    const char *wid = json_string_value(json_object_get(work, "id"));
    const char *eid = json_string_value(json_object_get(work, "environment_id"));
    _cleanup_free_ char *e_sid = al_xasprintf("ANTHROPIC_SESSION_ID=%s", sid ? sid : "");
    _cleanup_free_ char *e_wid = al_xasprintf("ANTHROPIC_WORK_ID=%s", wid ? wid : "");
    _cleanup_free_ char *e_eid = al_xasprintf("ANTHROPIC_ENVIRONMENT_ID=%s", eid ? eid : w->cfg.environment_id);
    _cleanup_free_ char *e_url = al_xasprintf("ANTHROPIC_BASE_URL=%s", w->cfg.base_url);
    _cleanup_free_ char *e_key = NULL;
    _cleanup_free_ char **env = NULL;
    _cleanup_free_ char *json = json_dumps(work, JSON_COMPACT);
    char *argv[] = { "sh", "-c", w->cfg.on_work, NULL };
    size_t n = 0, k = 0;
    int p[2];
    pid_t pid;
    posix_spawn_file_actions_t fa;
    char key[24];

    for (char **e = environ; *e; e++)
        n++;
    env = al_xcalloc(n + 6, sizeof(*env));
    for (char **e = environ; *e; e++)
        if (strncasecmp(*e, "ANTHROPIC_", 10) != 0)
            env[k++] = *e;
    env[k++] = e_sid;
    env[k++] = e_wid;
    env[k++] = e_eid;
    env[k++] = e_url;
    if (w->cfg.on_work_key && w->cfg.environment_key) {
        e_key = al_xasprintf("ANTHROPIC_ENVIRONMENT_KEY=%s", w->cfg.environment_key);
        env[k++] = e_key;
    }
    if (!json || pipe2(p, O_CLOEXEC) < 0) {
        al_log(AL_ERROR, "cannot start the on-work command", AL_STR("work_id", wid));
        return;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    int e = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(p[0]);
    if (e_key)
        explicit_bzero(e_key, strlen(e_key));
    if (e != 0) {
        close(p[1]);
        al_log_errno(AL_ERROR, -e, "cannot start the on-work command", AL_STR("work_id", wid));
        return;
    }
    /* The item is a few KiB at most, well under a pipe's buffer. */
    size_t len = strlen(json);
    ssize_t wr = write(p[1], json, len);
    explicit_bzero(json, len);
    close(p[1]);
    if (wr != (ssize_t) len)
        al_log(AL_WARN, "could not hand the whole work item to the on-work command", AL_STR("work_id", wid));
    if (!children)
        children = al_map_new();
    snprintf(key, sizeof(key), "%d", (int) pid);
    al_map_put(children, key, (void *) 1);
    al_log(AL_INFO, "handed work to the on-work command", AL_STR("work_id", wid), AL_STR("session_id", sid),
           AL_I64("pid", pid));
}

struct ack_ctx {
    struct worker *w;
    json_t *work;
};

static void on_ack(const struct wk_resp *r, void *ud)
{
    struct ack_ctx *a = ud;
    struct worker *w = a->w;
    const char *wid = json_string_value(json_object_get(a->work, "id"));

    w->poll_call = NULL;
    if (r->err < 0 || r->status < 200 || r->status > 299) {
        _cleanup_free_ char *why = wk_resp_describe(r);
        al_log(AL_ERROR, "ack failed", AL_STR("work_id", wid), AL_STR("error", why));
    } else if (w->draining) {
        al_log(AL_INFO, "claimed work while shutting down; leaving it to its lease", AL_STR("work_id", wid));
    } else if (w->cfg.on_work) {
        spawn_on_work(w, a->work);
    } else {
        w->items_claimed++;
        wk_item_start(w, a->work);
    }
    json_decref(a->work);
    free(a);
    if (w->draining)
        maybe_exit(w);
    else
        poll_next(w);
}

static bool safe_path_id(const char *s)
{
    if (!s || !*s || strlen(s) > 128)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

static void on_poll(const struct wk_resp *r, void *ud)
{
    struct worker *w = ud;

    w->poll_call = NULL;
    if (r->err < 0 || r->status < 200 || r->status > 299) {
        _cleanup_free_ char *why = wk_resp_describe(r);
        if (r->err == 0 && wk_fatal_4xx(r->status)) {
            al_log(AL_ERROR, "poll failed permanently, stopping poller", AL_STR("error", why));
            w->exit_code = 1;
            shutdown_begin(w, false);
            return;
        }
        int64_t wait = wk_backoff_ms(w->poll_attempt, POLL_BACKOFF_BASE, POLL_BACKOFF_CAP);
        al_log(AL_WARN, "poll failed, backing off", AL_STR("error", why), AL_I64("backoff_ms", wait));
        w->poll_attempt++;
        poll_after(w, wait);
        return;
    }
    w->poll_attempt = 0;
    if (!w->ready_sent) {
        w->ready_sent = true;
        if (w->cfg.ready_fd >= 0)
            al_ready_notify((int) w->cfg.ready_fd, w->cfg.base_url);
    }
    if (r->status == 200 && (r->len == 0 || !r->json)) {
        /* The SDK counts an empty or non-JSON 200 as a failed poll. */
        int64_t wait = wk_backoff_ms(w->poll_attempt, POLL_BACKOFF_BASE, POLL_BACKOFF_CAP);
        al_log(AL_WARN, "poll failed, backing off", AL_STR("error", r->len ? "response is not JSON" : "empty response"),
               AL_I64("backoff_ms", wait));
        w->poll_attempt++;
        poll_after(w, wait);
        return;
    }
    if (!r->json || json_is_null(r->json)) {
        idle_log(w);
        poll_after(w, wk_jitter_ms(1000, 3000));
        return;
    }
    json_t *work = r->json;
    const char *wid = json_string_value(json_object_get(work, "id"));
    const char *eid = json_string_value(json_object_get(work, "environment_id"));
    if (!json_is_object(work) || !safe_path_id(wid) || (eid && !safe_path_id(eid))) {
        al_log(AL_WARN, "malformed work item from poll; ignoring it");
        poll_after(w, wk_jitter_ms(1000, 3000));
        return;
    }
    w->idle_since_us = 0;
    al_log(AL_INFO, "claimed work", AL_STR("component", "work-poller"), AL_STR("environment_id", w->cfg.environment_id),
           AL_STR("work_id", wid),
           AL_STR("work_type", json_string_value(json_object_get(json_object_get(work, "data"), "type"))));
    struct ack_ctx *a = al_xcalloc(1, sizeof(*a));
    a->w = w;
    a->work = json_deep_copy(work);
    if (!json_object_get(a->work, "environment_id"))
        json_object_set_new(a->work, "environment_id", json_string(w->cfg.environment_id));
    _cleanup_free_ char *url = wk_url(w->cfg.base_url, "/v1/environments/%s/work/%s/ack", eid ? eid : w->cfg.environment_id, wid);
    struct wk_call_opts o = { .method = "POST", .url = url, .bearer = w->cfg.environment_key,
                              .helper = "environments-work-poller", .max_retries = -1 };
    w->poll_call = wk_call(w, &o, on_ack, a);
    if (!w->poll_call) {
        struct wk_resp fail = { .err = -EINVAL };
        on_ack(&fail, a);
    }
}

static void poll_next(struct worker *w)
{
    if (w->poll_call || !has_room(w))
        return;
    evtimer_del(w->poll_timer);
    _cleanup_free_ char *url = wk_url(w->cfg.base_url, "/v1/environments/%s/work/poll?block_ms=" POLL_BLOCK_MS,
                                      w->cfg.environment_id);
    _cleanup_free_ char *hdr = al_xasprintf("Anthropic-Worker-ID: %s", w->cfg.worker_id);
    const char *hdrs[] = { hdr, NULL };
    struct wk_call_opts o = { .url = url, .bearer = w->cfg.environment_key, .helper = "environments-work-poller",
                              .headers = hdrs, .max_retries = -1 };
    w->poll_call = wk_call(w, &o, on_poll, w);
    if (!w->poll_call)
        poll_after(w, 1000);
}

static void on_poll_timer(evutil_socket_t fd, short what, void *ud)
{
    poll_next(ud);
}

/* --- signals ------------------------------------------------------------- */

static void on_hard_deadline(evutil_socket_t fd, short what, void *ud)
{
    struct worker *w = ud;

    al_log(AL_WARN, "shutdown deadline passed; exiting with items still open", AL_I64("items", w->n_items));
    event_base_loopexit(w->base, NULL);
}

static void shutdown_begin(struct worker *w, bool hard)
{
    struct wk_item *it, *next;

    if (w->draining && !hard)
        return;
    if (!w->draining) {
        int64_t us = w->cfg.drain_us + SHUTDOWN_SLACK_US;
        struct timeval tv = { .tv_sec = us / 1000000, .tv_usec = us % 1000000 };
        w->drain_timer = evtimer_new(w->base, on_hard_deadline, w);
        evtimer_add(w->drain_timer, &tv);
    }
    w->draining = true;
    evtimer_del(w->poll_timer);
    /* A poll in flight is cancelled; an ack in flight is let finish (its
     * item is then left to its lease). */
    for (it = TAILQ_FIRST(&w->items); it; it = next) {
        next = TAILQ_NEXT(it, link);
        if (hard && it->sess)
            wk_session_stop(it->sess, false);
        else
            wk_item_finish(it, LEASE_RUNNER_DONE);
    }
    maybe_exit(w);
}

static void on_signal(evutil_socket_t sig, short what, void *ud)
{
    struct worker *w = ud;
    bool hard = w->draining;

    al_log(AL_INFO, hard ? "second signal; stopping without draining" : "shutting down; draining in-flight tools",
           AL_I64("signal", sig), AL_I64("items", w->n_items));
    if (w->poll_call && !hard) {
        /* Only a poll (not an ack) is dropped. */
        wk_call_cancel(w->poll_call);
        w->poll_call = NULL;
    }
    shutdown_begin(w, hard);
}

static void on_sigchld(evutil_socket_t sig, short what, void *ud)
{
    struct worker *w = ud;
    int st;
    pid_t pid;
    char key[24];

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (wk_runner_reap(w, pid, st))
            continue;
        snprintf(key, sizeof(key), "%d", (int) pid);
        if (children && al_map_remove(children, key)) {
            al_log(AL_INFO, "on-work command exited", AL_I64("pid", pid),
                   AL_I64("status", WIFEXITED(st) ? WEXITSTATUS(st) : -1),
                   AL_I64("signal", WIFSIGNALED(st) ? WTERMSIG(st) : 0));
            if (w->draining)
                maybe_exit(w);
            else
                poll_next(w);
        }
    }
}

/* --- configuration -------------------------------------------------------- */

static char *read_small_file(const char *path, size_t max)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf;
    ssize_t n;

    if (fd < 0)
        return NULL;
    buf = al_xmalloc(max + 1);
    n = read(fd, buf, max);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    return buf;
}

static void take_env(char **dst, const char *name)
{
    const char *v = getenv(name);
    if (!*dst && v && *v)
        *dst = al_xstrdup(v);
}

static char *default_worker_id(void)
{
    _cleanup_free_ char *id = al_id_new("");
    const char *host = getenv("HOSTNAME");
    char buf[256];

    if ((!host || !*host) && gethostname(buf, sizeof(buf) - 1) == 0) {
        buf[sizeof(buf) - 1] = '\0';
        host = buf;
    }
    return host && *host ? al_xasprintf("%s-%s", host, id) : al_xstrdup(id);
}

static int finish_config(struct worker *w, bool run_mode)
{
    struct wk_config *c = &w->cfg;
    enum al_log_level lvl;

    if (al_log_level_parse(c->log_level, &lvl) < 0) {
        fprintf(stderr, "airlock worker: bad --log-level \"%s\"\n", c->log_level);
        return -EINVAL;
    }
    al_log_setup("worker", lvl, 2);
    take_env(&c->environment_id, "ANTHROPIC_ENVIRONMENT_ID");
    take_env(&c->base_url, "ANTHROPIC_BASE_URL");
    if (!c->base_url)
        c->base_url = al_xstrdup("https://api.anthropic.com");
    while (*c->base_url && c->base_url[strlen(c->base_url) - 1] == '/')
        c->base_url[strlen(c->base_url) - 1] = '\0';
    if (c->environment_key_file) {
        c->environment_key = read_small_file(c->environment_key_file, 4096);
        if (!c->environment_key || !*c->environment_key) {
            fprintf(stderr, "airlock worker: cannot read the environment key from %s\n", c->environment_key_file);
            return -EINVAL;
        }
    }
    take_env(&c->environment_key, "ANTHROPIC_ENVIRONMENT_KEY");
    if (c->environment_key && strpbrk(c->environment_key, "\r\n")) {
        fprintf(stderr, "airlock worker: the environment key contains a line break\n");
        return -EINVAL;
    }
    if (c->check)
        return 0;                        /* --check needs no environment */
    if (!c->environment_id || !safe_path_id(c->environment_id)) {
        fprintf(stderr, "airlock worker: --environment-id (or ANTHROPIC_ENVIRONMENT_ID) is required\n");
        return -EINVAL;
    }
    if (!run_mode && !c->environment_key) {
        fprintf(stderr, "airlock worker: an environment key is required: set ANTHROPIC_ENVIRONMENT_KEY or "
                        "--environment-key-file\n");
        return -EINVAL;
    }
    if (strncmp(c->base_url, "http://", 7) != 0 && strncmp(c->base_url, "https://", 8) != 0) {
        fprintf(stderr, "airlock worker: --base-url must be http:// or https://\n");
        return -EINVAL;
    }
    if (c->max_sessions < 1 || c->max_sessions > 4096) {
        fprintf(stderr, "airlock worker: --max-sessions must be 1..4096\n");
        return -EINVAL;
    }
    if (!c->worker_id)
        c->worker_id = default_worker_id();
    if (!c->on_work) {
        _cleanup_free_ char *abs = NULL;
        if (mkdir(c->root, 0700) < 0 && errno != EEXIST) {
            fprintf(stderr, "airlock worker: cannot create --root %s: %s\n", c->root,
                    al_errno_name(errno) ? al_errno_name(errno) : "error");
            return -EINVAL;
        }
        abs = realpath(c->root, NULL);
        if (!abs) {
            fprintf(stderr, "airlock worker: cannot resolve --root %s\n", c->root);
            return -EINVAL;
        }
        free(c->root);
        c->root = TAKE_PTR(abs);
    }
    return 0;
}

/* Probes what this host allows (sandbox-notes §5.2), says it once, and
 * refuses to run below --min-isolation. With --check: prints the report.
 * --on-work hands items to other processes, which probe for themselves. */
static int isolation_setup(struct worker *w)
{
    struct al_probe p;
    enum al_isolation min;

    if (al_isolation_parse(w->cfg.min_isolation, &min) < 0 || min == AL_ISO_D) {
        fprintf(stderr, "airlock worker: --min-isolation must be A, B or C\n");
        return -EINVAL;
    }
    if (strcmp(w->cfg.network, "none") != 0 && strcmp(w->cfg.network, "host") != 0) {
        fprintf(stderr, "airlock worker: --network must be none or host\n");
        return -EINVAL;
    }
    if (w->cfg.on_work && !w->cfg.check)
        return 0;
    al_probe_run(&p);
    if (w->cfg.check) {
        _cleanup_free_ char *json = al_probe_json(&p);
        printf("%s\n", json ? json : "{}");
        return p.level >= min ? 0 : -EPERM;
    }
    al_log(p.level >= min ? AL_INFO : AL_ERROR, "isolation", AL_STR("level", al_isolation_name(p.level)),
           AL_STR("missing", p.missing), AL_STR("min", al_isolation_name(min)), AL_STR("network", w->cfg.network));
    if (p.level < min) {
        fprintf(stderr, "airlock worker: this host allows isolation level %s, below --min-isolation %s.\n"
                        "  missing: %s\n  fix: %s\n",
                al_isolation_name(p.level), al_isolation_name(min), p.missing[0] ? p.missing : "-",
                p.fixes[0] ? p.fixes : "-");
        return -EPERM;
    }
    w->isolation = (int) p.level;
    return 0;
}

static void worker_free(struct worker *w)
{
    struct wk_item *it;

    while ((it = TAILQ_FIRST(&w->items))) {
        TAILQ_REMOVE(&w->items, it, link);
        wk_item_free(it);
    }
    wk_call_cancel(w->poll_call);
    w->admin = al_http_server_free(w->admin);
    w->curl = al_curl_free(w->curl);
    wk_runner_kill_all();
    wk_zygote_stop(w);
    children = al_map_free(children);
    if (w->poll_timer)
        event_free(w->poll_timer);
    if (w->drain_timer)
        event_free(w->drain_timer);
    if (w->sig_term)
        event_free(w->sig_term);
    if (w->sig_int)
        event_free(w->sig_int);
    if (w->sig_chld)
        event_free(w->sig_chld);
    if (w->base)
        event_base_free(w->base);
    if (w->cfg.environment_key)
        explicit_bzero(w->cfg.environment_key, strlen(w->cfg.environment_key));
    free(w->cfg.environment_key);
    free(w->runner_path);
    al_opts_free(worker_opts, &w->cfg);
}

static const char usage_text[] =
    "airlock worker [OPTIONS]\n"
    "       airlock worker run [OPTIONS]     serve one already-claimed work item";
static const char desc_text[] =
    "Polls an environment's work queue and serves each claimed session's tool calls (bash, read, write,\n"
    "edit, glob, grep) in a per-session runner process. Speaks the managed-agents protocol as the SDK's\n"
    "worker does; the environment key comes from ANTHROPIC_ENVIRONMENT_KEY or --environment-key-file and\n"
    "is never logged. `worker run` reads ANTHROPIC_WORK_ID, ANTHROPIC_SESSION_ID and\n"
    "ANTHROPIC_ENVIRONMENT_ID, and the item's secret from --work-secret-file, ANTHROPIC_WORK_SECRET_FILE\n"
    "or ANTHROPIC_WORK_SECRET; the key is then needed only when the secret carries no sessions token.\n"
    "HTTPS_PROXY and NO_PROXY are honoured.";

int al_worker_main(int argc, char **argv)
{
    struct worker w = { .zygote_fd = -1 };
    struct al_opts_result res = { 0 };
    bool run_mode = argc > 1 && !strcmp(argv[1], "run");
    int r;

    if (run_mode) {
        argc--;
        argv++;
    }
    TAILQ_INIT(&w.items);
    w.cfg.ready_fd = -1;
    r = al_opts_load(worker_opts, &w.cfg, argc, argv, &res);
    if (r < 0)
        return 2;
    if (res.help) {
        al_opts_help(worker_opts, usage_text, desc_text);
        al_opts_free(worker_opts, &w.cfg);
        free(res.args);
        return 0;
    }
    if (res.nargs > 0) {
        fprintf(stderr, "airlock worker: unexpected argument \"%s\"\n", res.args[0]);
        al_opts_free(worker_opts, &w.cfg);
        free(res.args);
        return 2;
    }
    free(res.args);
    if (finish_config(&w, run_mode) < 0) {
        worker_free(&w);
        return 2;
    }
    if (isolation_setup(&w) < 0) {
        worker_free(&w);
        return 1;
    }
    if (w.cfg.check) {
        worker_free(&w);
        return 0;
    }
    /* The worker's memory and /proc/<pid>/environ hold the key: not
     * readable by a same-uid process (a level C sandbox of a non-root
     * worker), nor dumpable. */
    (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct sigaction ign = { .sa_handler = SIG_IGN };
    sigaction(SIGPIPE, &ign, NULL);
    w.base = event_base_new();
    w.curl = w.base ? al_curl_new(w.base) : NULL;
    if (!w.curl) {
        fprintf(stderr, "airlock worker: cannot initialise the event loop or libcurl\n");
        worker_free(&w);
        return 1;
    }
    wk_runner_find(&w);
    if (wk_admin_start(&w) < 0) {
        worker_free(&w);
        return 1;
    }
    w.poll_timer = evtimer_new(w.base, on_poll_timer, &w);
    w.sig_term = evsignal_new(w.base, SIGTERM, on_signal, &w);
    w.sig_int = evsignal_new(w.base, SIGINT, on_signal, &w);
    w.sig_chld = evsignal_new(w.base, SIGCHLD, on_sigchld, &w);
    evsignal_add(w.sig_term, NULL);
    evsignal_add(w.sig_int, NULL);
    evsignal_add(w.sig_chld, NULL);
    wk_zygote_start(&w);

    if (run_mode) {
        json_t *work;
        _cleanup_free_ char *secret = NULL;
        const char *sfile = w.cfg.work_secret_file ? w.cfg.work_secret_file : getenv("ANTHROPIC_WORK_SECRET_FILE");
        const char *wid = getenv("ANTHROPIC_WORK_ID"), *sid = getenv("ANTHROPIC_SESSION_ID");

        if (sfile && *sfile) {
            secret = read_small_file(sfile, MAX_SECRET_FILE);
            if (!secret) {
                fprintf(stderr, "airlock worker run: cannot read the work secret file\n");
                worker_free(&w);
                return 2;
            }
        } else if (getenv("ANTHROPIC_WORK_SECRET")) {
            secret = al_xstrdup(getenv("ANTHROPIC_WORK_SECRET"));
        }
        if (!safe_path_id(wid) || !safe_path_id(sid)) {
            fprintf(stderr, "airlock worker run: ANTHROPIC_WORK_ID and ANTHROPIC_SESSION_ID are required\n");
            worker_free(&w);
            return 2;
        }
        _cleanup_free_ char *tok = wk_secret_sessions_token(secret);
        if (!w.cfg.environment_key && !tok) {
            fprintf(stderr, "airlock worker run: an environment key is required: %s (set ANTHROPIC_ENVIRONMENT_KEY "
                            "or --environment-key-file)\n",
                    secret ? "the work secret carries no usable sessions token" : "there is no work secret");
            worker_free(&w);
            return 2;
        }
        if (tok)
            explicit_bzero(tok, strlen(tok));
        w.one_shot = true;
        w.cfg.max_sessions = 1;
        work = json_pack("{s:s, s:s, s:s?, s:{s:s, s:s}}", "id", wid, "environment_id", w.cfg.environment_id,
                         "secret", secret, "data", "type", "session", "id", sid);
        if (secret)
            explicit_bzero(secret, strlen(secret));
        al_log(AL_INFO, "serving one work item", AL_STR("work_id", wid), AL_STR("session_id", sid));
        wk_item_start(&w, work);
        json_decref(work);
    } else {
        al_log(AL_INFO, "poller starting", AL_STR("component", "work-poller"),
               AL_STR("environment_id", w.cfg.environment_id), AL_STR("worker_id", w.cfg.worker_id),
               AL_I64("max_sessions", w.cfg.max_sessions), AL_STR("base_url", w.cfg.base_url),
               AL_STR("root", w.cfg.on_work ? "" : w.cfg.root));
        poll_next(&w);
    }
    event_base_dispatch(w.base);
    al_log(AL_INFO, "worker stopped", AL_U64("items_claimed", w.items_claimed), AL_U64("tools_run", w.tools_run),
           AL_U64("results_posted", w.results_posted));
    r = w.exit_code;
    worker_free(&w);
    return r;
}
