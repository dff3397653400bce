/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/sandbox/ns.c. Each test forks a "runner" that calls
 * al_ns_enter(); the sandbox child (PID 1 of its namespaces) sets up the
 * file system and network, checks what it sees from inside and reports one
 * line per check over a pipe that is its fd 3, as the worker's socket is.
 * The test then checks the host side (file owners, the parent's exit).
 * Skips (77) when the kernel refuses user namespaces, unless
 * AL_SANDBOX_MUST_WORK=1 (or AIRLOCK_SANDBOX_MUST_WORK=1) is set.
 * AL_NS_BENCH=N runs N sandboxes and prints the median cost of each step. */
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "al_test.h"
/* Included for its static helpers (remount_add_flags); the library's copy
 * of ns.o is then not linked in. */
#include "src/sandbox/ns.c"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#define TMP_SIZE   (8LL << 20)
#define TMP_INODES 1000

struct fixture {
    char dir[256];
    char work[300];
    char out[300];
    struct al_sandbox_limits lim;
    struct al_ns_cfg cfg;
    pid_t pid;              /* the "runner", killed by teardown if left */
};

static int setup(void **state)
{
    struct fixture *fx = al_xcalloc(1, sizeof(*fx));
    bool root = geteuid() == 0;

    al_test_mkdtemp(fx->dir);
    (void) snprintf(fx->work, sizeof(fx->work), "%s/work", fx->dir);
    (void) snprintf(fx->out, sizeof(fx->out), "%s/out", fx->dir);
    assert_int_equal(mkdir(fx->work, 0755), 0);
    assert_int_equal(mkdir(fx->out, 0755), 0);
    fx->lim = (struct al_sandbox_limits){ .tmp_size = TMP_SIZE, .tmp_inodes = TMP_INODES };
    /* As root, a per-session-like unprivileged uid that owns the session's
     * directories; otherwise our own ids, the only ones we may map. */
    fx->cfg = (struct al_ns_cfg){
        .workdir = fx->work,
        .outputs = fx->out,
        .uid = root ? (uid_t) (200000 + getpid() % 10000) : geteuid(),
        .gid = root ? (gid_t) (200000 + getpid() % 10000) : getegid(),
        .lim = &fx->lim,
    };
    if (root) {
        assert_int_equal(chown(fx->work, fx->cfg.uid, fx->cfg.gid), 0);
        assert_int_equal(chown(fx->out, fx->cfg.uid, fx->cfg.gid), 0);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    if (fx->pid > 0) {
        (void) kill(fx->pid, SIGKILL);
        (void) waitpid(fx->pid, NULL, 0);
    }
    al_test_rm_rf(fx->dir);
    free(fx);
    return 0;
}

/* ---- inside the sandbox ------------------------------------------------- */

struct report {
    char buf[8192];
    size_t len;
};

_printf_(3, 4) static void rep(struct report *r, bool ok, const char *fmt, ...)
{
    va_list ap;
    int n;

    n = snprintf(r->buf + r->len, sizeof(r->buf) - r->len, "%s ", ok ? "ok" : "FAIL");
    if (n > 0 && (size_t) n < sizeof(r->buf) - r->len)
        r->len += (size_t) n;
    va_start(ap, fmt);
    n = vsnprintf(r->buf + r->len, sizeof(r->buf) - r->len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t) n < sizeof(r->buf) - r->len)
        r->len += (size_t) n;
    if (r->len < sizeof(r->buf) - 1)
        r->buf[r->len++] = '\n';
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t) w;
    }
}

static ssize_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t n;

    if (fd < 0)
        return -errno;
    while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t) n;
    buf[len] = '\0';
    (void) close(fd);
    return (ssize_t) len;
}

static int errno_of(int r)
{
    return r < 0 ? errno : 0;
}

