/* SPDX-License-Identifier: Apache-2.0 */
/* airlock-sandbox-bench: the `sandbox` stage of bench/run.sh. Measures the
 * sandboxed tool runner (`airlock sandbox-runner --isolation B|A`) against
 * `unshare` (7 namespaces) and bubblewrap, side by side in one run, for the
 * targets T1-T3 and T5-T7 of sandbox-notes §5.5:
 *
 *   ttfc      spawn -> first `true` answered (ours: wait for "ready", send a
 *             bash tool call; baselines: a persistent bash on pipes fed the
 *             ttfc.py sentinel script), then close -> everything exited
 *             (teardown; level A also removes the session's cgroups)
 *   calls     warm session: bash tool `true` and `/bin/true` round trips,
 *             against a bare persistent bash on a pipe pair (same sentinel)
 *   idle      N idle sessions held at once; PSS of every process of each
 *   rate      creations per second, serial and with 4 in parallel: ours
 *             spawn -> ready -> close -> exited; baselines run /bin/true
 *
 * Timing: CLOCK_MONOTONIC around blocking syscalls; children are started
 * with posix_spawn (vfork+exec) for every variant alike. Not a test: nothing
 * here asserts, it prints a table. Everything it starts is waited for; the
 * cgroups it creates are removed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/sandbox/zygote.h"

#define MAX_ARGS 48

struct opts {
    const char *airlock, *dir;
    long uid;
    int runs, calls, exec_calls, idle, par;
    double rate_s;
    bool cgroups;                 /* level A: a v1 cgroup per session */
    bool only_ours;
};

static struct opts O = {
    .uid = -1, .runs = 200, .calls = 2000, .exec_calls = 300, .idle = 50, .par = 4, .rate_s = 2.0,
};

static char ws[4096];             /* the sessions' workdir (host path) */
static const char *child_env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C", NULL };

static void die(const char *what)
{
    fprintf(stderr, "airlock-sandbox-bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v. */
static int64_t pct(const int64_t *v, int n, double p)
{
    int k = (int) (p / 100.0 * n + 0.999999) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

struct stat_row { int64_t p50, p90, p99; int n; };

static struct stat_row summarise(int64_t *v, int n)
{
    qsort(v, (size_t) n, sizeof(*v), cmp_i64);
    return (struct stat_row) { pct(v, n, 50), pct(v, n, 90), pct(v, n, 99), n };
}

static ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *) buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -1 : (ssize_t) got;
        got += (size_t) k;
    }
    return (ssize_t) got;
}

static int write_full(int fd, const void *buf, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t k = write(fd, (const char *) buf + put, n - put);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        put += (size_t) k;
    }
    return 0;
}

/* ---- the variants ------------------------------------------------------- */

enum kind { OURS_B, OURS_A, OURS_BZ, OURS_AZ, UNSHARE, BWRAP, PLAIN, NKIND };
static const char *const kind_name[NKIND] = {
    "airlock runner, level B, exec'd", "airlock runner, level A (cgroup v1), exec'd",
    "airlock runner, level B, from the zygote", "airlock runner, level A (cgroup v1), from the zygote",
    "unshare, 7 namespaces", "bwrap --unshare-all", "plain bash (no sandbox)",
};

static bool ours(enum kind k)
{
    return k == OURS_B || k == OURS_A || k == OURS_BZ || k == OURS_AZ;
}

static bool level_a(enum kind k)
{
    return k == OURS_A || k == OURS_AZ;
}

static bool zygote_kind(enum kind k)
{
    return k == OURS_BZ || k == OURS_AZ;
}

struct sess {
    enum kind k;
    pid_t pid;
    int fd;                       /* ours: the socket; baselines: bash's stdin */
    int out;                      /* baselines: bash's stdout; ours -1 */
    uint64_t next_id;
    char cg[4][256];              /* level A: cgroup dirs, "" when unused */
    int ncg;
};

static const char *const cg_ctrls[] = { "memory", "pids", "cpu", "freezer" };
static unsigned cg_seq;
static pid_t main_pid;    /* names the parent cgroup dirs */

/* Level A: what al_cgroup_create does on v1 (a dir per controller, limits
 * written), done here since the worker, not the runner, owns cgroups. */
