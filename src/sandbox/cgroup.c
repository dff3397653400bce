/* SPDX-License-Identifier: Apache-2.0 */
/* Per-session cgroups (sandbox-notes §3 rows 11, 12, 16, 21 and §5.4): one
 * directory under the worker's own cgroup, v2 (a delegated subtree) or v1
 * (memory, pids, cpu and freezer hierarchies), holding the session's limits;
 * and its teardown: kill everything inside, wait until it is empty, remove.
 * Worker side, blocking file I/O of a few syscalls: create takes well under
 * a millisecond, destroy typically a few and never more than ~4 s. It never
 * mounts cgroupfs and never runs inside the sandbox. See "cgroups" in
 * docs/internals/SANDBOX.md for the layout and the v2 no-internal-processes
 * rule. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/base/log.h"
#include "../lib/base/macro.h"
#include "../lib/base/util.h"
#include "sandbox.h"

#define CG_SESSION_ID_MAX 64
#define CG_V2_PARENT      "airlock-sessions"   /* <own>/airlock-sessions/<session> */
#define CG_V2_WORKER_LEAF "airlock-worker"     /* where the worker moves itself */
#define CG_V1_PARENT      "airlock"            /* <hierarchy>/<own>/airlock/<session> */
#define CG_CPU_PERIOD     100000               /* µs; cpu.max / cpu.cfs_period_us */
#define CG_KILL_WAIT_US   (2 * 1000 * 1000)    /* kill until empty */
#define CG_RMDIR_WAIT_US  (1 * 1000 * 1000)    /* then rmdir (EBUSY retries) */
#define CG_SLEEP_MAX_US   10000                /* cap of one wait step (doubling) */

/* The controllers we use; in v1 each is (at most) one directory. */
enum cg_ctrl { CG_MEM, CG_PIDS, CG_CPU, CG_FREEZER, _CG_CTRL_MAX };
static const char *const ctrl_name[_CG_CTRL_MAX] = { "memory", "pids", "cpu", "freezer" };

struct al_cgroup {
    int version;                        /* 2 or 1 */
    size_t n;                           /* directories made (v2: 1) */
    char *dir[_CG_CTRL_MAX];            /* the session's directory per hierarchy */
    char *procs[_CG_CTRL_MAX + 1];      /* dir[i]/cgroup.procs, NULL-terminated */
    int at[_CG_CTRL_MAX];               /* index into dir of each controller, -1 */
};

/* ---- small file helpers ---------------------------------------------------- */

static void fclosep(FILE **f)
{
    if (*f)
        (void) fclose(*f);
}

static int path_join(char *buf, size_t size, const char *a, const char *b)
{
    int n = snprintf(buf, size, "%s/%s", a, b);
    return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

static int write_path(const char *path, const char *val)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    size_t len = strlen(val);

    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, val, len);
    if (n < 0)
        return -errno;
    return (size_t) n == len ? 0 : -EIO;
}

static int file_write(const char *dir, const char *name, const char *val)
{
    char p[PATH_MAX];
    int r = path_join(p, sizeof(p), dir, name);
    return r < 0 ? r : write_path(p, val);
}

static int file_write_i64(const char *dir, const char *name, int64_t v)
{
    char s[32];
    (void) snprintf(s, sizeof(s), "%lld", (long long) v);
    return file_write(dir, name, s);
}

/* Reads at most size-1 bytes, NUL-terminated. Returns the length or -errno. */
static ssize_t fd_read_all(int fd, char *buf, size_t size)
{
    size_t got = 0;

    while (got < size - 1) {
        ssize_t n = pread(fd, buf + got, size - 1 - got, (off_t) got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t) n;
    }
    buf[got] = '\0';
    return (ssize_t) got;
}