/* Runs a /bin/sh script in a child: true when it exits 0. */
static bool run_sh(const char *script)
{
    int st = 0;
    pid_t pid = fork();

    if (pid == 0) {
        (void) execl("/bin/sh", "sh", "-c", script, (char *) NULL);
        _exit(127);
    }
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void check_identity(struct report *r, const struct al_ns_cfg *c)
{
    char buf[256], want[64];

    rep(r, getpid() == 1, "pid1 getpid=%d", (int) getpid());
    rep(r, getuid() == 0 && geteuid() == 0 && getgid() == 0, "uid0 uid=%u gid=%u", (unsigned) getuid(),
        (unsigned) getgid());
    (void) snprintf(want, sizeof(want), "%u", (unsigned) c->uid);
    rep(r, read_file("/proc/self/uid_map", buf, sizeof(buf)) > 0 && strstr(buf, want), "uid_map %s", buf);
    rep(r, getgroups(0, NULL) == 0 || geteuid() != 0, "no supplementary groups (%d)", getgroups(0, NULL));
    rep(r, gethostname(buf, sizeof(buf)) == 0 && strcmp(buf, "airlock") == 0, "hostname %s", buf);
    rep(r, getcwd(buf, sizeof(buf)) && strcmp(buf, "/workspace") == 0, "cwd %s", buf);
}

static void check_files(struct report *r)
{
    int fd, e;

    fd = open("/workspace/created", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    rep(r, fd >= 0 && write(fd, "hello", 5) == 5, "workspace writable errno=%d", errno);
    if (fd >= 0)
        (void) close(fd);
    fd = open("/mnt/session/outputs/out.txt", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    rep(r, fd >= 0, "outputs writable errno=%d", errno);
    if (fd >= 0)
        (void) close(fd);
    e = errno_of(mkdir("/usr/al-test", 0755));
    rep(r, e == EROFS, "/usr read-only (mkdir errno=%d)", e);
    e = errno_of(open("/etc/al-test", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    rep(r, e == EROFS, "/etc read-only (create errno=%d)", e);
    e = errno_of(mkdir("/al-test", 0755));
    rep(r, e == EROFS, "/ read-only (mkdir errno=%d)", e);
    e = errno_of(mkdir("/dev/al-test", 0755));
    rep(r, e == EROFS, "/dev read-only (mkdir errno=%d)", e);
    rep(r, access("/usr/bin", X_OK) == 0 && access("/bin/sh", X_OK) == 0, "/usr/bin and /bin/sh reachable");
    e = errno_of(access("/sys", F_OK));
    rep(r, e == ENOENT, "no /sys (errno=%d)", e);
    /* Only as root do we map an uid that is not the file owners'. */
    if (access("/etc/shadow", F_OK) == 0 && getenv("AL_TEST_ROOT_HOST")) {
        e = errno_of(open("/etc/shadow", O_RDONLY | O_CLOEXEC));
        rep(r, e == EACCES, "/etc/shadow unreadable (errno=%d)", e);
    }
}

static void check_tmp(struct report *r)
{
    struct statfs sf;
    struct stat st;
    int fd;

    rep(r, statfs("/tmp", &sf) == 0 && sf.f_type == TMPFS_MAGIC, "/tmp is tmpfs");
    rep(r, (long long) sf.f_blocks * sf.f_bsize == TMP_SIZE && sf.f_files == TMP_INODES,
        "/tmp size=%lld inodes=%lld", (long long) sf.f_blocks * sf.f_bsize, (long long) sf.f_files);
    rep(r, stat("/tmp", &st) == 0 && (st.st_mode & 07777) == 01777, "/tmp mode %o", st.st_mode & 07777);
    fd = open("/tmp/x", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    rep(r, fd >= 0, "/tmp writable");
    if (fd >= 0)
        (void) close(fd);
    rep(r, statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC, "/dev/shm is tmpfs");
}

static void check_proc(struct report *r, bool pooled_net)
{
    char a[4096], b[4096];
    struct statvfs sv;
    struct dirent *de;
    struct stat st;
    int pids = 0, e;
    DIR *d;

    /* PID 1 is us, and not dumpable: what the session runs cannot read
     * our environment or reach our fds (fd 3 is the worker's socket). */
    e = (int) -read_file("/proc/1/environ", a, sizeof(a));
    rep(r, e == EACCES, "/proc/1/environ hidden (errno=%d)", e);
    rep(r, run_sh("test -r /proc/self/environ && test -r /proc/$$/status"), "a child reads its own /proc");
    rep(r, run_sh("! (exec 9</proc/1/environ) 2>/dev/null && ! test -e /proc/1/fd/3 && ! (exec 9>/proc/1/fd/3) 2>/dev/null"),
        "a child cannot reach PID 1's environ or fd 3");
    (void) b;
    d = opendir("/proc");
    while (d && (de = readdir(d)))
        pids += de->d_name[0] >= '1' && de->d_name[0] <= '9';
    if (d)
        (void) closedir(d);
    rep(r, pids == 1, "only our process in /proc (%d)", pids);
    rep(r, stat("/proc/kcore", &st) != 0 || S_ISCHR(st.st_mode), "/proc/kcore masked");
    rep(r, read_file("/proc/keys", a, sizeof(a)) <= 0, "/proc/keys masked");
    rep(r, statvfs("/proc/sys", &sv) == 0 && (sv.f_flag & ST_RDONLY), "/proc/sys read-only");
    /* Our own netns's sysctls belong to us: only the mount stops this
     * (EROFS). A pooled one (netns_fd) belongs to the host's user
     * namespace, and the write is refused before the mount is looked at. */
    e = errno_of(open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC));
    rep(r, e == (pooled_net ? EACCES : EROFS), "/proc/sys/net/ipv4/ip_forward read-only (errno=%d)", e);
    rep(r, read_file("/proc/meminfo", a, sizeof(a)) > 0, "/proc/meminfo readable");
}

static void check_dev(struct report *r)
{
    static const char *const allowed[] = { ".", "..", "null", "zero", "full", "random", "urandom", "tty", "pts",
                                           "ptmx", "shm", "fd", "stdin", "stdout", "stderr" };
    unsigned char z[16] = { 1 };
    struct dirent *de;
    int fd, extra = 0;
    DIR *d;

    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    rep(r, fd >= 0 && write(fd, "abc", 3) == 3 && read(fd, z, 1) == 0, "/dev/null works");
    if (fd >= 0)
        (void) close(fd);
    fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    rep(r, fd >= 0 && read(fd, z, sizeof(z)) == (ssize_t) sizeof(z) && z[0] == 0 && z[15] == 0, "/dev/zero works");
    if (fd >= 0)
        (void) close(fd);
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    rep(r, fd >= 0 && read(fd, z, sizeof(z)) == (ssize_t) sizeof(z), "/dev/urandom works");
    if (fd >= 0)
        (void) close(fd);
    fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    rep(r, fd >= 0, "/dev/ptmx opens errno=%d", errno);
    if (fd >= 0)
        (void) close(fd);
    rep(r, access("/dev/fd/1", F_OK) == 0, "/dev/fd/1 exists");
    d = opendir("/dev");
    while (d && (de = readdir(d))) {
        bool ok = false;
        for (size_t i = 0; i < AL_ELEMENTSOF(allowed); i++)
            ok = ok || strcmp(de->d_name, allowed[i]) == 0;
        if (!ok) {
            rep(r, false, "unexpected /dev/%s", de->d_name);
            extra++;
        }
    }
    if (d)
        (void) closedir(d);
    rep(r, d && extra == 0 && access("/dev/sda", F_OK) != 0 && access("/dev/vda", F_OK) != 0, "no other devices");
}

static void check_net(struct report *r)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    char buf[4096], *p;
    struct ifreq ifr = { 0 };
    int ifs = 0, l, s;

    if (read_file("/proc/net/dev", buf, sizeof(buf)) > 0) {
        p = strchr(buf, '\n');
        p = p ? strchr(p + 1, '\n') : NULL;
        while (p && *++p) {
            ifs++;
            rep(r, strncmp(p + strspn(p, " "), "lo:", 3) == 0, "interface %.8s", p + strspn(p, " "));
            p = strchr(p, '\n');
        }
    }
    rep(r, ifs == 1, "one interface (%d)", ifs);
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    (void) snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    rep(r, s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP), "lo up");
    if (s >= 0)
        (void) close(s);
    l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    rep(r, l >= 0 && s >= 0 && bind(l, (struct sockaddr *) &sa, sizeof(sa)) == 0 && listen(l, 1) == 0 &&
               getsockname(l, (struct sockaddr *) &sa, &sl) == 0 && connect(s, (struct sockaddr *) &sa, sl) == 0,
        "loopback connect errno=%d", errno);
    (void) close(l);
    (void) close(s);
}

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
    (void) sig;
    got_term = 1;
}

/* The runner's part: enter, set up, check, report on fd 3; then wait for
 * SIGTERM (forwarded by the parent from outside) and exit 42. */
_Noreturn static void sandbox_main(const struct al_ns_cfg *cfg, int report_fd)
{
    struct sigaction sa = { .sa_handler = on_term };
    char why[AL_SANDBOX_WHY] = "";
    struct report r = { .len = 0 };
    int rc;

    if (report_fd != 3) {
        (void) dup2(report_fd, 3);
        (void) close(report_fd);
    }
    rc = al_ns_enter(cfg, why);
    if (rc < 0) {
        rep(&r, false, "enter %d %s", rc, why);
        send_all(3, r.buf, r.len);
        _exit(rc == -EPERM || rc == -ENOSPC ? 77 : 1);
    }
    rc = al_ns_setup_fs(cfg, why);
    rep(&r, rc == 0, "setup_fs %d %s", rc, why);
    rc = rc == 0 ? al_ns_setup_net(cfg, why) : rc;
    rep(&r, rc == 0, "setup_net %d %s", rc, why);
    if (rc == 0) {
        check_identity(&r, cfg);
        check_files(&r);
        check_tmp(&r);
        check_proc(&r, cfg->netns_fd >= 3);
        check_dev(&r);
        check_net(&r);
    }
    (void) sigaction(SIGTERM, &sa, NULL);
    r.len += (size_t) snprintf(r.buf + r.len, sizeof(r.buf) - r.len, "END\n");
    send_all(3, r.buf, r.len);
    while (!got_term)
        (void) pause();
    _exit(42);
}

/* ---- the host side ------------------------------------------------------- */

/* Reads until "END\n" or EOF (or 10 s). */
static size_t read_report(int fd, char *buf, size_t cap)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    size_t len = 0;
    ssize_t n;

    while (len < cap - 1 && !strstr(buf, "END\n")) {
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t) n;
        buf[len] = '\0';
    }
    return len;
}