static int cg_create(struct sess *s)
{
    s->ncg = 0;
    for (size_t i = 0; i < sizeof(cg_ctrls) / sizeof(cg_ctrls[0]); i++) {
        char *d = s->cg[s->ncg];
        snprintf(d, sizeof(s->cg[0]), "/sys/fs/cgroup/%s/airlock-bench-%d/s%u", cg_ctrls[i], (int) main_pid, cg_seq++);
        if (mkdir(d, 0755) < 0)
            return -1;
        s->ncg++;
        char f[300];
        const char *file = NULL, *val = NULL;
        if (!strcmp(cg_ctrls[i], "memory"))
            file = "memory.limit_in_bytes", val = "2147483648";
        else if (!strcmp(cg_ctrls[i], "pids"))
            file = "pids.max", val = "512";
        else if (!strcmp(cg_ctrls[i], "cpu"))
            file = "cpu.cfs_quota_us", val = "200000";
        if (file) {
            snprintf(f, sizeof(f), "%s/%s", d, file);
            int fd = open(f, O_WRONLY | O_CLOEXEC);
            if (fd < 0 || write(fd, val, strlen(val)) < 0)
                return -1;
            close(fd);
        }
    }
    return 0;
}

static void cg_remove(struct sess *s)
{
    for (int i = 0; i < s->ncg; i++)
        for (int t = 0; rmdir(s->cg[i]) < 0 && errno == EBUSY && t < 1000; t++)
            usleep(100);
    s->ncg = 0;
}

static void cg_parents(bool make)
{
    for (size_t i = 0; i < sizeof(cg_ctrls) / sizeof(cg_ctrls[0]); i++) {
        char d[256];
        snprintf(d, sizeof(d), "/sys/fs/cgroup/%s/airlock-bench-%d", cg_ctrls[i], (int) main_pid);
        if (make) {
            if (mkdir(d, 0755) < 0 && errno != EEXIST)
                die(d);
        } else
            (void) rmdir(d);
    }
}

static void cleanup_cgroups(void)
{
    if (getpid() == main_pid)
        cg_parents(false);
}

static bool cgroups_writable(void)
{
    char d[256];
    snprintf(d, sizeof(d), "/sys/fs/cgroup/memory/airlock-bench-probe-%d", (int) getpid());
    if (mkdir(d, 0755) < 0)
        return false;
    rmdir(d);
    for (size_t i = 1; i < sizeof(cg_ctrls) / sizeof(cg_ctrls[0]); i++) {
        snprintf(d, sizeof(d), "/sys/fs/cgroup/%s", cg_ctrls[i]);
        if (access(d, W_OK) < 0)
            return false;
    }
    return true;
}

/* argv of a variant; `cmd` NULL: a persistent bash, else run cmd. */
static int build_argv(enum kind k, struct sess *s, const char *cmd, const char **av, char bufs[][300])
{
    int n = 0, nb = 0;
    switch (k) {
    case OURS_B:
    case OURS_A:
    case OURS_BZ:
    case OURS_AZ:
        av[n++] = O.airlock;
        /* The standalone runner takes no subcommand. */
        if (!strstr(O.airlock, "airlock-sandbox-runner"))
            av[n++] = "sandbox-runner";
        av[n++] = "--fd";
        av[n++] = "3";
        av[n++] = "--workdir";
        av[n++] = ws;
        av[n++] = "--log-level";
        av[n++] = "warn";
        av[n++] = "--isolation";
        av[n++] = level_a(k) ? "A" : "B";
        if (O.uid >= 0) {
            snprintf(bufs[nb], 300, "%ld", O.uid);
            av[n++] = "--uid";
            av[n++] = bufs[nb];
            av[n++] = "--gid";
            av[n++] = bufs[nb++];
        }
        for (int i = 0; level_a(k) && i < s->ncg; i++) {
            snprintf(bufs[nb], 300, "%s/cgroup.procs", s->cg[i]);
            av[n++] = "--cgroup";
            av[n++] = bufs[nb++];
        }
        break;
    case UNSHARE: {
        static const char *const a[] = { "unshare", "-U", "-r", "-m", "-p", "-n", "-i", "-u", "-C", "-f", "--mount-proc",
                                         NULL };
        for (int i = 0; a[i]; i++)
            av[n++] = a[i];
        break;
    }
    case BWRAP: {
        static const char *const a[] = { "bwrap", "--new-session", "--die-with-parent", "--unshare-all", "--unshare-user",
                                         "--cap-drop", "ALL", "--ro-bind", "/", "/", "--tmpfs", "/tmp", "--proc",
                                         "/proc", "--dev", "/dev", "--bind", NULL };
        for (int i = 0; a[i]; i++)
            av[n++] = a[i];
        av[n++] = ws;
        av[n++] = "/mnt";    /* exists in /, which is read-only here (as ttfc.py) */
        av[n++] = "--chdir";
        av[n++] = "/mnt";
        av[n++] = "--";
        break;
    }
    default:
        break;
    }
    if (!ours(k)) {
        if (cmd)
            av[n++] = cmd;
        else {
            av[n++] = "/bin/bash";
            av[n++] = "--noprofile";
            av[n++] = "--norc";
        }
    }
    av[n] = NULL;
    return n;
}

