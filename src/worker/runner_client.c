/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's side of a session's runner process (src/sandbox/runner.h):
 * posix_spawn of `airlock sandbox-runner` with one end of a socketpair as
 * its fd 3 and an environment with no ANTHROPIC_* or AIRLOCK_* variable,
 * then frames (src/sandbox/frame.h) over a bufferevent. Requests go one at
 * a time, in order. A runner that dies fails its requests with -EPIPE; the
 * session decides what the agent sees. Closed runners are reaped by the
 * worker's SIGCHLD handler (wk_runner_reap) and freed then. */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "../lib/base/log.h"
#include "../lib/base/map.h"
#include "../sandbox/frame.h"
#include "../sandbox/sandbox.h"
#include "../sandbox/zygote.h"
#include "wk.h"

extern char **environ;

#define CLOSE_GRACE_S 5

struct req {
    struct req *next;
    uint64_t id;
    unsigned char *frame;
    size_t len;
    wk_runner_cb cb;
    void *ud;
};

/* A FIFO of requests: the head is the one in flight once sent. */
struct reqs {
    struct req *head;
    struct req **tailp;
};

static struct req *pop_head(struct reqs *l)
{
    struct req *q = l->head;

    if (q) {
        l->head = q->next;
        if (!l->head)
            l->tailp = &l->head;
        q->next = NULL;
    }
    return q;
}

static void push_tail(struct reqs *l, struct req *q)
{
    q->next = NULL;
    *l->tailp = q;
    l->tailp = &q->next;
}

struct wk_runner {
    struct worker *w;
    char *session_id;
    pid_t pid;
    struct bufferevent *bev;
    struct al_frame_reader reader;
    struct reqs queue;           /* head is in flight when sent */
    bool sent;                   /* the head was written */
    bool ready, dead, closed, close_done, reaped;
    uint64_t next_id;
    struct event *kill_timer;
    struct al_cgroup *cg;        /* level A: the session's cgroup, removed once reaped */
};

/* pid -> runner, for the SIGCHLD handler. */
static struct al_map *runners_by_pid;

static char *pid_key(pid_t pid, char buf[static 24])
{
    snprintf(buf, 24, "%d", (int) pid);
    return buf;
}

static bool scrubbed(const char *kv)
{
    return !strncasecmp(kv, "ANTHROPIC_", 10) || !strncasecmp(kv, "AIRLOCK_", 8);
}

static void runner_free(struct wk_runner *r)
{
    char k[24];

    if (r->pid > 0 && runners_by_pid)
        al_map_remove(runners_by_pid, pid_key(r->pid, k));
    if (r->bev)
        bufferevent_free(r->bev);
    if (r->kill_timer)
        event_free(r->kill_timer);
    if (r->cg) {
        int e = al_cgroup_destroy(r->cg);
        if (e < 0)
            al_log_errno(AL_WARN, e, "cannot remove the session cgroup", AL_STR("session_id", r->session_id));
    }
    al_frame_reader_done(&r->reader);
    free(r->session_id);
    free(r);
}

static void req_free(struct req *q)
{
    free(q->frame);
    free(q);
}

/* Fails every request with err (the head first, in order). */
static void fail_all(struct wk_runner *r, int err)
{
    struct req *q;

    while ((q = pop_head(&r->queue))) {
        struct wk_runner_reply rep = { .err = err };
        if (q->cb)
            q->cb(&rep, q->ud);
        req_free(q);
    }
    r->sent = false;
}

static void send_head(struct wk_runner *r)
{
    struct req *q = r->queue.head;

    if (!q || r->sent || r->dead)
        return;
    if (bufferevent_write(r->bev, q->frame, q->len) < 0) {
        r->dead = true;
        fail_all(r, -EPIPE);
        return;
    }
    r->sent = true;
}

static void mark_dead(struct wk_runner *r, const char *why)
{
    if (r->dead)
        return;
    r->dead = true;
    if (!r->closed)
        al_log(AL_WARN, "tool runner exited unexpectedly", AL_STR("session_id", r->session_id),
               AL_I64("pid", r->pid), AL_STR("reason", why));
    bufferevent_disable(r->bev, EV_READ | EV_WRITE);
    fail_all(r, -EPIPE);
}