static bool must_work(void)
{
    const char *a = getenv("AL_SANDBOX_MUST_WORK"), *b = getenv("AIRLOCK_SANDBOX_MUST_WORK");

    return (a && strcmp(a, "1") == 0) || (b && strcmp(b, "1") == 0);
}

static pid_t start(const struct al_ns_cfg *cfg, int *ret_fd)
{
    int p[2];
    pid_t pid;

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* As the runner does: a failed test (whose teardown cmocka skips)
         * or a dying test binary takes the sandbox along. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        (void) close(p[0]);
        sandbox_main(cfg, p[1]);
    }
    (void) close(p[1]);
    *ret_fd = p[0];
    return pid;
}

static int wait_exit(pid_t *pidp)
{
    pid_t pid = *pidp;
    int st = 0;

    *pidp = -1;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

static void test_sandbox_view(void **state)
{
    struct fixture *fx = *state;
    char buf[8192] = "", path[400], fdlink[64];
    struct stat st;
    int fd, e;

    if (geteuid() == 0)
        (void) setenv("AL_TEST_ROOT_HOST", "1", 1);
    fx->pid = start(&fx->cfg, &fd);
    (void) read_report(fd, buf, sizeof(buf));
    if (strstr(buf, "FAIL enter") && !must_work() && wait_exit(&fx->pid) == 77) {
        (void) close(fd);
        skip();
    }
    print_message("%s", buf);
    assert_non_null(strstr(buf, "END\n"));
    assert_null(strstr(buf, "FAIL"));

    /* The parent (still alive, waiting) holds no copy of fd 3. */
    (void) snprintf(fdlink, sizeof(fdlink), "/proc/%d/fd/3", (int) fx->pid);
    e = errno_of(access(fdlink, F_OK));
    ASSERT_I64_EQ(e, ENOENT);

    /* Files made inside belong to the mapped ids on the host. */
    (void) snprintf(path, sizeof(path), "%s/created", fx->work);
    assert_int_equal(stat(path, &st), 0);
    ASSERT_I64_EQ(st.st_uid, fx->cfg.uid);
    ASSERT_I64_EQ(st.st_gid, fx->cfg.gid);
    ASSERT_I64_EQ(st.st_size, 5);
    (void) snprintf(path, sizeof(path), "%s/out.txt", fx->out);
    assert_int_equal(stat(path, &st), 0);
    ASSERT_I64_EQ(st.st_uid, fx->cfg.uid);

    /* SIGTERM to the parent reaches PID 1, whose exit code it mirrors;
     * then the report pipe is at EOF (nobody else holds it). */
    assert_int_equal(kill(fx->pid, SIGTERM), 0);
    ASSERT_I64_EQ(wait_exit(&fx->pid), 42);
    ASSERT_I64_EQ(read(fd, buf, sizeof(buf)), 0);
    (void) close(fd);
}

/* The sandbox's host pid, from its parent's children list. */
static pid_t child_of(pid_t pid)
{
    char path[64], buf[64] = "";

    (void) snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int) pid, (int) pid);
    if (read_file(path, buf, sizeof(buf)) <= 0)
        return -1;
    return (pid_t) strtol(buf, NULL, 10);
}