static int null_fd = -1;

/* This process's zygote (the rate runs fork drivers: each gets its own,
 * as each worker has its own), started as the worker starts it. */
static int zyg_fd = -1;
static pid_t zyg_owner, zyg_pid;

static int zygote_sock(void)
{
    if (zyg_fd >= 0 && zyg_owner == getpid())
        return zyg_fd;
    if (zyg_fd >= 0)
        close(zyg_fd);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair");
    const char *av[4];
    int n = 0;
    av[n++] = O.airlock;
    if (!strstr(O.airlock, "airlock-sandbox-runner"))
        av[n++] = "sandbox-runner";
    av[n++] = "--zygote";
    av[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, null_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, null_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    int r = posix_spawn(&zyg_pid, av[0], &fa, NULL, (char *const *) av, (char *const *) child_env);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (r) {
        errno = r;
        die("zygote spawn");
    }
    zyg_fd = sv[0];
    zyg_owner = getpid();
    return zyg_fd;
}

/* Starts a session (cmd NULL) or a one-shot command; fills s. */
static int start(enum kind k, struct sess *s, const char *cmd)
{
    const char *av[MAX_ARGS];
    char bufs[8][300];
    posix_spawn_file_actions_t fa;
    int a[2] = { -1, -1 }, b[2] = { -1, -1 };

    s->k = k;
    s->fd = s->out = -1;
    s->next_id = 1;
    if (level_a(k) && cg_create(s) < 0)
        die("cgroup create");
    build_argv(k, s, cmd, av, bufs);
    if (zygote_kind(k)) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) < 0)
            die("socketpair");
        /* What the worker does: the zygote runs the runner's main, so
         * `airlock`'s subcommand word is not sent. */
        int r = al_zygote_spawn(zygote_sock(), (char *const *) av + (strstr(O.airlock, "airlock-sandbox-runner") ? 0 : 1),
                                a[1], 5000, &s->pid);
        close(a[1]);
        if (r < 0) {
            errno = -r;
            die("zygote");
        }
        s->fd = a[0];
        return 0;
    }
    posix_spawn_file_actions_init(&fa);
    if (ours(k)) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) < 0)
            die("socketpair");
        posix_spawn_file_actions_adddup2(&fa, null_fd, 0);
        posix_spawn_file_actions_adddup2(&fa, null_fd, 1);
        posix_spawn_file_actions_adddup2(&fa, a[1], 3);
        s->fd = a[0];
    } else if (cmd) {
        posix_spawn_file_actions_adddup2(&fa, null_fd, 0);
        posix_spawn_file_actions_adddup2(&fa, null_fd, 1);
    } else {
        if (pipe2(a, O_CLOEXEC) < 0 || pipe2(b, O_CLOEXEC) < 0)
            die("pipe");
        posix_spawn_file_actions_adddup2(&fa, a[0], 0);
        posix_spawn_file_actions_adddup2(&fa, b[1], 1);
        posix_spawn_file_actions_adddup2(&fa, b[1], 2);
        s->fd = a[1];
        s->out = b[0];
    }
    int r = posix_spawnp(&s->pid, av[0], &fa, NULL, (char *const *) av, (char *const *) child_env);
    posix_spawn_file_actions_destroy(&fa);
    if (ours(k))
        close(a[1]);
    else if (!cmd) {
        close(a[0]);
        close(b[1]);
    }
    if (r) {
        errno = r;
        die(av[0]);
    }
    return 0;
}

/* Ours: reads one frame into buf (NUL-terminated); its length or -1. */
static ssize_t frame_read(int fd, char *buf, size_t cap)
{
    unsigned char h[4];
    if (read_full(fd, h, 4) != 4)
        return -1;
    size_t len = (size_t) h[0] << 24 | (size_t) h[1] << 16 | (size_t) h[2] << 8 | h[3];
    if (len >= cap)
        return -1;
    if (read_full(fd, buf, len) != (ssize_t) len)
        return -1;
    buf[len] = '\0';
    return (ssize_t) len;
}