static void handle_frame(struct wk_runner *r, struct al_frame *f)
{
    const char *op = json_string_value(json_object_get(f->msg, "op"));
    struct req *q;

    if (op && !strcmp(op, "ready")) {
        r->ready = true;
        al_log(AL_DEBUG, "tool runner ready", AL_STR("session_id", r->session_id), AL_I64("pid", r->pid));
        return;
    }
    q = r->queue.head;
    json_t *id = json_object_get(f->msg, "id");
    if (!q || !r->sent || !json_is_integer(id) || (uint64_t) json_integer_value(id) != q->id) {
        al_log(AL_WARN, "tool runner answered out of order", AL_STR("session_id", r->session_id));
        return;
    }
    q = pop_head(&r->queue);
    r->sent = false;

    struct wk_runner_reply rep = { 0 };
    json_t *ok = json_object_get(f->msg, "ok");
    if (json_is_boolean(ok)) {
        rep.is_error = !json_is_true(ok);
        rep.text = json_string_value(json_object_get(f->msg, "error"));
    } else {
        json_t *t = json_object_get(f->msg, "text");
        rep.is_error = json_is_true(json_object_get(f->msg, "is_error"));
        rep.text = json_string_value(t);
        rep.len = json_string_length(t);
    }
    if (!rep.text)
        rep.text = "";
    if (q->cb)
        q->cb(&rep, q->ud);
    req_free(q);
    send_head(r);
}