static void test_killed_child_mirrored(void **state)
{
    struct fixture *fx = *state;
    char buf[8192] = "";
    pid_t inner;
    int fd;

    fx->pid = start(&fx->cfg, &fd);
    (void) read_report(fd, buf, sizeof(buf));
    if (strstr(buf, "FAIL enter") && !must_work() && wait_exit(&fx->pid) == 77) {
        (void) close(fd);
        skip();
    }
    assert_non_null(strstr(buf, "END\n"));
    inner = child_of(fx->pid);
    assert_true(inner > 0);
    assert_int_equal(kill(inner, SIGKILL), 0);
    ASSERT_I64_EQ(wait_exit(&fx->pid), 128 + SIGKILL);
    (void) close(fd);
}

static void test_dies_with_parent(void **state)
{
    struct fixture *fx = *state;
    struct pollfd pfd;
    char buf[8192] = "";
    int fd;

    fx->pid = start(&fx->cfg, &fd);
    (void) read_report(fd, buf, sizeof(buf));
    if (strstr(buf, "FAIL enter") && !must_work() && wait_exit(&fx->pid) == 77) {
        (void) close(fd);
        skip();
    }
    assert_non_null(strstr(buf, "END\n"));
    assert_int_equal(kill(fx->pid, SIGKILL), 0);
    ASSERT_I64_EQ(wait_exit(&fx->pid), 1000 + SIGKILL);
    /* PDEATHSIG kills PID 1, which takes its fd 3 along. */
    pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    ASSERT_I64_EQ(read(fd, buf, sizeof(buf)), 0);
    (void) close(fd);
}