static ssize_t file_read(const char *dir, const char *name, char *buf, size_t size)
{
    char p[PATH_MAX];
    int r = name ? path_join(p, sizeof(p), dir, name) : 0;

    buf[0] = '\0';                      /* also on failure */
    if (r < 0)
        return r;
    _cleanup_close_ int fd = open(name ? p : dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    return fd_read_all(fd, buf, size);
}

/* The value of "key value" lines (memory.events, memory.oom_control,
 * cgroup.events). -ENOENT when the key is absent. */
static int kv_get(const char *text, const char *key, long long *ret)
{
    size_t kl = strlen(key);

    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
        if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
            *ret = strtoll(l + kl + 1, NULL, 10);
            return 0;
        }
    return -ENOENT;
}

/* Whether the comma- (or space-) separated list has the token. */
static bool list_has(const char *list, size_t len, const char *tok, char sep)
{
    size_t tl = strlen(tok);

    for (size_t i = 0; i < len;) {
        const char *e = memchr(list + i, sep, len - i);
        size_t n = e ? (size_t) (e - (list + i)) : len - i;
        if (n == tl && memcmp(list + i, tok, tl) == 0)
            return true;
        i += n + 1;
    }
    return false;
}

static bool session_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > CG_SESSION_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* ---- where the worker's cgroups are ---------------------------------------- */

/* In /proc/self/cgroup text ("id:ctrl,ctrl:path" lines), the worker's path
 * in the hierarchy holding ctrl, or with ctrl NULL the v2 line ("0::").
 * Named v1 hierarchies ("name=systemd") never match a controller. */
static int own_path(const char *text, const char *ctrl, char *ret, size_t size)
{
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        const char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        const char *end = strchrnul(l, '\n');
        if (!c2 || c2 > end)
            continue;
        bool hit = ctrl ? list_has(c1 + 1, (size_t) (c2 - c1 - 1), ctrl, ',')
                        : c2 == c1 + 1 && c1 - l == 1 && l[0] == '0';
        if (!hit)
            continue;
        int n = snprintf(ret, size, "%.*s", (int) (end - c2 - 1), c2 + 1);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
    }
    return -ENOENT;
}

/* v2 only: no line names a real controller (hybrid hosts with just
 * name=systemd on v1 count as v2). */
static bool is_v2(const char *text)
{
    char p[8];
    for (size_t i = 0; i < _CG_CTRL_MAX; i++)
        if (own_path(text, ctrl_name[i], p, sizeof(p)) != -ENOENT)
            return false;
    return own_path(text, NULL, p, sizeof(p)) != -ENOENT;
}

/* Mount point of the cgroupfs of fstype ("cgroup2", or "cgroup" with ctrl
 * among its super options), joined with own (relative to the mount's root)
 * and sub, into ret. -ENOENT when there is no such mount or our cgroup is
 * outside it. */
static int hier_dir(const char *fstype, const char *ctrl, const char *own, const char *sub, char *ret,
                    size_t size)
{
    _cleanup_(fclosep) FILE *f = fopen("/proc/self/mountinfo", "re");
    _cleanup_free_ char *line = NULL;
    size_t cap = 0;

    if (!f)
        return -errno;
    while (getline(&line, &cap, f) > 0) {
        char root[PATH_MAX], mnt[PATH_MAX], type[32], opts[256];
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
            sscanf(dash, " - %31s %*s %255s", type, opts) != 2 || strcmp(type, fstype) != 0)
            continue;
        if (ctrl && !list_has(opts, strlen(opts), ctrl, ','))
            continue;
        size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
        if (strchr(mnt, '\\') || strncmp(own, root, rl) != 0 || (own[rl] != '/' && own[rl] != '\0'))
            continue;
        const char *rel = own + rl;
        int n = snprintf(ret, size, "%s%s%s%s", mnt, strcmp(rel, "/") == 0 ? "" : rel, sub ? "/" : "",
                         sub ? sub : "");
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
    }
    return -ENOENT;
}

/* ---- the session object ------------------------------------------------------ */

