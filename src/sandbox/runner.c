/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock sandbox-runner`: the per-session tool runner (runner.h). Two
 * threads: the main thread starts up, then runs one request at a time; a
 * small reader thread reads frames off the socket, queues requests and
 * turns a "cancel" for the running request, or the end of the connection,
 * into a readable cancel eventfd that the running tool polls. The main
 * thread also reaps every zombie (the runner is a subreaper). See
 * docs/internals/RUNNER.md. */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/base/log.h"
#include "../lib/base/opt.h"
#include "../lib/base/utf8.h"
#include "frame.h"
#include "runner.h"
#include "sandbox.h"
#include "skills.h"
#include "toolset.h"
#include "zygote.h"

/* Requests are serialised by the worker; a few queued ones mean a broken
 * peer, not load. */
#define QUEUE_MAX 8
#define ID_MAX    ((uint64_t) 1 << 53)

extern char **environ;

struct runner_config {
    int64_t fd;
    char *workdir;
    char *outputs;
    char *log_level;
    char *isolation;        /* none, A, B or C (the worker's probe decides) */
    int64_t uid, gid;       /* host ids the sandbox runs as; -1 = ours */
    char **cgroup;          /* cgroup.procs files to join first */
    char *network;          /* none or host */
    char *tmpdir;           /* level C: the session's private temp dir */
    int64_t netns_fd;       /* a pooled network namespace (the zygote's); -1 = none */
    struct al_sandbox_limits lim;   /* 0 = the default (sandbox.h) */
};

#define C(field) offsetof(struct runner_config, field)
static const struct al_opt runner_opts[] = {
    { "fd", AL_OPT_INT, C(fd), "3", "the session's socketpair end (frame protocol, see frame.h)", "N" },
    { "workdir", AL_OPT_STR, C(workdir), NULL, "the session's working directory (must exist)", "DIR" },
    { "outputs", AL_OPT_STR, C(outputs), NULL, "the session's outputs directory, reported in \"ready\"", "DIR" },
    { "log-level", AL_OPT_STR, C(log_level), "info", "debug, info, warn or error", "LEVEL" },
    { "isolation", AL_OPT_STR, C(isolation), "none", "none, or the level to build: A, B or C (sandbox.h)", "LEVEL" },
    { "uid", AL_OPT_INT, C(uid), "-1", "host uid of the sandbox (root only; -1 = the runner's own)", "UID" },
    { "gid", AL_OPT_INT, C(gid), "-1", "host gid of the sandbox", "GID" },
    { "cgroup", AL_OPT_LIST, C(cgroup), NULL, "a cgroup.procs file to join before anything else", "FILE" },
    { "network", AL_OPT_STR, C(network), "none", "none (only loopback) or host", "MODE" },
    { "tmpdir", AL_OPT_STR, C(tmpdir), NULL, "level C: the session's private temp dir (TMPDIR)", "DIR" },
    { "netns-fd", AL_OPT_INT, C(netns_fd), "-1", "internal: a fresh network namespace to join (the zygote's pool)", "N" },
    { "memory-max", AL_OPT_INT, C(lim.memory_max), "0", "bytes; 0 = default (RLIMIT_DATA without cgroups)", "BYTES" },
    { "pids-max", AL_OPT_INT, C(lim.pids_max), "0", "processes; 0 = default (RLIMIT_NPROC with a session uid)", "N" },
    { "cpu", AL_OPT_INT, C(lim.cpu_pct), "0", "percent of one CPU; 0 = default", "PCT" },
    { "nofile", AL_OPT_INT, C(lim.nofile), "0", "open files; 0 = default", "N" },
    { "fsize", AL_OPT_INT, C(lim.fsize), "0", "largest file, bytes; 0 = default", "BYTES" },
    { "tmp-size", AL_OPT_INT, C(lim.tmp_size), "0", "/tmp tmpfs bytes; 0 = default", "BYTES" },
    { "tmp-inodes", AL_OPT_INT, C(lim.tmp_inodes), "0", "/tmp tmpfs inodes; 0 = default", "N" },
    { 0 },
};
#undef C

struct request {
    struct al_frame f;
    uint64_t id;
    bool cancelled;         /* a cancel came while it was queued */
    struct request *next;
};

struct runner {
    struct runner_config cfg;
    int sock;
    int root_fd;
    char *root;             /* canonical workdir */
    char *outputs;          /* canonical outputs dir, or NULL */
    char **env;             /* scrubbed environment, owned */
    struct al_bash *bash;
    int sigchld_fd;
    int wake_fd;            /* eventfd: a request was queued, or the end */
    int cancel_fd;          /* eventfd: the running request is cancelled */
    int reap_wake_fd;       /* eventfd: a tool's spawn settled (toolset.h) */
    int reap_stop_fd;       /* eventfd: the reaper thread ends */

    /* Shared with the reader thread, under mu. */
    pthread_mutex_t mu;
    struct request *head, **tail;
    size_t queued;
    bool running;
    uint64_t running_id;
    bool ended;             /* the reader has stopped */
    int end_err;            /* 0: clean EOF; else why the stream broke */
    bool sandboxed;         /* seccomp is on: leave with _exit (LeakSanitizer
                             * needs ptrace at exit, which the filter denies) */
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void efd_signal(int fd)
{
    uint64_t one = 1;

    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static void efd_drain(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
}

/* ---- start-up phases ----------------------------------------------------- */

/* Orphans of the session re-parent to us, so we can reap them and find
 * them when killing the session; and we die with the worker. */
static int become_subreaper(void)
{
    pid_t parent = getppid();

    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        return -errno;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        return -errno;
    /* The worker may have died before the death signal was armed. */
    if (getppid() != parent)
        return -ESRCH;
    return 0;
}

static void limits_from_config(const struct runner_config *c, struct al_sandbox_limits *l)
{
    al_sandbox_limits_default(l);
    al_sandbox_limits_merge(l, &c->lim);
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = al_xstrdup(v);
}

/* Level C as root: no user namespace, so become the session's own
 * unprivileged uid (the worker's files and /proc entries are then out of
 * reach by plain permissions too). */
static int drop_to_uid(const struct runner_config *c)
{
    if (geteuid() != 0 || c->uid < 0)
        return 0;
    /* The bounding set can only be emptied while we still hold
     * CAP_SETPCAP, i.e. before the switch. */
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
            break;
    gid_t g = (gid_t) (c->gid >= 0 ? c->gid : c->uid);
    if (setgroups(0, NULL) < 0 || setresgid(g, g, g) < 0 || setresuid((uid_t) c->uid, (uid_t) c->uid, (uid_t) c->uid) < 0)
        return -errno;
    return 0;
}

/* The pooled namespace is joined by al_ns_enter (or not used): nothing
 * after it, and nothing the session runs, keeps the descriptor. */
static void close_netns(struct runner_config *c)
{
    if (c->netns_fd >= 3 && c->netns_fd <= INT_MAX)
        (void) close((int) c->netns_fd);
    c->netns_fd = -1;
}

/* The isolation layers (sandbox.h), in order, when the worker asks for
 * them. It runs before the workdir is opened and before the reader thread
 * starts (unshare(CLONE_NEWUSER) refuses threaded processes); with
 * namespaces the tools then see /workspace and /mnt/session/outputs. */
static int sandbox_setup(struct runner *rn)
{
    struct runner_config *c = &rn->cfg;
    enum al_isolation level;
    struct al_sandbox_limits lim;
    char why[AL_SANDBOX_WHY] = "";
    int abi = 0, r;

    /* Only a runner that makes namespaces has a use for a pooled one. */
    if (!c->isolation || al_isolation_parse(c->isolation, &level) < 0 || level < AL_ISO_B)
        close_netns(c);
    if (!c->isolation || !strcmp(c->isolation, "none"))
        return 0;
    if (al_isolation_parse(c->isolation, &level) < 0 || level == AL_ISO_D) {
        al_log(AL_ERROR, "runner.sandbox: bad --isolation", AL_STR("isolation", c->isolation));
        return -EINVAL;
    }
    limits_from_config(c, &lim);
    if (c->cgroup && c->cgroup[0] && (r = al_cgroup_join((const char *const *) c->cgroup)) < 0)
        return al_log_errno(AL_ERROR, r, "runner.sandbox: cannot join the session cgroup");
    if (level >= AL_ISO_B) {
        struct al_ns_cfg nc = {
            .workdir = c->workdir,
            .outputs = c->outputs,
            .uid = (uid_t) (c->uid >= 0 ? c->uid : (int64_t) getuid()),
            .gid = (gid_t) (c->gid >= 0 ? c->gid : c->uid >= 0 ? c->uid : (int64_t) getgid()),
            .net_host = c->network && !strcmp(c->network, "host"),
            .netns_fd = c->netns_fd >= 3 && c->netns_fd <= INT_MAX ? (int) c->netns_fd : -1,
            .lim = &lim,
        };
        r = al_ns_enter(&nc, why);
        close_netns(c);
        if (r < 0 || (r = al_ns_setup_fs(&nc, why)) < 0 || (r = al_ns_setup_net(&nc, why)) < 0)
            return al_log_errno(AL_ERROR, r, "runner.sandbox: namespaces", AL_STR("why", why));
        set_str(&c->workdir, "/workspace");
        if (c->outputs)
            set_str(&c->outputs, "/mnt/session/outputs");
        /* Nothing of the host's home exists in here. */
        (void) setenv("HOME", "/workspace", 1);
    }
    /* NPROC counts per real uid: a limit only where the session has a uid
     * of its own. */
    bool own_uid = c->uid >= 0 && (uid_t) c->uid != getuid();
    /* With a cgroup, memory is its job: RLIMIT_DATA would also count the
     * address space sanitizer builds reserve. */
    struct al_sandbox_limits rl = lim;
    if (c->cgroup && c->cgroup[0])
        rl.memory_max = 0;
#if defined(__SANITIZE_ADDRESS__)
    rl.memory_max = 0;      /* ASan's shadow reservation would count against it */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    rl.memory_max = 0;
#endif
#endif
    if ((r = al_rlimits_apply(&rl, level >= AL_ISO_B ? c->uid >= 0 : own_uid, why)) < 0)
        return al_log_errno(AL_ERROR, r, "runner.sandbox: rlimits", AL_STR("why", why));
    if (level == AL_ISO_C && (r = drop_to_uid(c)) < 0)
        return al_log_errno(AL_ERROR, r, "runner.sandbox: cannot become the session uid");

    static const char *const ro_ns[] = { "/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                         "/proc", NULL };
    static const char *const ro_host[] = { "/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                           NULL };
    const char *rw[8];
    size_t n = 0;
    rw[n++] = c->workdir;
    if (c->outputs)
        rw[n++] = c->outputs;
    if (level >= AL_ISO_B) {
        rw[n++] = "/tmp";
        rw[n++] = "/dev";
    } else {
        if (c->tmpdir)
            rw[n++] = c->tmpdir;
        rw[n++] = "/dev/null";
        rw[n++] = "/dev/tty";
        rw[n++] = "/dev/pts";
    }
    rw[n] = NULL;
    struct al_landlock_paths lp = { .ro = level >= AL_ISO_B ? ro_ns : ro_host, .rw = rw };
    r = al_landlock_apply(&lp, &abi, why);
    if (r < 0 && !(r == -EOPNOTSUPP && level >= AL_ISO_B))
        return al_log_errno(AL_ERROR, r, "runner.sandbox: landlock", AL_STR("why", why));
    if ((r = al_caps_drop(why)) < 0)
        return al_log_errno(AL_ERROR, r, "runner.sandbox: capabilities", AL_STR("why", why));
    if ((r = al_seccomp_apply(why)) < 0)
        return al_log_errno(AL_ERROR, r, "runner.sandbox: seccomp", AL_STR("why", why));
    if (level == AL_ISO_C && c->tmpdir)
        (void) setenv("TMPDIR", c->tmpdir, 1);
    al_log(AL_DEBUG, "runner.sandbox", AL_STR("level", al_isolation_name(level)), AL_I64("landlock_abi", abi));
    rn->sandboxed = true;
    return 0;
}

static int open_workdir(struct runner *rn)
{
    char *p = realpath(rn->cfg.workdir, NULL);

    if (!p)
        return -errno;
    rn->root = p;
    rn->root_fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rn->root_fd < 0)
        return -errno;
    if (rn->cfg.outputs) {
        rn->outputs = realpath(rn->cfg.outputs, NULL);
        if (!rn->outputs)
            return -errno;
    }
    return 0;
}

/* The name up to '=', upper-cased as JavaScript would for the letters that
 * matter here: ASCII, and U+0131 (dotless i), which upper-cases to 'I'. */
static bool name_has_prefix(const char *kv, const char *prefix)
{
    const unsigned char *s = (const unsigned char *) kv;

    for (const char *p = prefix; *p; p++) {
        if (s[0] == 0xc4 && s[1] == 0xb1 && *p == 'I') {
            s += 2;
            continue;
        }
        unsigned char c = *s >= 'a' && *s <= 'z' ? (unsigned char) (*s - 'a' + 'A') : *s;
        if (c != (unsigned char) *p)
            return false;   /* also at '=' and at the end: the prefix has neither */
        s++;
    }
    return true;
}

/* The shell's environment: ours minus ANTHROPIC_* (as the SDK) and
 * AIRLOCK_* (our own configuration), names compared upper-cased. */
/* In a sandbox the host's credential-shaped variables stay out too
 * (sandbox-notes §3 row 17): *_TOKEN, *_KEY, *SECRET*, *PASSWORD*,
 * *CREDENTIALS*, AWS_*. Without one the SDK's environment is kept. */
static bool secret_shaped(const char *kv)
{
    char name[128];
    size_t n = 0;

    while (kv[n] && kv[n] != '=' && n < sizeof(name) - 1) {
        name[n] = (char) (kv[n] >= 'a' && kv[n] <= 'z' ? kv[n] - 32 : kv[n]);
        n++;
    }
    name[n] = '\0';
    if (n >= 6 && !strcmp(name + n - 6, "_TOKEN"))
        return true;
    if (n >= 4 && !strcmp(name + n - 4, "_KEY"))
        return true;
    return strstr(name, "SECRET") || strstr(name, "PASSWORD") || strstr(name, "CREDENTIALS") ||
           !strncmp(name, "AWS_", 4);
}

static void build_env(struct runner *rn)
{
    size_t n = 0, o = 0;

    while (environ[n])
        n++;
    rn->env = al_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        if (!name_has_prefix(environ[i], "ANTHROPIC_") && !name_has_prefix(environ[i], "AIRLOCK_") &&
            !(rn->sandboxed && secret_shaped(environ[i])))
            rn->env[o++] = al_xstrdup(environ[i]);
}

static int setup_fds(struct runner *rn)
{
    struct sigaction ign = { .sa_handler = SIG_IGN };
    sigset_t chld;

    rn->sock = (int) rn->cfg.fd;
    /* Nothing we start may inherit the socket. */
    if (fcntl(rn->sock, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    if (sigaction(SIGPIPE, &ign, NULL) < 0)
        return -errno;
    /* Blocked before the reader thread starts, so it inherits the mask and
     * SIGCHLD is only ever seen through the signalfd. */
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (pthread_sigmask(SIG_BLOCK, &chld, NULL) != 0)
        return -EINVAL;
    rn->sigchld_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    rn->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    rn->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    rn->reap_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    rn->reap_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (rn->sigchld_fd < 0 || rn->wake_fd < 0 || rn->cancel_fd < 0 || rn->reap_wake_fd < 0 || rn->reap_stop_fd < 0)
        return -errno;
    al_child_set_wake(rn->reap_wake_fd);
    return 0;
}

static int send_ready(struct runner *rn)
{
    json_t *m = json_pack("{s:s, s:I, s:s, s:s?}", "op", "ready", "pid", (json_int_t) getpid(), "workdir",
                          rn->root, "outputs", rn->outputs);
    int r = m ? al_frame_write_fd(rn->sock, m, NULL, 0) : -EINVAL;

    json_decref(m);
    return r;
}

/* ---- the reader thread --------------------------------------------------- */

static bool id_of(const json_t *msg, uint64_t *ret)
{
    const json_t *v = json_object_get(msg, "id");

    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t) json_integer_value(v) >= ID_MAX)
        return false;
    *ret = (uint64_t) json_integer_value(v);
    return true;
}

static void on_cancel(struct runner *rn, uint64_t id)
{
    pthread_mutex_lock(&rn->mu);
    if (rn->running && rn->running_id == id)
        efd_signal(rn->cancel_fd);
    for (struct request *q = rn->head; q; q = q->next)
        if (q->id == id)
            q->cancelled = true;
    pthread_mutex_unlock(&rn->mu);
    al_log(AL_DEBUG, "request.cancel", AL_U64("id", id));
}

/* Takes ownership of f. 0, or a negative errno that ends the stream. */
static int on_frame(struct runner *rn, struct al_frame *f)
{
    const char *op = json_string_value(json_object_get(f->msg, "op"));
    struct request *q;
    uint64_t id;

    if (!op || !id_of(f->msg, &id)) {
        al_frame_done(f);
        return -EPROTO;
    }
    if (!strcmp(op, "cancel")) {
        al_frame_done(f);
        on_cancel(rn, id);
        return 0;
    }
    q = al_xcalloc(1, sizeof(*q));
    q->f = *f;
    q->id = id;
    *f = (struct al_frame){ 0 };
    pthread_mutex_lock(&rn->mu);
    if (rn->queued >= QUEUE_MAX) {
        pthread_mutex_unlock(&rn->mu);
        al_frame_done(&q->f);
        free(q);
        return -ENOBUFS;
    }
    *rn->tail = q;
    rn->tail = &q->next;
    rn->queued++;
    pthread_mutex_unlock(&rn->mu);
    efd_signal(rn->wake_fd);
    return 0;
}

static void *reader_main(void *arg)
{
    struct runner *rn = arg;
    struct al_frame_reader fr = { 0 };
    int r;

    for (;;) {
        struct al_frame f = { 0 };
        r = al_frame_read_fd(rn->sock, &fr, &f);
        if (r <= 0)
            break;
        r = on_frame(rn, &f);
        if (r < 0)
            break;
    }
    al_frame_reader_done(&fr);
    pthread_mutex_lock(&rn->mu);
    rn->ended = true;
    rn->end_err = r;
    pthread_mutex_unlock(&rn->mu);
    /* Whatever runs stops: nobody is left to read its answer. */
    efd_signal(rn->cancel_fd);
    efd_signal(rn->wake_fd);
    return NULL;
}

/* ---- serving ------------------------------------------------------------- */

static void closedir_p(DIR **d)
{
    if (*d)
        (void) closedir(*d);
}

/* Reaps the children no tool is waiting for: the session's orphans, which
 * re-parent to us (PID 1 of the session, or a subreaper). The children are
 * listed from /proc/self/task/<tid>/children; where /proc is out of reach
 * (level C: Landlock leaves it out) waitid(WNOWAIT) finds them one by one. */
static void reap_children(void)
{
    _cleanup_(closedir_p) DIR *tasks = opendir("/proc/self/task");
    struct dirent *t;

    if (!tasks) {
        siginfo_t si;
        for (;;) {
            si.si_pid = 0;
            if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0 ||
                !al_child_reapable(si.si_pid))
                return;
            (void) waitpid(si.si_pid, NULL, WNOHANG);
        }
    }
    while ((t = readdir(tasks))) {
        char path[sizeof(t->d_name) + 32], buf[4096];
        if (t->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/children", t->d_name);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        for (char *p = buf, *end; *p; p = end) {
            long pid = strtol(p, &end, 10);
            if (end == p)
                break;
            if (pid > 0 && al_child_reapable((pid_t) pid))
                (void) waitpid((pid_t) pid, NULL, WNOHANG);
        }
    }
}

/* The reaper thread: wakes on SIGCHLD (through the signalfd) and when a
 * tool's spawn settles; ends when stop_fd is written. */
static void *reaper_main(void *arg)
{
    struct runner *rn = arg;

    for (;;) {
        struct pollfd p[3] = { { .fd = rn->sigchld_fd, .events = POLLIN }, { .fd = rn->reap_wake_fd, .events = POLLIN },
                               { .fd = rn->reap_stop_fd, .events = POLLIN } };
        if (poll(p, 3, -1) < 0 && errno != EINTR)
            break;
        if (p[2].revents)
            break;
        struct signalfd_siginfo si;
        while (read(rn->sigchld_fd, &si, sizeof(si)) > 0)
            ;
        efd_drain(rn->reap_wake_fd);
        reap_children();
    }
    return NULL;
}

/* The next request, marked running; NULL when there is none (yet). */
static struct request *take_request(struct runner *rn, bool *ended)
{
    struct request *q;

    pthread_mutex_lock(&rn->mu);
    q = rn->ended ? NULL : rn->head;
    if (q) {
        rn->head = q->next;
        if (!rn->head)
            rn->tail = &rn->head;
        rn->queued--;
        efd_drain(rn->cancel_fd);
        rn->running = true;
        rn->running_id = q->id;
        if (q->cancelled)
            efd_signal(rn->cancel_fd);
    }
    *ended = rn->ended;
    pthread_mutex_unlock(&rn->mu);
    return q;
}

static void request_free(struct request *q)
{
    al_frame_done(&q->f);
    free(q);
}

static void answer(struct runner *rn, json_t *m, const void *payload)
{
    int r;

    if (!m) {
        al_log(AL_ERROR, "runner.answer", AL_ERR(-ENOMEM));
        return;
    }
    r = al_frame_write_fd(rn->sock, m, payload, 0);
    /* EPIPE: the worker has gone, which the reader reports on its own. */
    if (r < 0)
        al_log(r == -EPIPE ? AL_DEBUG : AL_WARN, "runner.answer", AL_ERR(r), AL_I64("id", json_integer_value(json_object_get(m, "id"))));
    json_decref(m);
}

typedef int (*file_tool_fn)(const struct al_tool_ctx *, const json_t *, struct al_tool_result *);

static file_tool_fn file_tool(const char *name)
{
    static const struct {
        const char *name;
        file_tool_fn fn;
    } tools[] = {
        { "read", al_tool_read }, { "write", al_tool_write }, { "edit", al_tool_edit },
        { "glob", al_tool_glob }, { "grep", al_tool_grep },
    };

    for (size_t i = 0; i < AL_ELEMENTSOF(tools); i++)
        if (!strcmp(name, tools[i].name))
            return tools[i].fn;
    return NULL;
}

static json_t *text_json(const struct al_tool_result *res)
{
    json_t *t = json_stringn(res->text ? res->text : "", res->len);
    size_t n;

    if (t)
        return t;
    /* A tool broke its contract; never send invalid UTF-8. */
    _cleanup_free_ char *fixed = al_utf8_repair(res->text, res->len, &n);
    return json_stringn(fixed, n);
}

static void serve_tool(struct runner *rn, struct request *q)
{
    const char *name = json_string_value(json_object_get(q->f.msg, "name"));
    const json_t *in = json_object_get(q->f.msg, "input");
    struct al_tool_ctx ctx = { .root_fd = rn->root_fd, .root = rn->root, .cancel_fd = rn->cancel_fd,
                               .env = (const char *const *) rn->env };
    struct al_tool_result res = { 0 };
    _cleanup_(json_decrefp) json_t *empty = json_object();
    int64_t start = now_ms();
    file_tool_fn fn;
    int r = 0;

    if (!json_is_object(in))
        in = empty;
    if (!name)
        name = "";
    if (!strcmp(name, "bash"))
        r = al_bash_call(rn->bash, &ctx, in, &res);
    else if ((fn = file_tool(name)))
        r = fn(&ctx, in, &res);
    else
        al_tool_result_set(&res, true, "Error: unknown tool \"%s\"", name);
    if (r < 0) {
        const char *e = al_errno_name(-r);
        al_log(AL_WARN, "tool.fail", AL_U64("id", q->id), AL_STR("tool", name), AL_ERR(r));
        al_tool_result_set(&res, true, "Error: %s failed (%s)", name, e ? e : "EIO");
    }
    al_log(AL_INFO, "tool.done", AL_U64("id", q->id), AL_STR("tool", name), AL_BOOL("is_error", res.is_error),
           AL_U64("bytes", res.len), AL_I64("ms", now_ms() - start));
    answer(rn, json_pack("{s:I, s:b, s:o}", "id", (json_int_t) q->id, "is_error", res.is_error, "text",
                         text_json(&res)), NULL);
    al_tool_result_done(&res);
}

/* A skill directory is one path component the worker chose. */
static bool skill_dir_ok(const char *dir)
{
    return dir && *dir && strcmp(dir, ".") && strcmp(dir, "..") && !strchr(dir, '/') && strlen(dir) < NAME_MAX;
}

static void serve_skill(struct runner *rn, struct request *q, bool install)
{
    const char *dir = json_string_value(json_object_get(q->f.msg, "dir"));
    _cleanup_free_ char *why = NULL;
    int r;

    if (!skill_dir_ok(dir)) {
        r = -EINVAL;
        why = al_xstrdup("invalid skill directory name");
    } else if (install) {
        r = al_skill_install(rn->root_fd, dir, q->f.payload, q->f.payload_len, &why);
    } else {
        r = al_skill_remove(rn->root_fd, dir);
    }
    if (r < 0)
        al_log(AL_WARN, install ? "skill.install" : "skill.remove", AL_U64("id", q->id),
               AL_STR("dir", dir ? dir : ""), AL_ERR(r));
    else
        al_log(AL_INFO, install ? "skill.install" : "skill.remove", AL_U64("id", q->id),
               AL_STR("dir", dir), AL_U64("bytes", q->f.payload_len));
    if (r >= 0) {
        answer(rn, json_pack("{s:I, s:b}", "id", (json_int_t) q->id, "ok", 1), NULL);
        return;
    }
    if (!why) {
        const char *e = al_errno_name(-r);
        why = al_xasprintf("%s failed (%s)", install ? "install" : "remove", e ? e : "EIO");
    }
    answer(rn, json_pack("{s:I, s:b, s:s}", "id", (json_int_t) q->id, "ok", 0, "error", why), NULL);
}

static void serve_one(struct runner *rn, struct request *q)
{
    const char *op = json_string_value(json_object_get(q->f.msg, "op"));

    if (!strcmp(op, "tool"))
        serve_tool(rn, q);
    else if (!strcmp(op, "skill_install"))
        serve_skill(rn, q, true);
    else if (!strcmp(op, "skill_remove"))
        serve_skill(rn, q, false);
    else {
        al_log(AL_WARN, "request.unknown_op", AL_U64("id", q->id), AL_STR("op", op));
        answer(rn, json_pack("{s:I, s:b, s:s}", "id", (json_int_t) q->id, "ok", 0, "error", "unknown op"), NULL);
    }
    pthread_mutex_lock(&rn->mu);
    rn->running = false;
    pthread_mutex_unlock(&rn->mu);
}

/* Serves until the reader stops; returns its reason (0 for a clean EOF). */
static int serve(struct runner *rn)
{
    for (;;) {
        bool ended;
        struct request *q = take_request(rn, &ended);

        if (q) {
            serve_one(rn, q);
            request_free(q);
            continue;
        }
        if (ended)
            break;
        struct pollfd p = { .fd = rn->wake_fd, .events = POLLIN };
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return -errno;
        efd_drain(rn->wake_fd);
    }
    pthread_mutex_lock(&rn->mu);
    int r = rn->end_err;
    pthread_mutex_unlock(&rn->mu);
    return r;
}

/* Kills the shell and everything the session started, then reaps all. */
static void finish(struct runner *rn)
{
    rn->bash = al_bash_free(rn->bash);
    for (;;) {
        pid_t p = waitpid(-1, NULL, 0);
        if (p > 0 || (p < 0 && errno == EINTR))
            continue;
        break;
    }
    while (rn->head) {
        struct request *q = rn->head;
        rn->head = q->next;
        request_free(q);
    }
}

static void runner_done(struct runner *rn)
{
    al_opts_free(runner_opts, &rn->cfg);
    for (size_t i = 0; rn->env && rn->env[i]; i++)
        free(rn->env[i]);
    free(rn->env);
    free(rn->root);
    free(rn->outputs);
    int *fds[] = { &rn->root_fd, &rn->sigchld_fd, &rn->wake_fd, &rn->cancel_fd, &rn->reap_wake_fd, &rn->reap_stop_fd };
    for (size_t i = 0; i < AL_ELEMENTSOF(fds); i++)
        if (*fds[i] >= 0)
            (void) close(*fds[i]);
    pthread_mutex_destroy(&rn->mu);
}

static int parse_options(struct runner *rn, int argc, char **argv, bool *help)
{
    struct al_opts_result res;
    enum al_log_level lvl;

    if (al_opts_load(runner_opts, &rn->cfg, argc, argv, &res) < 0)
        return -EINVAL;
    free(res.args);
    *help = res.help;
    if (res.help) {
        al_opts_help(runner_opts, "airlock sandbox-runner --fd N --workdir DIR [--outputs DIR]",
                     "Internal: the per-session tool runner the worker starts. Serves tool calls (bash, read,\n"
                     "write, edit, glob, grep) and skill installs over the frame protocol on fd N, and\n"
                     "exits 0 when the worker closes its end.\n"
                     "\n"
                     "`--zygote` (alone) makes it the worker's fork server instead: it reads runner command\n"
                     "lines from the socket on fd 3 and forks a runner for each, as the worker's child.");
        return 0;
    }
    if (res.nargs > 0 || !rn->cfg.workdir || rn->cfg.fd < 0 || rn->cfg.fd > INT_MAX) {
        fprintf(stderr, "airlock: sandbox-runner needs --workdir DIR and a valid --fd N (see --help)\n");
        return -EINVAL;
    }
    if (al_log_level_parse(rn->cfg.log_level, &lvl) < 0) {
        fprintf(stderr, "airlock: --log-level: expected debug, info, warn or error\n");
        return -EINVAL;
    }
    al_log_setup("sandbox-runner", lvl, 2);
    return 0;
}

/* Start-up, each phase named in the log when it fails. */
static int start(struct runner *rn)
{
    int r;

    if ((r = become_subreaper()) < 0)
        return al_log_errno(AL_ERROR, r, "runner.subreaper");
    if ((r = sandbox_setup(rn)) < 0)
        return al_log_errno(AL_ERROR, r, "runner.sandbox_setup");
    if ((r = open_workdir(rn)) < 0)
        return al_log_errno(AL_ERROR, r, "runner.workdir");
    build_env(rn);
    if ((r = setup_fds(rn)) < 0)
        return al_log_errno(AL_ERROR, r, "runner.fds", AL_I64("fd", rn->cfg.fd));
    rn->bash = al_bash_new(rn->root, (const char *const *) rn->env);
    if ((r = send_ready(rn)) < 0)
        return al_log_errno(AL_ERROR, r, "runner.ready");
    al_log(AL_INFO, "runner.ready", AL_I64("pid", getpid()), AL_STR("workdir", rn->root));
    return 0;
}

/* ---- the zygote's network namespaces -------------------------------------- */

/* Creating a network namespace is the largest single cost of a sandbox's
 * start (about 1 ms here): the zygote keeps NETNS_POOL fresh ones made
 * between requests and hands one to each runner that would create one. Each
 * is used once. The pool is first filled after a runner wanted one, so a
 * worker whose sessions share the host's network never makes any. Root
 * only (al_netns_new needs CAP_SYS_ADMIN). */
#define NETNS_POOL 2
/* Made only after this long without a request: a runner just forked must
 * not share the CPUs with a namespace being made for the next one. */
#define NETNS_REFILL_MS 5

struct netns_pool {
    bool on;
    bool wanted;            /* a runner asked for one: not before (--network host) */
    int n;
    int fd[NETNS_POOL];
};

/* The argv value after flag, or NULL. */
static const char *arg_after(int argc, char **argv, const char *flag)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], flag))
            return argv[i + 1];
    return NULL;
}

static int pool_take(void *ud, int argc, char **argv)
{
    struct netns_pool *p = ud;
    const char *iso = arg_after(argc, argv, "--isolation"), *net = arg_after(argc, argv, "--network");
    enum al_isolation level;

    if (!p->on || !iso || al_isolation_parse(iso, &level) < 0 || level < AL_ISO_B || (net && !strcmp(net, "host")))
        return -1;
    p->wanted = true;
    return p->n > 0 ? p->fd[--p->n] : -1;
}

static void pool_close(struct netns_pool *p)
{
    while (p->n > 0)
        (void) close(p->fd[--p->n]);
}

static int pool_fill(void *ud)
{
    struct netns_pool *p = ud;

    while (p->on && p->wanted && p->n < NETNS_POOL) {
        char why[AL_SANDBOX_WHY] = "";
        int fd = al_netns_new(why);
        if (fd == -ENOTRECOVERABLE) {
            fprintf(stderr, "airlock: sandbox-runner --zygote: %s\n", why);
            return fd;
        }
        if (fd < 0) {
            /* Runners make their own from now on. */
            fprintf(stderr, "airlock: sandbox-runner --zygote: no network namespace pool: %s\n", why);
            p->on = false;
            pool_close(p);
            break;
        }
        p->fd[p->n++] = fd;
    }
    return 0;
}

int al_runner_main(int argc, char **argv)
{
    struct runner rn = { .sock = -1, .root_fd = -1, .sigchld_fd = -1, .wake_fd = -1, .cancel_fd = -1,
                         .reap_wake_fd = -1, .reap_stop_fd = -1 };
    pthread_t reader, reaper;
    bool help = false;
    int r;

    /* The worker's fork server (zygote.h): each request becomes a runner
     * that continues below, as if exec'd with that argv, with a pooled
     * network namespace where it will make one. */
    if (argc == 2 && !strcmp(argv[1], "--zygote")) {
        struct stat st;
        if (fstat(3, &st) < 0 || !S_ISSOCK(st.st_mode)) {
            fprintf(stderr, "airlock: sandbox-runner --zygote needs its worker's socket on fd 3\n");
            return 2;
        }
        char why[AL_SANDBOX_WHY] = "";
        /* Each runner's seccomp filter is then a load, not a build. Not
         * fatal: a runner builds its own when there is none. */
        if (al_seccomp_prepare(why) < 0)
            fprintf(stderr, "airlock: sandbox-runner --zygote: cannot prepare the seccomp filter: %s\n", why);
        struct netns_pool pool = { .on = geteuid() == 0 };
        const struct al_zygote_extra extra = { .take = pool_take, .after = pool_fill, .idle_ms = NETNS_REFILL_MS,
                                               .flag = "--netns-fd", .ud = &pool };
        struct al_zygote_runner child = { 0 };
        int rc = al_zygote_serve(3, argv[1], &extra, &child);
        /* A runner forked by it: the pool's other descriptors are closed
         * already (only its own is fd 4). */
        if (child.argv)
            return al_runner_main(child.argc, child.argv);
        pool_close(&pool);
        return rc;
    }
    pthread_mutex_init(&rn.mu, NULL);
    rn.tail = &rn.head;
    r = parse_options(&rn, argc, argv, &help);
    if (r < 0 || help) {
        runner_done(&rn);
        return r < 0 ? 2 : 0;
    }
    r = start(&rn);
    if (r >= 0 && (r = -pthread_create(&reaper, NULL, reaper_main, &rn)) < 0)
        al_log_errno(AL_ERROR, r, "runner.thread");
    if (r >= 0 && (r = -pthread_create(&reader, NULL, reader_main, &rn)) < 0) {
        al_log_errno(AL_ERROR, r, "runner.thread");
        efd_signal(rn.reap_stop_fd);
        pthread_join(reaper, NULL);
    }
    if (r < 0) {
        al_child_set_wake(-1);
        finish(&rn);
        runner_done(&rn);
        return 1;
    }
    /* The shell starts while the worker reads "ready" and the session's
     * first call is on its way (usually after a model turn), not when that
     * call comes. */
    if ((r = al_bash_start(rn.bash)) < 0)
        al_log_errno(AL_WARN, r, "runner.shell_start");
    r = serve(&rn);
    /* The reader has stopped, or stops now that the socket is shut. */
    (void) shutdown(rn.sock, SHUT_RDWR);
    pthread_join(reader, NULL);
    efd_signal(rn.reap_stop_fd);
    pthread_join(reaper, NULL);
    al_child_set_wake(-1);
    finish(&rn);
    if (r < 0)
        al_log(AL_WARN, "runner.exit", AL_ERR(r));
    else
        al_log(AL_INFO, "runner.exit");
    bool sandboxed = rn.sandboxed;
    runner_done(&rn);
    if (sandboxed)
        _exit(r < 0 ? 1 : 0);
    return r < 0 ? 1 : 0;
}