static ino_t ino_of(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* The zygote's pool: al_netns_new leaves the caller where it was and gives
 * a namespace that is neither the caller's nor another call's; a sandbox
 * given it (netns_fd) runs in exactly that one, with lo up. */
static void test_netns_pool(void **state)
{
    struct fixture *fx = *state;
    char why[AL_SANDBOX_WHY] = "", buf[8192] = "", path[64];
    ino_t home = ino_of("/proc/thread-self/ns/net");
    struct stat a, b;
    int na, nb, fd;

    na = al_netns_new(why);
    if (na == -EPERM && geteuid() != 0 && !must_work())
        skip();     /* needs CAP_SYS_ADMIN: the zygote uses it as root only */
    assert_true(na >= 0);
    nb = al_netns_new(why);
    assert_true(nb >= 0);
    ASSERT_I64_EQ(ino_of("/proc/thread-self/ns/net"), home);
    assert_int_equal(fstat(na, &a), 0);
    assert_int_equal(fstat(nb, &b), 0);
    assert_true(a.st_ino != home && b.st_ino != home && a.st_ino != b.st_ino);
    ASSERT_I64_EQ(fcntl(na, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

    fx->cfg.netns_fd = na;
    fx->pid = start(&fx->cfg, &fd);
    (void) read_report(fd, buf, sizeof(buf));
    print_message("%s", buf);
    assert_non_null(strstr(buf, "END\n"));
    assert_null(strstr(buf, "FAIL"));
    pid_t inner = child_of(fx->pid);
    assert_true(inner > 0);
    (void) snprintf(path, sizeof(path), "/proc/%d/ns/net", (int) inner);
    ASSERT_I64_EQ(ino_of(path), a.st_ino);
    assert_int_equal(kill(fx->pid, SIGTERM), 0);
    ASSERT_I64_EQ(wait_exit(&fx->pid), 42);
    (void) close(fd);
    (void) close(na);
    (void) close(nb);
}

static void test_net_host(void **state)
{
    struct fixture *fx = *state;
    char why[AL_SANDBOX_WHY] = "";

    /* A no-op, and must not need any namespace. */
    fx->cfg.net_host = true;
    ASSERT_OK(al_ns_setup_net(&fx->cfg, why));
}

static void test_refusals(void **state)
{
    struct fixture *fx = *state;
    char why[AL_SANDBOX_WHY] = "";
    struct al_ns_cfg c = fx->cfg;
    pid_t self = getpid();

    c.uid = 0;
    ASSERT_RET(al_ns_enter(&c, why), -EPERM);
    assert_non_null(strstr(why, "refusing"));
    c = fx->cfg;
    c.gid = 0;
    ASSERT_RET(al_ns_enter(&c, why), -EPERM);
    c = fx->cfg;
    c.workdir = "/nonexistent/al-test";
    ASSERT_RET(al_ns_enter(&c, why), -ENOENT);
    c.workdir = NULL;
    ASSERT_RET(al_ns_enter(&c, why), -EINVAL);
    if (geteuid() != 0) {
        c = fx->cfg;
        c.uid = geteuid() + 1;
        ASSERT_RET(al_ns_enter(&c, why), -EPERM);
    }
    /* Nothing happened to us. */
    ASSERT_I64_EQ(getpid(), self);
    ASSERT_RET(al_ns_setup_fs(&fx->cfg, why), -EINVAL);
}

/* The pre-5.12 path: adding read-only to a bind of a mount whose nosuid,
 * nodev and noexec the kernel locked (copied into a less privileged mount
 * namespace). A plain read-only remount drops them and is refused; ours
 * restates them. Root only: we make the locked mount ourselves. */
static int locked_remount_child(const char *dir)
{
    char src[300], dst[300], dst2[300];
    struct statvfs sv;
    unsigned long want = ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC;

    (void) snprintf(src, sizeof(src), "%s/src", dir);
    (void) snprintf(dst, sizeof(dst), "%s/dst", dir);
    (void) snprintf(dst2, sizeof(dst2), "%s/dst2", dir);
    if (mkdir(src, 0755) < 0 || mkdir(dst, 0755) < 0 || mkdir(dst2, 0755) < 0)
        return 10;
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return 11;
    if (mount("tmpfs", src, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k") < 0)
        return 12;
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return 13;
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0 || mount(src, dst2, NULL, MS_BIND, NULL) < 0)
        return 14;
    if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) == 0 || errno != EPERM)
        return 15;
    if (remount_add_flags(dst, MS_RDONLY) < 0)
        return 16;
    if (statvfs(dst, &sv) < 0 || (sv.f_flag & want) != want)
        return 17;
    if (mount_add_flags(dst2, MS_RDONLY, true) < 0)
        return 18;
    if (statvfs(dst2, &sv) < 0 || (sv.f_flag & want) != want)
        return 19;
    return 0;
}

static void test_locked_flags_kept(void **state)
{
    struct fixture *fx = *state;
    pid_t pid;

    if (geteuid() != 0)
        skip();
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(locked_remount_child(fx->dir));
    fx->pid = pid;
    ASSERT_I64_EQ(wait_exit(&fx->pid), 0);
}

/* ---- AL_NS_BENCH ---------------------------------------------------------- */

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

/* One sandbox: t[0] before al_ns_enter, then after enter, fs, net. */
static bool bench_once(const struct al_ns_cfg *cfg, int64_t t[4])
{
    char why[AL_SANDBOX_WHY];
    int p[2];
    pid_t pid;
    bool ok;

    if (pipe2(p, O_CLOEXEC) < 0)
        return false;
    pid = fork();
    if (pid == 0) {
        int64_t tt[4];
        (void) dup2(p[1], 3);
        tt[0] = now_ns();
        if (al_ns_enter(cfg, why) < 0)
            _exit(1);
        tt[1] = now_ns();
        if (al_ns_setup_fs(cfg, why) < 0)
            _exit(1);
        tt[2] = now_ns();
        if (al_ns_setup_net(cfg, why) < 0)
            _exit(1);
        tt[3] = now_ns();
        send_all(3, (const char *) tt, sizeof(tt));
        _exit(0);
    }
    (void) close(p[1]);
    ok = pid > 0 && read(p[0], t, 4 * sizeof(int64_t)) == 4 * sizeof(int64_t);
    (void) close(p[0]);
    ok = wait_exit(&pid) == 0 && ok;
    return ok;
}

static void test_bench(void **state)
{
    struct fixture *fx = *state;
    const char *e = getenv("AL_NS_BENCH");
    int n = e ? (int) strtol(e, NULL, 10) : 0, done = 0;
    int64_t *d[4];

    if (n <= 0)
        skip();
    for (int k = 0; k < 4; k++)
        d[k] = al_xcalloc((size_t) n, sizeof(int64_t));
    for (int i = 0; i < n; i++) {
        int64_t t[4];
        if (!bench_once(&fx->cfg, t))
            continue;
        d[0][done] = t[1] - t[0];
        d[1][done] = t[2] - t[1];
        d[2][done] = t[3] - t[2];
        d[3][done] = t[3] - t[0];
        done++;
    }
    assert_int_equal(done, n);
    for (int k = 0; k < 4; k++)
        qsort(d[k], (size_t) done, sizeof(int64_t), cmp_i64);
    print_message("ns bench, %d runs, median (p90) us: enter %lld (%lld), setup_fs %lld (%lld), "
                  "setup_net %lld (%lld), total %lld (%lld)\n",
                  done, (long long) d[0][done / 2] / 1000, (long long) d[0][done * 9 / 10] / 1000,
                  (long long) d[1][done / 2] / 1000, (long long) d[1][done * 9 / 10] / 1000,
                  (long long) d[2][done / 2] / 1000, (long long) d[2][done * 9 / 10] / 1000,
                  (long long) d[3][done / 2] / 1000, (long long) d[3][done * 9 / 10] / 1000);
    for (int k = 0; k < 4; k++)
        free(d[k]);
}

/* Does this kernel let us create a user namespace at all? */
static int userns_errno(void)
{
    pid_t pid = fork();
    int st = 0;

    if (pid == 0)
        _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno & 0x7f);
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return ECHILD;
    return WIFEXITED(st) ? WEXITSTATUS(st) : ECHILD;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sandbox_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_child_mirrored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dies_with_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_net_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_netns_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_flags_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bench, setup, teardown),
    };
    int e = userns_errno();

    /* EPERM: disabled by policy (seccomp, AppArmor, sysctl); ENOSPC:
     * user.max_user_namespaces=0. Anything else is a real failure. */
    if ((e == EPERM || e == ENOSPC) && !must_work()) {
        print_message("user namespaces unavailable (%s): skipped\n", al_errno_name(e));
        return 77;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