static struct al_cgroup *cg_new(int version)
{
    struct al_cgroup *cg = al_xcalloc(1, sizeof(*cg));

    cg->version = version;
    for (size_t i = 0; i < _CG_CTRL_MAX; i++)
        cg->at[i] = -1;
    return cg;
}

static void cg_free(struct al_cgroup *cg)
{
    for (size_t i = 0; i < cg->n; i++) {
        free(cg->dir[i]);
        free(cg->procs[i]);
    }
    free(cg);
}

static void cg_freep(struct al_cgroup **p)
{
    if (*p)
        cg_free(*p);
}

/* Adds dir (or finds it: co-mounted v1 controllers share one) for ctrl. */
static void cg_add(struct al_cgroup *cg, enum cg_ctrl ctrl, const char *dir)
{
    for (size_t i = 0; i < cg->n; i++)
        if (strcmp(cg->dir[i], dir) == 0) {
            cg->at[ctrl] = (int) i;
            return;
        }
    cg->dir[cg->n] = al_xstrdup(dir);
    cg->procs[cg->n] = al_xasprintf("%s/cgroup.procs", dir);
    cg->at[ctrl] = (int) cg->n++;
}

/* ---- teardown ---------------------------------------------------------------- */

static void kill_one(long pid, size_t *seen)
{
    if (pid <= 0 || pid == (long) getpid())
        return;                         /* never the worker itself */
    (void) kill((pid_t) pid, SIGKILL);
    (*seen)++;
}

/* SIGKILLs every pid listed in procs (read in chunks: a big session lists
 * more than one buffer). Adds the number seen to *seen. A missing file is
 * an empty cgroup. The pids are those of the worker's pid namespace. */
static int procs_kill(const char *procs, size_t *seen)
{
    _cleanup_close_ int fd = open(procs, O_RDONLY | O_CLOEXEC);
    char buf[4096];
    long pid = 0;
    bool in = false;

    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] >= '0' && buf[i] <= '9' && pid < INT_MAX / 10) {
                pid = pid * 10 + (buf[i] - '0');
                in = true;
            } else if (in) {
                kill_one(pid, seen);
                pid = 0, in = false;
            }
        }
        if (n == 0)
            break;
    }
    if (in)
        kill_one(pid, seen);
    return 0;
}

static int kill_pass(const struct al_cgroup *cg, size_t *seen)
{
    int r = 0;

    *seen = 0;
    for (size_t i = 0; i < cg->n; i++) {
        int k = procs_kill(cg->procs[i], seen);
        if (k < 0 && r == 0)
            r = k;
    }
    return r;
}

/* The first kill. v2 ≥5.14: cgroup.kill, which also catches forks racing
 * with it. Otherwise freeze (v2 cgroup.freeze, v1 freezer.state) so the
 * listed pids can neither fork nor exit and be reused, SIGKILL each, thaw
 * so they can die. v1 without a freezer: a plain pass; wait_empty() repeats
 * it until nothing is left. */
static int kill_all(const struct al_cgroup *cg)
{
    size_t seen;
    int r;

    if (cg->version == 2) {
        if (file_write(cg->dir[0], "cgroup.kill", "1") == 0)
            return 0;
        (void) file_write(cg->dir[0], "cgroup.freeze", "1");
        r = kill_pass(cg, &seen);
        (void) file_write(cg->dir[0], "cgroup.freeze", "0");
        return r;
    }
    const char *fz = cg->at[CG_FREEZER] >= 0 ? cg->dir[cg->at[CG_FREEZER]] : NULL;
    if (fz)
        (void) file_write(fz, "freezer.state", "FROZEN");
    r = kill_pass(cg, &seen);
    if (fz)
        (void) file_write(fz, "freezer.state", "THAWED");
    return r;
}