static int wait_ready(struct sess *s)
{
    char buf[4096];
    if (frame_read(s->fd, buf, sizeof(buf)) < 0 || !strstr(buf, "\"ready\"")) {
        fprintf(stderr, "airlock-sandbox-bench: %s: no \"ready\" (runner stderr is in the stage log)\n", kind_name[s->k]);
        return -1;
    }
    return 0;
}

/* One command, answered. Ours: a bash tool call; baselines: the ttfc.py
 * sentinel script on the shell's stdin. 0 or -1. */
static int roundtrip(struct sess *s, const char *cmd)
{
    char buf[8192];
    if (ours(s->k)) {
        int n = snprintf(buf + 4, sizeof(buf) - 4,
                         "{\"id\":%llu,\"op\":\"tool\",\"name\":\"bash\",\"input\":{\"command\":\"%s\"}}",
                         (unsigned long long) s->next_id++, cmd);
        buf[0] = (char) (n >> 24), buf[1] = (char) (n >> 16), buf[2] = (char) (n >> 8), buf[3] = (char) n;
        if (write_full(s->fd, buf, (size_t) n + 4) < 0 || frame_read(s->fd, buf, sizeof(buf)) < 0)
            return -1;
        if (!strstr(buf, "\"is_error\":false")) {
            fprintf(stderr, "airlock-sandbox-bench: unexpected answer: %.300s\n", buf);
            return -1;
        }
        return 0;
    }
    int n = snprintf(buf, sizeof(buf), "{ %s\n} </dev/null 2>&1; printf '\\n__S''ENT__%%d\\n' $?\n", cmd);
    if (write_full(s->fd, buf, (size_t) n) < 0)
        return -1;
    size_t got = 0;
    for (;;) {
        ssize_t k = read(s->out, buf + got, sizeof(buf) - 1 - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t) k;
        buf[got] = '\0';
        char *m = strstr(buf, "__SENT__");
        if (m && strchr(m, '\n'))
            return 0;
        if (got > sizeof(buf) / 2) {   /* keep the tail */
            memmove(buf, buf + got - 64, 64);
            got = 64;
        }
    }
}