static void on_read(struct bufferevent *bev, void *ud)
{
    struct wk_runner *r = ud;
    struct evbuffer *in = bufferevent_get_input(bev);
    unsigned char chunk[16384];
    int n;

    while ((n = evbuffer_remove(in, chunk, sizeof(chunk))) > 0) {
        if (al_frame_reader_feed(&r->reader, chunk, (size_t) n) < 0) {
            mark_dead(r, "oversized frame");
            return;
        }
        for (;;) {
            struct al_frame f = { 0 };
            int k = al_frame_reader_next(&r->reader, &f);
            if (k < 0) {
                mark_dead(r, "malformed frame");
                return;
            }
            if (k == 0)
                break;
            handle_frame(r, &f);
            al_frame_done(&f);
            if (r->dead)
                return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *ud)
{
    struct wk_runner *r = ud;

    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        mark_dead(r, (what & BEV_EVENT_EOF) ? "connection closed" : "connection error");
}

static char **child_env(void)
{
    size_t n = 0, k = 0;
    char **env;

    for (char **e = environ; *e; e++)
        n++;
    env = al_xcalloc(n + 1, sizeof(*env));
    for (char **e = environ; *e; e++)
        if (!scrubbed(*e))
            env[k++] = *e;
    return env;
}

/* The runner's command line: where it works, and the isolation it builds. */
struct argv_buf {
    char *v[64];
    size_t n;
    char *own[48];
    size_t nown;
};

static void arg(struct argv_buf *a, const char *s)
{
    if (a->n < AL_ELEMENTSOF(a->v) - 1)
        a->v[a->n++] = (char *) s;
}

static void arg_fmt(struct argv_buf *a, const char *flag, int64_t v)
{
    if (a->nown >= AL_ELEMENTSOF(a->own))
        return;
    char *s = al_xasprintf("%lld", (long long) v);
    a->own[a->nown++] = s;
    arg(a, flag);
    arg(a, s);
}

static void argv_done(struct argv_buf *a)
{
    for (size_t i = 0; i < a->nown; i++)
        free(a->own[i]);
}

static void build_argv(struct worker *w, const char *session_id, const char *workdir, const char *outputs,
                       const char *tmpdir, const struct al_cgroup *cg, struct argv_buf *a)
{
    const struct wk_config *c = &w->cfg;

    if (w->runner_standalone) {
        arg(a, "airlock-sandbox-runner");
    } else {
        arg(a, "airlock");
        arg(a, "sandbox-runner");
    }
    arg(a, "--fd");
    arg(a, "3");
    arg(a, "--workdir");
    arg(a, workdir);
    arg(a, "--outputs");
    arg(a, outputs);
    if (!w->isolation)
        return;
    arg(a, "--isolation");
    arg(a, al_isolation_name((enum al_isolation) w->isolation));
    if (geteuid() == 0) {
        uid_t uid = wk_session_uid(session_id);
        arg_fmt(a, "--uid", uid);
        arg_fmt(a, "--gid", uid);
    }
    if (c->network) {
        arg(a, "--network");
        arg(a, c->network);
    }
    if (tmpdir && w->isolation == AL_ISO_C) {
        arg(a, "--tmpdir");
        arg(a, tmpdir);
    }
    for (const char *const *p = cg ? al_cgroup_procs_paths(cg) : NULL; p && *p; p++) {
        arg(a, "--cgroup");
        arg(a, *p);
    }
    const struct { const char *flag; int64_t v; } lim[] = {
        { "--memory-max", c->lim.memory_max }, { "--pids-max", c->lim.pids_max }, { "--cpu", c->lim.cpu_pct },
        { "--nofile", c->lim.nofile }, { "--fsize", c->lim.fsize }, { "--tmp-size", c->lim.tmp_size },
        { "--tmp-inodes", c->lim.tmp_inodes },
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(lim); i++)
        if (lim[i].v > 0)
            arg_fmt(a, lim[i].flag, lim[i].v);
}

/* The limits the worker was configured with, over the defaults. */
static void worker_limits(const struct wk_config *c, struct al_sandbox_limits *l)
{
    al_sandbox_limits_default(l);
    al_sandbox_limits_merge(l, &c->lim);
}

/* posix_spawn of exe with fd as its fd 3, stdin /dev/null, stdout on our
 * stderr, the scrubbed environment, no blocked signals, default
 * dispositions and a process group of its own. 0 or -errno. */
static int spawn_exec(const char *exe, char *const argv[], int fd, pid_t *ret_pid)
{
    _cleanup_free_ char **env = child_env();
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int e;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 3);   /* clears FD_CLOEXEC on 3 */
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    e = posix_spawn(ret_pid, exe, &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return -e;
}

static const char *runner_exe(const struct worker *w)
{
    return w->cfg.runner_exe ? w->cfg.runner_exe : w->runner_path ? w->runner_path : "/proc/self/exe";
}

/* ---- the zygote (src/sandbox/zygote.h) ------------------------------------ */

#define ZYGOTE_MAX_FAILURES 3
#define ZYGOTE_TIMEOUT_MS   2000

void wk_zygote_start(struct worker *w)
{
    char *argv[4];
    size_t n = 0;
    int sv[2], r;

    if (!w->cfg.runner_zygote || w->zygote_fd >= 0 || w->zygote_failures >= ZYGOTE_MAX_FAILURES)
        return;
    argv[n++] = w->runner_standalone ? "airlock-sandbox-runner" : "airlock";
    if (!w->runner_standalone)
        argv[n++] = "sandbox-runner";
    argv[n++] = "--zygote";
    argv[n] = NULL;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        al_log_errno(AL_WARN, -errno, "runner zygote: socketpair; runners will be exec'd");
        w->zygote_failures = ZYGOTE_MAX_FAILURES;
        return;
    }
    r = spawn_exec(runner_exe(w), argv, sv[1], &w->zygote_pid);
    close(sv[1]);
    if (r < 0) {
        close(sv[0]);
        w->zygote_failures++;
        al_log_errno(AL_WARN, r, "runner zygote: cannot start it; runners will be exec'd", AL_STR("exe", runner_exe(w)));
        return;
    }
    w->zygote_fd = sv[0];
    al_log(AL_DEBUG, "runner zygote started", AL_I64("pid", w->zygote_pid));
}

void wk_zygote_stop(struct worker *w)
{
    int st;

    if (w->zygote_fd >= 0)
        close(w->zygote_fd);
    w->zygote_fd = -1;
    if (w->zygote_pid > 0) {
        (void) kill(w->zygote_pid, SIGKILL);
        while (waitpid(w->zygote_pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    w->zygote_pid = 0;
}

/* A runner from the zygote: 0 with *pid, or -errno after which the zygote
 * is stopped (the next start tries a new one, up to ZYGOTE_MAX_FAILURES). */
static int zygote_runner(struct worker *w, char *const argv[], int fd, pid_t *pid)
{
    int r;

    wk_zygote_start(w);
    if (w->zygote_fd < 0)
        return -ENOENT;
    /* The zygote runs the runner's main directly: no "airlock" word. */
    r = al_zygote_spawn(w->zygote_fd, argv + (w->runner_standalone ? 0 : 1), fd, ZYGOTE_TIMEOUT_MS, pid);
    if (r >= 0) {
        w->zygote_failures = 0;     /* counts failures in a row */
        return 0;
    }
    w->zygote_failures++;
    al_log_errno(AL_WARN, r, "runner zygote failed; exec'ing this runner",
                 AL_I64("failures", w->zygote_failures));
    wk_zygote_stop(w);
    return r;
}

/* The SIGCHLD hook's part for the zygote: true when pid was it. */
static bool zygote_reaped(struct worker *w, pid_t pid, int status)
{
    if (!w || pid != w->zygote_pid || pid <= 0)
        return false;
    w->zygote_pid = 0;
    if (w->zygote_fd >= 0)
        close(w->zygote_fd);
    w->zygote_fd = -1;
    w->zygote_failures++;
    al_log(AL_WARN, "runner zygote exited", AL_I64("pid", pid),
           AL_I64("status", WIFEXITED(status) ? WEXITSTATUS(status) : -1),
           AL_I64("signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    return true;
}

struct wk_runner *wk_runner_start(struct worker *w, const char *session_id, const char *workdir,
                                  const char *outputs, const char *tmpdir)
{
    int sv[2];
    const char *exe = runner_exe(w);
    struct argv_buf a = { 0 };
    struct al_cgroup *cg = NULL;
    struct wk_runner *r;
    pid_t pid;
    int e;
    char k[24];

    if (w->isolation == AL_ISO_A) {
        struct al_sandbox_limits lim;
        char why[AL_SANDBOX_WHY] = "";
        int err = 0;
        static uint64_t seq;
        /* One cgroup per runner: a dead runner's is removed when it is
         * reaped, which may be after its successor started. */
        _cleanup_free_ char *name = al_xasprintf("%s-%llu", session_id, (unsigned long long) ++seq);
        worker_limits(&w->cfg, &lim);
        cg = al_cgroup_create(name, &lim, &err, why);
        if (!cg) {
            al_log_errno(AL_ERROR, err < 0 ? err : -EIO, "cannot create the session cgroup",
                         AL_STR("session_id", session_id), AL_STR("why", why));
            return NULL;
        }
    }
    build_argv(w, session_id, workdir, outputs, tmpdir, cg, &a);
    char **argv = a.v;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        al_log_errno(AL_ERROR, -errno, "cannot create the runner socketpair");
        argv_done(&a);
        (void) al_cgroup_destroy(cg);
        return NULL;
    }
    e = w->cfg.runner_zygote ? zygote_runner(w, argv, sv[1], &pid) : -ENOENT;
    if (e >= 0)
        w->runners_zygote++;
    if (e < 0 && e != -ENOENT) {
        /* The zygote may have forked a runner before it failed to answer:
         * that one keeps the old pair and sees EOF; ours gets a new one. */
        close(sv[0]);
        close(sv[1]);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            al_log_errno(AL_ERROR, -errno, "cannot create the runner socketpair");
            argv_done(&a);
            (void) al_cgroup_destroy(cg);
            return NULL;
        }
    }
    if (e < 0 && (e = spawn_exec(exe, argv, sv[1], &pid)) >= 0)
        w->runners_exec++;
    close(sv[1]);
    argv_done(&a);
    if (e < 0) {
        close(sv[0]);
        (void) al_cgroup_destroy(cg);
        al_log_errno(AL_ERROR, e, "cannot start the tool runner", AL_STR("exe", exe));
        return NULL;
    }
    r = al_xcalloc(1, sizeof(*r));
    r->cg = cg;
    r->w = w;
    r->pid = pid;
    r->session_id = al_xstrdup(session_id);
    r->queue.tailp = &r->queue.head;
    evutil_make_socket_nonblocking(sv[0]);
    r->bev = bufferevent_socket_new(w->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(r->bev, on_read, NULL, on_event, r);
    bufferevent_enable(r->bev, EV_READ | EV_WRITE);
    if (!runners_by_pid)
        runners_by_pid = al_map_new();
    al_map_put(runners_by_pid, pid_key(pid, k), r);
    al_log(AL_DEBUG, "tool runner started", AL_STR("session_id", session_id), AL_I64("pid", pid));
    return r;
}

static void enqueue(struct wk_runner *r, json_t *msg, const void *payload, size_t plen, wk_runner_cb cb,
                    void *ud)
{
    struct req *q = al_xcalloc(1, sizeof(*q));
    int e;

    q->id = ++r->next_id;
    q->cb = cb;
    q->ud = ud;
    json_object_set_new(msg, "id", json_integer((json_int_t) q->id));
    e = al_frame_encode(msg, payload, plen, &q->frame, &q->len);
    json_decref(msg);
    if (e < 0 || r->dead) {
        struct wk_runner_reply rep = { .err = e < 0 ? e : -EPIPE };
        req_free(q);
        if (cb)
            cb(&rep, ud);
        return;
    }
    push_tail(&r->queue, q);
    send_head(r);
}

void wk_runner_tool(struct wk_runner *r, const char *name, const json_t *input, wk_runner_cb cb, void *ud)
{
    json_t *msg = json_pack("{s:s, s:s, s:O}", "op", "tool", "name", name, "input",
                            input ? (json_t *) input : json_object());
    enqueue(r, msg, NULL, 0, cb, ud);
}

void wk_runner_skill_install(struct wk_runner *r, const char *dir, const void *data, size_t len,
                             wk_runner_cb cb, void *ud)
{
    enqueue(r, json_pack("{s:s, s:s}", "op", "skill_install", "dir", dir), data, len, cb, ud);
}

void wk_runner_skill_remove(struct wk_runner *r, const char *dir, wk_runner_cb cb, void *ud)
{
    enqueue(r, json_pack("{s:s, s:s}", "op", "skill_remove", "dir", dir), NULL, 0, cb, ud);
}

void wk_runner_cancel_current(struct wk_runner *r)
{
    struct req *q = r->queue.head;
    unsigned char *buf = NULL;
    size_t len = 0;

    if (!q || !r->sent || r->dead)
        return;
    json_t *msg = json_pack("{s:s, s:I}", "op", "cancel", "id", (json_int_t) q->id);
    if (al_frame_encode(msg, NULL, 0, &buf, &len) == 0)
        (void) bufferevent_write(r->bev, buf, len);
    json_decref(msg);
    free(buf);
}

bool wk_runner_busy(const struct wk_runner *r)
{
    return r && r->queue.head != NULL;
}

pid_t wk_runner_pid(const struct wk_runner *r)
{
    return r ? r->pid : 0;
}

static void on_kill_timer(evutil_socket_t fd, short what, void *ud)
{
    struct wk_runner *r = ud;

    if (!r->reaped) {
        al_log(AL_WARN, "tool runner did not exit; killing it", AL_STR("session_id", r->session_id),
               AL_I64("pid", r->pid));
        (void) kill(-r->pid, SIGKILL);
        (void) kill(r->pid, SIGKILL);
    }
}

/* The second half of wk_runner_close, on a later loop pass: the close may
 * come from inside one of r's own callbacks. */
static void finish_close(evutil_socket_t fd, short what, void *ud)
{
    struct wk_runner *r = ud;
    struct timeval tv = { CLOSE_GRACE_S, 0 };

    /* EOF on fd 3 tells the runner to kill its tools and exit. */
    if (r->bev) {
        bufferevent_free(r->bev);
        r->bev = NULL;
    }
    r->close_done = true;
    if (r->reaped) {
        runner_free(r);
        return;
    }
    r->kill_timer = evtimer_new(r->w->base, on_kill_timer, r);
    evtimer_add(r->kill_timer, &tv);
}

void wk_runner_close(struct wk_runner *r)
{
    struct timeval zero = { 0, 0 };

    if (!r || r->closed)
        return;
    r->closed = true;
    r->dead = true;
    if (r->bev)
        bufferevent_disable(r->bev, EV_READ);
    fail_all(r, -ECANCELED);
    if (event_base_once(r->w->base, -1, EV_TIMEOUT, finish_close, r, &zero) < 0)
        finish_close(-1, 0, r);
}

bool wk_runner_reap(struct worker *w, pid_t pid, int status)
{
    char k[24];
    struct wk_runner *r = runners_by_pid ? al_map_get(runners_by_pid, pid_key(pid, k)) : NULL;

    if (!r)
        return zygote_reaped(w, pid, status);
    r->reaped = true;
    if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0))
        al_log(r->closed ? AL_DEBUG : AL_WARN, "tool runner exited", AL_STR("session_id", r->session_id),
               AL_I64("pid", pid), AL_I64("status", WIFEXITED(status) ? WEXITSTATUS(status) : -1),
               AL_I64("signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    if (r->closed && r->close_done)
        runner_free(r);
    else if (!r->dead)
        mark_dead(r, "process exited");
    return true;
}

static bool kill_one(const char *key, void *value, void *ud)
{
    struct wk_runner *r = value;
    int st;

    (void) kill(-r->pid, SIGKILL);
    (void) kill(r->pid, SIGKILL);
    while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
        ;
    r->pid = 0;                          /* already out of the map */
    if (r->closed && r->close_done)
        runner_free(r);
    else
        r->reaped = true;             /* freed by its pending close, or leaked at exit */
    return true;
}

void wk_runner_kill_all(void)
{
    if (runners_by_pid) {
        al_map_sweep(runners_by_pid, kill_one, NULL);
        runners_by_pid = al_map_free(runners_by_pid);
    }
}

void wk_runner_find(struct worker *w)
{
    _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
    char *slash = self ? strrchr(self, '/') : NULL;

    if (w->cfg.runner_exe || !slash)
        return;
    *slash = '\0';
    _cleanup_free_ char *beside = al_xasprintf("%s/airlock-sandbox-runner", self);
    if (access(beside, X_OK) == 0) {
        w->runner_path = TAKE_PTR(beside);
        w->runner_standalone = true;
    }
}