/* One wait step, at most *sleep_us (doubling from 50 µs up to
 * CG_SLEEP_MAX_US) and never past deadline. v2: returns at once when
 * cgroup.events says "populated 0", else waits for it to change (POLLPRI;
 * reading re-arms it); the timeout still matters there because the kernel
 * rate-limits cgroup file notifications to one per 10 ms, and the join
 * moments before has usually spent it. v1 has no event: a plain sleep. */
static void wait_step(int events_fd, int64_t deadline, int64_t *sleep_us)
{
    int64_t us = AL_MIN(*sleep_us, deadline - al_mono_us());
    struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long) (us % 1000000) * 1000 };
    char buf[256];
    long long populated = 1;

    if (us <= 0)
        return;
    *sleep_us = AL_MIN(*sleep_us * 2, CG_SLEEP_MAX_US);
    if (events_fd >= 0 && fd_read_all(events_fd, buf, sizeof(buf)) >= 0 &&
        kv_get(buf, "populated", &populated) == 0) {
        struct pollfd p = { .fd = events_fd, .events = POLLPRI };
        if (populated != 0)
            (void) ppoll(&p, 1, &ts, NULL);
        return;
    }
    (void) nanosleep(&ts, NULL);
}

/* Until every cgroup.procs is empty, SIGKILLing whatever is still listed
 * (anything forked before the kill landed; a dying process again, which is
 * harmless). -ETIMEDOUT after CG_KILL_WAIT_US (a task stuck in D state). */
static int wait_empty(const struct al_cgroup *cg)
{
    char p[PATH_MAX];
    _cleanup_close_ int ev = -1;
    int64_t deadline = al_mono_us() + CG_KILL_WAIT_US, sleep_us = 50;
    size_t seen;

    if (cg->version == 2 && path_join(p, sizeof(p), cg->dir[0], "cgroup.events") == 0)
        ev = open(p, O_RDONLY | O_CLOEXEC);
    for (;;) {
        int r = kill_pass(cg, &seen);
        if (r < 0 || seen == 0)
            return r;
        if (al_mono_us() >= deadline)
            return -ETIMEDOUT;
        wait_step(ev, deadline, &sleep_us);
    }
}

/* rmdir each directory; EBUSY (the last task still leaving) is retried
 * until CG_RMDIR_WAIT_US. A directory already gone is fine. */
static int rmdir_all(const struct al_cgroup *cg)
{
    int64_t deadline = al_mono_us() + CG_RMDIR_WAIT_US, sleep_us = 50;
    int ret = 0;

    for (size_t i = cg->n; i-- > 0;) {
        while (rmdir(cg->dir[i]) < 0 && errno != ENOENT) {
            if (errno != EBUSY || al_mono_us() >= deadline) {
                ret = ret ? ret : -errno;
                break;
            }
            struct timespec ts = { .tv_nsec = (long) sleep_us * 1000 };
            (void) nanosleep(&ts, NULL);
            sleep_us = AL_MIN(sleep_us * 2, CG_SLEEP_MAX_US);
        }
    }
    return ret;
}

static int cg_teardown(const struct al_cgroup *cg)
{
    int r = kill_all(cg);
    int w = wait_empty(cg);
    int d = rmdir_all(cg);

    return r < 0 ? r : w < 0 ? w : d;
}

/* mkdir dir (0755). A leftover of a crashed worker with the same session id
 * (EEXIST) is emptied and removed first: joining it would put the new
 * session beside the old one's processes. */