/* Close -> every process of the session gone (and level A's cgroups). */
static int finish(struct sess *s)
{
    int st = 0;
    if (s->fd >= 0)
        close(s->fd);
    if (s->out >= 0)
        close(s->out);
    s->fd = s->out = -1;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (level_a(s->k))
        cg_remove(s);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ---- ttfc and teardown --------------------------------------------------- */

struct ttfc_res { struct stat_row first, ready, down; int fails; };

static struct ttfc_res run_ttfc(enum kind k, int runs)
{
    int64_t *first = calloc((size_t) runs, sizeof(int64_t)), *ready = calloc((size_t) runs, sizeof(int64_t)),
            *down = calloc((size_t) runs, sizeof(int64_t));
    struct ttfc_res r = { 0 };
    int n = 0;
    for (int i = 0; i < runs + 5; i++) {
        struct sess s;
        int64_t t0 = now_ns();
        start(k, &s, NULL);
        int64_t t1 = t0;
        if (ours(k) && wait_ready(&s) < 0) {
            r.fails++;
            finish(&s);
            continue;
        }
        t1 = now_ns();
        int ok = roundtrip(&s, "true");
        int64_t t2 = now_ns();
        int fin = finish(&s);
        int64_t t3 = now_ns();
        if (ok < 0 || fin < 0) {
            r.fails++;
            continue;
        }
        if (i < 5)
            continue;    /* warm-up */
        first[n] = t2 - t0, ready[n] = t1 - t0, down[n] = t3 - t2;
        n++;
    }
    if (n) {
        r.first = summarise(first, n);
        r.ready = summarise(ready, n);
        r.down = summarise(down, n);
    }
    free(first), free(ready), free(down);
    return r;
}

/* ---- warm calls ----------------------------------------------------------- */

static struct stat_row run_calls(enum kind k, const char *cmd, int calls)
{
    int64_t *v = calloc((size_t) calls, sizeof(int64_t));
    struct sess s;
    int n = 0;
    start(k, &s, NULL);
    if (ours(k) && wait_ready(&s) < 0) {
        finish(&s);
        exit(1);
    }
    for (int i = 0; i < calls + 50; i++) {
        int64_t t0 = now_ns();
        if (roundtrip(&s, cmd) < 0) {
            fprintf(stderr, "airlock-sandbox-bench: %s: %s failed\n", kind_name[k], cmd);
            break;
        }
        if (i >= 50)
            v[n++] = now_ns() - t0;
    }
    finish(&s);
    struct stat_row r = n ? summarise(v, n) : (struct stat_row) { 0 };
    free(v);
    return r;
}

/* ---- idle memory ---------------------------------------------------------- */

/* Sum of Pss (KiB) of pid and all its descendants; *nproc gets their count. */
static long pss_tree(pid_t root, int *nproc)
{
    enum { MAXP = 65536 };
    static pid_t pids[MAXP], ppids[MAXP];
    static bool in[MAXP];
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < MAXP) {
        char p[300], buf[512];
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(p, sizeof(p), "/proc/%s/stat", e->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        ssize_t k = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (fd >= 0)
            close(fd);
        if (k <= 0)
            continue;
        buf[k] = '\0';
        char *rp = strrchr(buf, ')');
        int pp;
        char st;
        if (!rp || sscanf(rp + 1, " %c %d", &st, &pp) != 2)
            continue;
        pids[n] = (pid_t) atoi(buf), ppids[n] = pp, in[n] = pids[n] == root;
        n++;
    }
    if (d)
        closedir(d);
    for (bool grew = true; grew;) {
        grew = false;
        for (int i = 0; i < n; i++)
            for (int j = 0; !in[i] && j < n; j++)
                if (in[j] && pids[j] == ppids[i])
                    in[i] = grew = true;
    }
    long sum = 0;
    *nproc = 0;
    for (int i = 0; i < n; i++) {
        if (!in[i])
            continue;
        char p[64], line[256];
        snprintf(p, sizeof(p), "/proc/%d/smaps_rollup", (int) pids[i]);
        FILE *f = fopen(p, "re");
        long v = 0;
        while (f && fgets(line, sizeof(line), f))
            if (sscanf(line, "Pss: %ld", &v) == 1)
                break;
        if (f)
            fclose(f);
        sum += v;
        (*nproc)++;
    }
    return sum;
}

static long mem_available_kib(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[256];
    long v = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

struct idle_res { long pss_kib, avail_kib, zygote_kib; double procs; };

static struct idle_res run_idle(enum kind k, int count)
{
    struct sess *s = calloc((size_t) count, sizeof(*s));
    struct idle_res r = { 0 };
    long before = mem_available_kib();
    for (int i = 0; i < count; i++) {
        start(k, &s[i], NULL);
        if ((ours(k) && wait_ready(&s[i]) < 0) || roundtrip(&s[i], "true") < 0) {
            fprintf(stderr, "airlock-sandbox-bench: %s: idle session %d did not start\n", kind_name[k], i);
            for (int j = 0; j <= i; j++)
                finish(&s[j]);
            exit(1);
        }
    }
    usleep(300000);
    long after = mem_available_kib(), pss = 0;
    int procs = 0;
    for (int i = 0; i < count; i++) {
        int np;
        pss += pss_tree(s[i].pid, &np);
        procs += np;
    }
    if (zygote_kind(k)) {
        int np;
        r.zygote_kib = pss_tree(zyg_pid, &np);
    }
    for (int i = 0; i < count; i++)
        finish(&s[i]);
    free(s);
    r.pss_kib = pss / count;
    r.avail_kib = (before - after) / count;
    r.procs = (double) procs / count;
    return r;
}

/* ---- creation rate ------------------------------------------------------- */

/* Creations per second over rate_s, with par forked drivers. Ours: spawn ->
 * ready -> close -> exited; baselines: the sandbox running /bin/true. */
static double run_rate(enum kind k, int par)
{
    int p[2];
    if (pipe(p) < 0)
        die("pipe");
    int64_t end = now_ns() + (int64_t) (O.rate_s * 1e9);
    int64_t t0 = now_ns();
    for (int w = 0; w < par; w++) {
        pid_t c = fork();
        if (c < 0)
            die("fork");
        if (c == 0) {
            long done = 0;
            close(p[0]);
            cg_seq = (unsigned) (w + 1) * 1000000u;
            while (now_ns() < end) {
                struct sess s;
                start(k, &s, ours(k) ? NULL : "/bin/true");
                if (ours(k) && wait_ready(&s) < 0)
                    _exit(1);
                if (finish(&s) < 0)
                    _exit(1);
                done++;
            }
            (void) !write(p[1], &done, sizeof(done));
            _exit(0);
        }
    }
    close(p[1]);
    long total = 0, v;
    while (read_full(p[0], &v, sizeof(v)) == sizeof(v))
        total += v;
    close(p[0]);
    int st, bad = 0;
    for (int w = 0; w < par; w++)
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
            bad++;
    double secs = (double) (now_ns() - t0) / 1e9;
    if (bad)
        fprintf(stderr, "airlock-sandbox-bench: %s: %d rate workers failed\n", kind_name[k], bad);
    return (double) total / secs;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void)
{
    fputs("usage: airlock-sandbox-bench --airlock PATH --dir DIR [options]\n"
          "The sandbox stage of bench/run.sh (docs/BENCHMARKS.md): airlock's sandboxed runner\n"
          "against unshare and bwrap. DIR: a fresh dir for the workdir (mode 0711 is set).\n"
          "  --uid N        host uid of the sandboxes when root (default 1073746066 as root)\n"
          "  --runs N       session create -> first command samples per variant (200)\n"
          "  --calls N      warm builtin `true` calls (2000)\n"
          "  --exec-calls N warm `/bin/true` calls (300)\n"
          "  --idle N       idle sessions held for the memory figure (50)\n"
          "  --rate-secs S  length of each creation-rate run (2)\n"
          "  --par N        parallel drivers in the second rate run (4)\n"
          "  --no-cgroups   skip level A even when cgroup v1 is writable\n"
          "  --quick        small counts: a smoke run in seconds\n",
          stderr);
}

static void ms_cell(char *out, size_t n, int64_t ns)
{
    snprintf(out, n, "%.2f", (double) ns / 1e6);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "airlock", 1, 0, 'a' }, { "dir", 1, 0, 'd' },       { "uid", 1, 0, 'u' },        { "runs", 1, 0, 'r' },
        { "calls", 1, 0, 'c' },   { "exec-calls", 1, 0, 'e' }, { "idle", 1, 0, 'i' },       { "rate-secs", 1, 0, 's' },
        { "par", 1, 0, 'p' },     { "no-cgroups", 0, 0, 'n' }, { "quick", 0, 0, 'q' },      { "help", 0, 0, 'h' },
        { 0 },
    };
    bool no_cg = false;
    int c;
    if (geteuid() == 0)
        O.uid = 1073746066L;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'a': O.airlock = optarg; break;
        case 'd': O.dir = optarg; break;
        case 'u': O.uid = atol(optarg); break;
        case 'r': O.runs = atoi(optarg); break;
        case 'c': O.calls = atoi(optarg); break;
        case 'e': O.exec_calls = atoi(optarg); break;
        case 'i': O.idle = atoi(optarg); break;
        case 's': O.rate_s = atof(optarg); break;
        case 'p': O.par = atoi(optarg); break;
        case 'n': no_cg = true; break;
        case 'q': O.runs = 20, O.calls = 200, O.exec_calls = 30, O.idle = 5, O.rate_s = 0.5; break;
        default: usage(); return c == 'h' ? 0 : 2;
        }
    }
    if (!O.airlock || !O.dir || O.runs < 1 || O.calls < 1 || O.exec_calls < 1 || O.idle < 1 || O.par < 1) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    main_pid = getpid();
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    /* The session's uid must be able to reach its workdir. */
    snprintf(ws, sizeof(ws), "%s/ws", O.dir);
    if (chmod(O.dir, 0711) < 0 || (mkdir(ws, 0755) < 0 && errno != EEXIST))
        die(O.dir);
    if (O.uid >= 0 && chown(ws, (uid_t) O.uid, (gid_t) O.uid) < 0)
        die("chown workdir");
    O.cgroups = !no_cg && geteuid() == 0 && cgroups_writable();
    if (O.cgroups) {
        cg_parents(true);
        atexit(cleanup_cgroups);
    }

    bool have_bwrap = access("/usr/bin/bwrap", X_OK) == 0;
    enum kind kinds[NKIND];
    int nk = 0;
    kinds[nk++] = OURS_B;
    kinds[nk++] = OURS_BZ;
    if (O.cgroups) {
        kinds[nk++] = OURS_A;
        kinds[nk++] = OURS_AZ;
    }
    kinds[nk++] = UNSHARE;
    if (have_bwrap)
        kinds[nk++] = BWRAP;
    else
        fprintf(stderr, "airlock-sandbox-bench: bwrap missing: its column is skipped (apt-get install bubblewrap)\n");

    printf("runner: %s sandbox-runner --isolation B%s%s\n", O.airlock, O.cgroups ? " and A" : "",
           O.uid >= 0 ? " --uid/--gid set" : "");
    printf("driver: C, CLOCK_MONOTONIC, posix_spawn for every variant; %d ttfc runs (+5 warm-up), %d warm calls,"
           " %d idle sessions, %.1f s per rate run\n\n",
           O.runs, O.calls, O.idle, O.rate_s);

    /* T1 + T5 */
    printf("T1 session create -> first `true` answered, T5 close -> all exited (ms)\n");
    printf("| variant | first p50 | p90 | p99 | (ready p50) | teardown p50 | p99 | failures |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    enum kind tk[NKIND + 1];
    int ntk = 0;
    for (int i = 0; i < nk; i++)
        tk[ntk++] = kinds[i];
    tk[ntk++] = PLAIN;
    for (int i = 0; i < ntk; i++) {
        struct ttfc_res r = run_ttfc(tk[i], O.runs);
        char a[6][32];
        ms_cell(a[0], 32, r.first.p50), ms_cell(a[1], 32, r.first.p90), ms_cell(a[2], 32, r.first.p99);
        ms_cell(a[4], 32, r.down.p50), ms_cell(a[5], 32, r.down.p99);
        if (ours(tk[i]))
            ms_cell(a[3], 32, r.ready.p50);
        else
            snprintf(a[3], 32, "-");
        printf("| %s | %s | %s | %s | %s | %s | %s | %d |\n", kind_name[tk[i]], a[0], a[1], a[2], a[3], a[4], a[5],
               r.fails);
        fflush(stdout);
    }

    /* T2 + T3 */
    printf("\nT2/T3 warm session round trip (us): builtin `true` (%d calls), `/bin/true` (%d calls)\n", O.calls,
           O.exec_calls);
    printf("| variant | true p50 | p99 | /bin/true p50 | p99 |\n|---|---|---|---|---|\n");
    enum kind ck[] = { OURS_BZ, PLAIN, BWRAP };
    for (size_t i = 0; i < sizeof(ck) / sizeof(ck[0]); i++) {
        if (ck[i] == BWRAP && !have_bwrap)
            continue;
        struct stat_row a = run_calls(ck[i], "true", O.calls), b = run_calls(ck[i], "/bin/true", O.exec_calls);
        printf("| %s | %.1f | %.1f | %.1f | %.1f |\n", ck[i] == PLAIN ? "bash on a pipe pair (raw)" : kind_name[ck[i]],
               (double) a.p50 / 1e3, (double) a.p99 / 1e3, (double) b.p50 / 1e3, (double) b.p99 / 1e3);
        fflush(stdout);
    }

    /* T6 */
    printf("\nT6 idle memory, %d sessions held, each after one `true` (KiB per session)\n", O.idle);
    printf("| variant | PSS | processes | MemAvailable drop |\n|---|---|---|---|\n");
    for (int i = 0; i < nk; i++) {
        struct idle_res r = run_idle(kinds[i], O.idle);
        if (zygote_kind(kinds[i]))
            printf("| %s (+ the zygote once: %ld KiB) | %ld | %.1f | %ld |\n", kind_name[kinds[i]], r.zygote_kib,
                   r.pss_kib, r.procs, r.avail_kib);
        else
            printf("| %s | %ld | %.1f | %ld |\n", kind_name[kinds[i]], r.pss_kib, r.procs, r.avail_kib);
        fflush(stdout);
        usleep(500000);    /* let the async netns teardown settle */
    }

    /* T7 */
    printf("\nT7 creations per second (ours: spawn -> ready -> close -> exited; baselines run /bin/true)\n");
    printf("| variant | serial | %d in parallel |\n|---|---|---|\n", O.par);
    for (int i = 0; i < nk; i++) {
        double a = run_rate(kinds[i], 1);
        usleep(500000);
        double b = run_rate(kinds[i], O.par);
        usleep(500000);
        printf("| %s | %.0f/s | %.0f/s |\n", kind_name[kinds[i]], a, b);
        fflush(stdout);
    }
    return 0;
}