static int mkdir_session(int version, const char *dir)
{
    if (mkdir(dir, 0755) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    _cleanup_(cg_freep) struct al_cgroup *stale = cg_new(version);
    cg_add(stale, CG_MEM, dir);
    int r = cg_teardown(stale);
    if (r < 0)
        return r;
    return mkdir(dir, 0755) < 0 ? -errno : 0;
}

/* mkdir parent (may exist), then parent/sid as above. */
static int mkdir_under(int version, const char *parent, const char *sid, char *ret, size_t size)
{
    int r = path_join(ret, size, parent, sid);

    if (r < 0)
        return r;
    if (mkdir(parent, 0755) < 0 && errno != EEXIST)
        return -errno;
    return mkdir_session(version, ret);
}

/* ---- cgroup v1 ----------------------------------------------------------------- */

/* <mount of ctrl's hierarchy>/<own path>/airlock into parent, and
 * parent/<sid> into dir. */
static int v1_dirs(const char *text, const char *ctrl, const char *sid, char parent[PATH_MAX],
                   char dir[PATH_MAX])
{
    char own[PATH_MAX];
    int r = own_path(text, ctrl, own, sizeof(own));

    if (r == 0)
        r = hier_dir("cgroup", ctrl, own, CG_V1_PARENT, parent, PATH_MAX);
    return r < 0 ? r : path_join(dir, PATH_MAX, parent, sid);
}

/* For each of memory, pids, cpu, freezer that is mounted and writable:
 * <mount>/<own path>/airlock/<sid>. Co-mounted controllers (cpu,cpuacct)
 * share one directory. Fails only when none could be made. */
static int v1_create(struct al_cgroup *cg, const char *text, const char *sid, char why[AL_SANDBOX_WHY])
{
    int first = 0;

    for (size_t c = 0; c < _CG_CTRL_MAX; c++) {
        char parent[PATH_MAX], dir[PATH_MAX];
        bool made = false;
        int r = v1_dirs(text, ctrl_name[c], sid, parent, dir);
        for (size_t i = 0; r == 0 && i < cg->n; i++)
            made |= strcmp(cg->dir[i], dir) == 0;
        if (r == 0 && !made)
            r = mkdir_under(1, parent, sid, dir, sizeof(dir));
        if (r == 0)
            cg_add(cg, (enum cg_ctrl) c, dir);
        else if (first == 0 || first == -ENOENT)
            first = r;
    }
    if (cg->n == 0) {
        (void) snprintf(why, AL_SANDBOX_WHY, "cgroup v1: no writable memory/pids/cpu/freezer hierarchy (%s)",
                        al_errno_name(-first) ? al_errno_name(-first) : "?");
        return first;
    }
    return 0;
}

static int v1_limits(const struct al_cgroup *cg, const struct al_sandbox_limits *l, char why[AL_SANDBOX_WHY])
{
    const char *mem = cg->at[CG_MEM] >= 0 ? cg->dir[cg->at[CG_MEM]] : NULL;
    const char *pids = cg->at[CG_PIDS] >= 0 ? cg->dir[cg->at[CG_PIDS]] : NULL;
    const char *cpu = cg->at[CG_CPU] >= 0 ? cg->dir[cg->at[CG_CPU]] : NULL;
    const char *what = NULL;
    int r = 0;

    if (mem && l->memory_max > 0) {
        what = "memory.limit_in_bytes";
        r = file_write_i64(mem, what, l->memory_max);
        /* memsw = memory + swap: equal means no swap. Absent without swap
         * accounting; then swap is simply not limited here. */
        int s = r < 0 ? 0 : file_write_i64(mem, "memory.memsw.limit_in_bytes", l->memory_max);
        if (s < 0 && s != -ENOENT)
            what = "memory.memsw.limit_in_bytes", r = s;
    }
    if (r == 0 && pids && l->pids_max > 0)
        what = "pids.max", r = file_write_i64(pids, what, l->pids_max);
    if (r == 0 && cpu && l->cpu_pct > 0) {
        what = "cpu.cfs_period_us", r = file_write_i64(cpu, what, CG_CPU_PERIOD);
        if (r == 0)
            what = "cpu.cfs_quota_us", r = file_write_i64(cpu, what, l->cpu_pct * (CG_CPU_PERIOD / 100));
    }
    if (r < 0)
        (void) snprintf(why, AL_SANDBOX_WHY, "cgroup v1: writing %s: %s", what,
                        al_errno_name(-r) ? al_errno_name(-r) : "?");
    return r;
}

/* ---- cgroup v2 ------------------------------------------------------------------ */

enum { CG_M_MEM = 1u << CG_MEM, CG_M_PIDS = 1u << CG_PIDS, CG_M_CPU = 1u << CG_CPU };

/* Controllers of ours listed in a space-separated controller file. */
static unsigned ctrl_mask(const char *dir, const char *name)
{
    char buf[512];
    unsigned m = 0;
    ssize_t n = file_read(dir, name, buf, sizeof(buf));

    if (n < 0)
        return 0;
    buf[strcspn(buf, "\n")] = '\0';
    for (size_t c = 0; c < CG_FREEZER; c++)
        if (list_has(buf, strlen(buf), ctrl_name[c], ' '))
            m |= 1u << c;
    return m;
}

/* Enables the controllers of *want in dir's cgroup.subtree_control, one at
 * a time; those in need must succeed, others (cpu: refused while realtime
 * tasks exist) are dropped from *want when they fail. */
static int enable(const char *dir, unsigned *want, unsigned need)
{
    unsigned have = ctrl_mask(dir, "cgroup.subtree_control");

    for (size_t c = 0; c < CG_FREEZER; c++) {
        char tok[16];
        if (!(*want & (1u << c)) || (have & (1u << c)))
            continue;
        (void) snprintf(tok, sizeof(tok), "+%s", ctrl_name[c]);
        int r = file_write(dir, "cgroup.subtree_control", tok);
        if (r < 0 && (need & (1u << c)))
            return r;
        if (r < 0)
            *want &= ~(1u << c);
    }
    return 0;
}

/* Enables *want below base. The no-internal-processes rule: a non-root v2
 * cgroup that has processes cannot enable controllers for its children
 * (EBUSY), and the worker usually sits in base itself (a systemd service
 * with Delegate=yes, a container's cgroup namespace root). Then the worker
 * moves itself into base/airlock-worker, a leaf beside the sessions, and
 * tries again; if other processes remain in base we give up and say so. */
static int v2_enable_base(const char *base, unsigned *want, unsigned need, char why[AL_SANDBOX_WHY])
{
    char leaf[PATH_MAX], pid[24];
    int r = enable(base, want, need);

    if (r != -EBUSY)
        goto out;
    r = path_join(leaf, sizeof(leaf), base, CG_V2_WORKER_LEAF);
    if (r == 0 && mkdir(leaf, 0755) < 0 && errno != EEXIST)
        r = -errno;
    (void) snprintf(pid, sizeof(pid), "%d", (int) getpid());
    if (r == 0)
        r = file_write(leaf, "cgroup.procs", pid);
    if (r == 0)
        r = enable(base, want, need);
    if (r == -EBUSY) {
        (void) snprintf(why, AL_SANDBOX_WHY,
                        "cgroup v2: %.80s holds processes besides the worker; cannot enable controllers", base);
        return r;
    }
out:
    if (r < 0)
        (void) snprintf(why, AL_SANDBOX_WHY, "cgroup v2: enabling controllers in %.80s: %s", base,
                        al_errno_name(-r) ? al_errno_name(-r) : "?");
    return r;
}

/* base/airlock-sessions/<sid> with want (⊇ need) enabled for it. base is
 * the worker's cgroup directory; if the worker already moved itself into
 * airlock-worker (an earlier session), base is that leaf's parent. */
static int v2_create(struct al_cgroup *cg, const char *base_in, const char *sid, unsigned need,
                     char why[AL_SANDBOX_WHY])
{
    char base[PATH_MAX], parent[PATH_MAX], dir[PATH_MAX];
    size_t bl = strlen(base_in), ll = strlen("/" CG_V2_WORKER_LEAF);
    int n = snprintf(base, sizeof(base), "%s", base_in);

    if (n < 0 || (size_t) n >= sizeof(base))
        return -ENAMETOOLONG;
    if (bl > ll && strcmp(base + bl - ll, "/" CG_V2_WORKER_LEAF) == 0)
        base[bl - ll] = '\0';
    unsigned want = ctrl_mask(base, "cgroup.controllers") & (CG_M_MEM | CG_M_PIDS | CG_M_CPU);
    if ((want & need) != need) {
        (void) snprintf(why, AL_SANDBOX_WHY, "cgroup v2: memory and pids not delegated to %.100s", base);
        return -EOPNOTSUPP;
    }
    int r = v2_enable_base(base, &want, need, why);
    if (r < 0)
        return r;
    r = path_join(parent, sizeof(parent), base, CG_V2_PARENT);
    if (r == 0 && mkdir(parent, 0755) < 0 && errno != EEXIST)
        r = -errno;
    if (r == 0)
        r = enable(parent, &want, need);
    if (r == 0)
        r = mkdir_under(2, parent, sid, dir, sizeof(dir));
    if (r < 0) {
        (void) snprintf(why, AL_SANDBOX_WHY, "cgroup v2: creating %.80s/%s: %s", parent, sid,
                        al_errno_name(-r) ? al_errno_name(-r) : "?");
        return r;
    }
    for (size_t c = 0; c < _CG_CTRL_MAX; c++)
        if (c == CG_FREEZER || (want & (1u << c)))
            cg_add(cg, (enum cg_ctrl) c, dir);    /* v2: one directory for all */
    return 0;
}

static int v2_limits(const struct al_cgroup *cg, const struct al_sandbox_limits *l, char why[AL_SANDBOX_WHY])
{
    const char *d = cg->dir[0], *what = NULL;
    char cpu[48];
    int r = 0;

    if (cg->at[CG_MEM] >= 0 && l->memory_max > 0) {
        what = "memory.max", r = file_write_i64(d, what, l->memory_max);
        if (r == 0)
            what = "memory.high", r = file_write_i64(d, what, l->memory_max / 10 * 9);
        if (r == 0) {
            /* Absent when the kernel has no swap accounting: nothing to limit. */
            what = "memory.swap.max", r = file_write(d, what, "0");
            r = r == -ENOENT ? 0 : r;
        }
        if (r == 0)
            what = "memory.oom.group", r = file_write(d, what, "1");
    }
    if (r == 0 && cg->at[CG_PIDS] >= 0 && l->pids_max > 0)
        what = "pids.max", r = file_write_i64(d, what, l->pids_max);
    if (r == 0 && cg->at[CG_CPU] >= 0 && l->cpu_pct > 0) {
        (void) snprintf(cpu, sizeof(cpu), "%lld %d", (long long) l->cpu_pct * (CG_CPU_PERIOD / 100), CG_CPU_PERIOD);
        what = "cpu.max", r = file_write(d, what, cpu);
    }
    if (r < 0)
        (void) snprintf(why, AL_SANDBOX_WHY, "cgroup v2: writing %s: %s", what,
                        al_errno_name(-r) ? al_errno_name(-r) : "?");
    return r;
}

/* ---- the contract (sandbox.h) -------------------------------------------------- */

/* Reads /proc/self/cgroup and makes the directories: v2 when no v1
 * controller is listed, under base (the worker's cgroup on the cgroup2
 * mount); else v1. */
static int cg_make(struct al_cgroup **ret, const char *sid, char why[AL_SANDBOX_WHY])
{
    char text[8192], own[PATH_MAX], base[PATH_MAX];
    ssize_t n = file_read("/proc/self/cgroup", NULL, text, sizeof(text));

    if (n < 0) {
        (void) snprintf(why, AL_SANDBOX_WHY, "cgroup: cannot read /proc/self/cgroup");
        return (int) n;
    }
    if (!is_v2(text)) {
        *ret = cg_new(1);
        return v1_create(*ret, text, sid, why);
    }
    int r = own_path(text, NULL, own, sizeof(own));
    if (r == 0)
        r = hier_dir("cgroup2", NULL, own, NULL, base, sizeof(base));
    if (r < 0) {
        (void) snprintf(why, AL_SANDBOX_WHY, "cgroup v2: the worker's cgroup is not under a cgroup2 mount");
        return r;
    }
    *ret = cg_new(2);
    return v2_create(*ret, base, sid, CG_M_MEM | CG_M_PIDS, why);
}

/* Success leaves a one-line summary in why ("cgroup v1: memory pids cpu
 * freezer"), which the probe report shows. */
static void summary(const struct al_cgroup *cg, char why[AL_SANDBOX_WHY])
{
    int n = snprintf(why, AL_SANDBOX_WHY, "cgroup v%d:", cg->version);

    for (size_t c = 0; c < _CG_CTRL_MAX && n > 0 && n < AL_SANDBOX_WHY; c++)
        if (cg->at[c] >= 0)
            n += snprintf(why + n, AL_SANDBOX_WHY - (size_t) n, " %s", ctrl_name[c]);
}

struct al_cgroup *al_cgroup_create(const char *session_id, const struct al_sandbox_limits *l, int *err,
                                   char why[AL_SANDBOX_WHY])
{
    _cleanup_(cg_freep) struct al_cgroup *cg = NULL;
    int r;

    why[0] = '\0';
    *err = 0;
    if (!session_id_ok(session_id)) {
        (void) snprintf(why, AL_SANDBOX_WHY, "cgroup: session id must be 1-64 of [A-Za-z0-9_-]");
        *err = -EINVAL;
        return NULL;
    }
    r = cg_make(&cg, session_id, why);
    if (r == 0 && l)
        r = cg->version == 2 ? v2_limits(cg, l, why) : v1_limits(cg, l, why);
    if (r < 0) {
        if (cg)
            (void) rmdir_all(cg);       /* nothing joined yet: empty directories */
        *err = r;
        return NULL;
    }
    summary(cg, why);
    return TAKE_PTR(cg);
}

const char *const *al_cgroup_procs_paths(const struct al_cgroup *cg)
{
    static const char *const none[] = { NULL };

    return cg ? (const char *const *) cg->procs : none;
}

int al_cgroup_join(const char *const *procs_paths)
{
    char pid[24];

    (void) snprintf(pid, sizeof(pid), "%d", (int) getpid());
    for (size_t i = 0; procs_paths && procs_paths[i]; i++) {
        int r = write_path(procs_paths[i], pid);
        if (r < 0)
            return r;
    }
    return 0;
}

int al_cgroup_destroy(struct al_cgroup *cg)
{
    if (!cg)
        return 0;
    int r = cg_teardown(cg);
    cg_free(cg);
    return r;
}

int al_cgroup_oom_kills(const struct al_cgroup *cg)
{
    char buf[1024];
    long long v = 0;

    if (!cg || cg->at[CG_MEM] < 0)
        return 0;
    const char *mem = cg->dir[cg->at[CG_MEM]];
    if (cg->version == 2)
        return file_read(mem, "memory.events", buf, sizeof(buf)) >= 0 && kv_get(buf, "oom_kill", &v) == 0
                       ? (int) AL_MIN(v, INT_MAX)
                       : 0;
    if (file_read(mem, "memory.oom_control", buf, sizeof(buf)) >= 0 && kv_get(buf, "oom_kill", &v) == 0)
        return (int) AL_MIN(v, INT_MAX);
    /* Before 4.13 there is no oom_kill line: hitting the limit at all. */
    if (file_read(mem, "memory.failcnt", buf, sizeof(buf)) >= 0)
        return strtoll(buf, NULL, 10) > 0;
    return 0;
}
