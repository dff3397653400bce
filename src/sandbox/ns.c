/* SPDX-License-Identifier: Apache-2.0 */
/* Namespaces and the session's file system (sandbox.h, ns.c part): one
 * clone() into fresh user, mount, pid, ipc, uts, cgroup (and net)
 * namespaces, the uid/gid maps written from outside, a tmpfs root built
 * from read-only binds of the host's system directories, and pivot_root.
 * Not a policy engine: what is mounted is fixed here and documented in
 * docs/internals/SANDBOX.md. Runs in the single-threaded runner before any
 * thread exists; never logs, never exits except in the waiting parent. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/base/log.h"
#include "sandbox.h"

/* Where the new root is assembled: the first of these that exists.
 * Mounting over it only hides it in our private mount namespace; the
 * session's host directories are reached through fds opened before that,
 * so they may live under /tmp too. */
#define NEWROOT      "/tmp", "/run", "/mnt"
#define SANDBOX_HOST "airlock"

#define TMP_SIZE_DEFAULT   (512LL << 20)
#define TMP_INODES_DEFAULT 65536LL

/* Opened by al_ns_enter() in the child before it takes the session's ids
 * (so the session uid need not be able to walk to them), consumed by
 * al_ns_setup_fs(). */
static int ns_workdir_fd = -1;
static int ns_outputs_fd = -1;

/* The parent's signal handlers forward to this pid. */
static volatile sig_atomic_t ns_child;

_printf_(3, 4) static int ns_err(char *why, int r, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!why)
        return r;
    va_start(ap, fmt);
    n = vsnprintf(why, AL_SANDBOX_WHY, fmt, ap);
    va_end(ap);
    if (n >= 0 && n < AL_SANDBOX_WHY - 2)
        (void) snprintf(why + n, (size_t) (AL_SANDBOX_WHY - n), ": %s", al_errno_name(-r));
    return r;
}

/* ---- al_ns_enter ---------------------------------------------------------- */

/* A fork that takes namespace flags: the child runs on a copy of our stack
 * and returns 0, as fork() does. glibc's clone() wrapper wants a function
 * and a stack instead. Safe here because the process is single-threaded;
 * the child's cached thread id in glibc's TCB is stale, which only matters
 * to pthread_kill() of the main thread (bubblewrap has the same caveat). */
static pid_t raw_clone(unsigned long flags)
{
#if defined(__s390__) || defined(__CRIS__)
    return (pid_t) syscall(SYS_clone, NULL, flags);
#else
    return (pid_t) syscall(SYS_clone, flags, NULL);
#endif
}

static int write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;
    int r = 0;

    if (fd < 0)
        return -errno;
    n = write(fd, s, strlen(s));
    if (n < 0)
        r = -errno;
    else if ((size_t) n != strlen(s))
        r = -EIO;
    (void) close(fd);
    return r;
}

/* From the parent, which is still in the host's user namespace: a process
 * inside the new one may only map its own uid (user_namespaces(7)). As
 * root, setgroups stays "allow" so the child can drop the supplementary
 * groups it inherited; otherwise it must be "deny" before gid_map. */
static int write_maps(pid_t pid, const struct al_ns_cfg *c, bool root, char *why)
{
    char path[64], map[64];
    int r;

    if (!root) {
        (void) snprintf(path, sizeof(path), "/proc/%d/setgroups", (int) pid);
        r = write_file(path, "deny");
        if (r < 0)
            return ns_err(why, r, "ns: write %s", path);
    }
    (void) snprintf(path, sizeof(path), "/proc/%d/uid_map", (int) pid);
    (void) snprintf(map, sizeof(map), "0 %u 1\n", (unsigned) c->uid);
    r = write_file(path, map);
    if (r < 0)
        return ns_err(why, r, "ns: write uid_map \"0 %u 1\"", (unsigned) c->uid);
    (void) snprintf(path, sizeof(path), "/proc/%d/gid_map", (int) pid);
    (void) snprintf(map, sizeof(map), "0 %u 1\n", (unsigned) c->gid);
    r = write_file(path, map);
    if (r < 0)
        return ns_err(why, r, "ns: write gid_map \"0 %u 1\"", (unsigned) c->gid);
    return 0;
}

static void forward_signal(int sig)
{
    if (ns_child > 0)
        (void) kill((pid_t) ns_child, sig);
}

/* The parent's whole remaining life: hold nothing of the session, pass
 * termination requests on, and exit as the child did. */
_Noreturn static void parent_wait(pid_t pid, int keep_fd, const sigset_t *mask)
{
    static const int fwd[] = { SIGTERM, SIGINT, SIGHUP };
    struct sigaction sa = { .sa_handler = forward_signal, .sa_flags = SA_RESTART };
    sigset_t m = *mask;
    int st = 0;

    /* fd 3 (the worker's socket) and the session's directory fds: the
     * worker must see EOF when the child dies, not when we do. keep_fd is
     * the sync pipe, whose hang-up tells the child we are gone. */
    if (keep_fd > 3)
        (void) close_range(3, (unsigned) keep_fd - 1, 0);
    (void) close_range(keep_fd < 3 ? 3U : (unsigned) keep_fd + 1, ~0U, 0);

    ns_child = pid;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < AL_ELEMENTSOF(fwd); i++) {
        (void) sigaction(fwd[i], &sa, NULL);
        (void) sigdelset(&m, fwd[i]);
    }
    (void) sigprocmask(SIG_SETMASK, &m, NULL);

    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            _exit(127);
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* In the child: a bind mount's source must be in our own mount namespace,
 * so these are opened after the clone, while the child still has the
 * runner's host uid (it owns the runner's private directories). */
static int open_dir(const char *path, int *ret_fd, char *why)
{
    int fd;

    if (!path) {
        *ret_fd = -1;
        return 0;
    }
    fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ns_err(why, -errno, "ns: open %s", path);
    *ret_fd = fd;
    return 0;
}

/* In the parent, so that a wrong path fails before anything changed. */
static int check_dir(const char *path, char *why)
{
    struct stat st;

    if (!path)
        return 0;
    if (stat(path, &st) < 0)
        return ns_err(why, -errno, "ns: %s", path);
    return S_ISDIR(st.st_mode) ? 0 : ns_err(why, -ENOTDIR, "ns: %s", path);
}

/* The child, after the parent wrote the maps: become uid/gid 0 of the new
 * user namespace (until now it still ran as the runner's host uid, which
 * the namespace does not map), then tie its life to the parent's. */
static int child_start(const struct al_ns_cfg *c, bool root, int sync_fd, const sigset_t *mask, char *why)
{
    struct pollfd pfd = { .fd = sync_fd, .events = POLLIN };
    char go = 0;
    ssize_t n;
    int r;

    do
        n = read(sync_fd, &go, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        return ns_err(why, -ESRCH, "ns: parent gone before mapping ids");
    r = open_dir(c->workdir, &ns_workdir_fd, why);
    if (r >= 0)
        r = open_dir(c->outputs, &ns_outputs_fd, why);
    if (r < 0)
        return r;

    /* Supplementary groups are inherited from the host (root's include
     * gid 0); they would still count for permission checks. */
    if (root && setgroups(0, NULL) < 0)
        return ns_err(why, -errno, "ns: setgroups");
    if (setresgid(0, 0, 0) < 0)
        return ns_err(why, -errno, "ns: setresgid");
    if (setresuid(0, 0, 0) < 0)
        return ns_err(why, -errno, "ns: setresuid");
    /* After the id changes: they clear the death signal. The sync pipe's
     * write end lives as long as the parent, so a hang-up now means it
     * died before the signal was armed. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        return ns_err(why, -errno, "ns: PR_SET_PDEATHSIG");
    if (poll(&pfd, 1, 0) < 0 || (pfd.revents & (POLLHUP | POLLERR)))
        return ns_err(why, -ESRCH, "ns: parent gone");
    (void) close(sync_fd);

    if (sigprocmask(SIG_SETMASK, mask, NULL) < 0)
        return ns_err(why, -errno, "ns: sigprocmask");
    /* No controlling terminal: TIOCSTI into the host's tty (sandbox-notes
     * §3 row 19). The parent stays in the old session and forwards. */
    if (setsid() < 0)
        return ns_err(why, -errno, "ns: setsid");
    if (sethostname(SANDBOX_HOST, strlen(SANDBOX_HOST)) < 0)
        return ns_err(why, -errno, "ns: sethostname");
    /* The session runs as our uid: without this it could ptrace us or
     * open /proc/1/fd/3, the worker's socket. As root the uid change has
     * already done it; say so for the non-root case too. What we exec is
     * dumpable again (execve resets it), so the shell sees its own /proc. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return ns_err(why, -errno, "ns: PR_SET_DUMPABLE");
    return 0;
}

int al_ns_enter(const struct al_ns_cfg *c, char why[AL_SANDBOX_WHY])
{
    unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
    bool root = geteuid() == 0;
    _cleanup_close_ int rd = -1, wr = -1;
    sigset_t block, old;
    int p[2], r;
    pid_t pid;

    if (!c || !c->workdir)
        return ns_err(why, -EINVAL, "ns: no workdir");
    /* Host root inside would own every root-owned host file the binds
     * show (and CAP_DAC_OVERRIDE would apply to them). */
    if (c->uid == 0 || c->gid == 0)
        return ns_err(why, -EPERM, "ns: refusing to map host uid/gid 0 (%u:%u)", (unsigned) c->uid,
                    (unsigned) c->gid);
    if (!root && (c->uid != geteuid() || c->gid != getegid()))
        return ns_err(why, -EPERM, "ns: not root: can map only %u:%u, not %u:%u", (unsigned) geteuid(),
                    (unsigned) getegid(), (unsigned) c->uid, (unsigned) c->gid);
    r = check_dir(c->workdir, why);
    if (r >= 0)
        r = check_dir(c->outputs, why);
    if (r < 0)
        return r;
    if (pipe2(p, O_CLOEXEC) < 0)
        return ns_err(why, -errno, "ns: pipe2");
    rd = p[0], wr = p[1];
    /* A pooled namespace is joined here, so the child is born in it; if
     * that fails the clone makes one as usual. */
    if (!c->net_host && !(c->netns_fd >= 3 && setns(c->netns_fd, CLONE_NEWNET) == 0))
        flags |= CLONE_NEWNET;

    /* Until the parent's forwarders are in place a SIGTERM must not kill
     * it silently; the child restores the mask. */
    sigemptyset(&block);
    (void) sigaddset(&block, SIGTERM);
    (void) sigaddset(&block, SIGINT);
    (void) sigaddset(&block, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &block, &old) < 0)
        return ns_err(why, -errno, "ns: sigprocmask");

    pid = raw_clone(flags | SIGCHLD);
    if (pid < 0) {
        r = -errno;
        (void) sigprocmask(SIG_SETMASK, &old, NULL);
        return ns_err(why, r, "ns: clone(%s)", c->net_host ? "user|mnt|pid|ipc|uts|cgroup" : "user|mnt|pid|ipc|uts|cgroup|net");
    }
    if (pid == 0) {
        (void) close(TAKE_FD(wr));
        return child_start(c, root, TAKE_FD(rd), &old, why);
    }

    (void) close(TAKE_FD(rd));
    r = write_maps(pid, c, root, why);
    if (r >= 0 && write(wr, "1", 1) != 1)
        r = ns_err(why, -errno, "ns: write sync pipe");
    if (r < 0) {
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        (void) sigprocmask(SIG_SETMASK, &old, NULL);
        return r;
    }
    parent_wait(pid, wr, &old);
}

/* ---- al_ns_setup_fs -------------------------------------------------------- */

/* Before 5.12: a remount that restates every flag the mount has, since
 * dropping a locked one is EPERM. Top mount only. */
static int remount_add_flags(const char *path, unsigned long ms)
{
    struct statvfs sv;

    if (statvfs(path, &sv) < 0)
        return -errno;
    ms |= MS_BIND | MS_REMOUNT;
    if (sv.f_flag & ST_NOSUID)
        ms |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        ms |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        ms |= MS_NOEXEC;
    if (sv.f_flag & ST_RDONLY)
        ms |= MS_RDONLY;
    if (sv.f_flag & ST_NOATIME)
        ms |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        ms |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        ms |= MS_RELATIME;
    return mount(NULL, path, NULL, ms, NULL) < 0 ? -errno : 0;
}

/* Adds flags to the mount at path (and, where the kernel has
 * mount_setattr(), every mount under it). Setting flags never trips over
 * the flags the kernel locked when our mount namespace was copied; the old
 * remount path must restate them, as bubblewrap does. */
static int mount_add_flags(const char *path, unsigned long ms, bool recursive)
{
    struct mount_attr a = { 0 };

    if (ms & MS_RDONLY)
        a.attr_set |= MOUNT_ATTR_RDONLY;
    if (ms & MS_NOSUID)
        a.attr_set |= MOUNT_ATTR_NOSUID;
    if (ms & MS_NODEV)
        a.attr_set |= MOUNT_ATTR_NODEV;
    if (ms & MS_NOEXEC)
        a.attr_set |= MOUNT_ATTR_NOEXEC;
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &a, sizeof(a)) == 0)
        return 0;
    if (errno != ENOSYS)
        return -errno;
    return remount_add_flags(path, ms);
}

static int bind_mount(const char *src, const char *dst, unsigned long add, char *why)
{
    int r;

    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return ns_err(why, -errno, "fs: bind %s on %s", src, dst);
    r = add ? mount_add_flags(dst, add, true) : 0;
    return r < 0 ? ns_err(why, r, "fs: flags of %s", dst) : 0;
}

static int mkdir_p(const char *path, char *why)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return ns_err(why, -errno, "fs: mkdir %s", path);
    return 0;
}

static int bind_fd(int fd, const char *dst, char *why)
{
    char src[32];
    int r;

    r = mkdir_p(dst, why);
    if (r < 0)
        return r;
    (void) snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
    return bind_mount(src, dst, MS_NOSUID | MS_NODEV, why);
}

/* The host's system directories, read-only; merged-/usr symlinks are
 * recreated as symlinks with the same target. */
static int setup_system(char *why)
{
    static const char *const names[] = { "usr", "etc", "opt", "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
    char host[16], target[PATH_MAX];
    struct stat st;
    int r;

    for (size_t i = 0; i < AL_ELEMENTSOF(names); i++) {
        (void) snprintf(host, sizeof(host), "/%s", names[i]);
        if (lstat(host, &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(host, target, sizeof(target) - 1);
            if (n < 0)
                return ns_err(why, -errno, "fs: readlink %s", host);
            target[n] = '\0';
            if (symlink(target, names[i]) < 0)
                return ns_err(why, -errno, "fs: symlink %s", names[i]);
        } else if (S_ISDIR(st.st_mode)) {
            r = mkdir_p(names[i], why);
            if (r >= 0)
                r = bind_mount(host, names[i], MS_RDONLY | MS_NOSUID | MS_NODEV, why);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int mount_tmpfs(const char *dst, unsigned long ms, const char *opts, char *why)
{
    int r = mkdir_p(dst, why);

    if (r < 0)
        return r;
    if (mount("tmpfs", dst, "tmpfs", ms, opts) < 0)
        return ns_err(why, -errno, "fs: tmpfs on %s (%s)", dst, opts);
    return 0;
}

/* A fresh procfs of the new pid namespace, with the OCI runtime spec's
 * default maskedPaths and readonlyPaths. Entries this kernel lacks are
 * skipped. */
static int setup_proc(char *why)
{
    static const char *const masked[] = { "proc/kcore", "proc/keys", "proc/timer_list", "proc/sysrq-trigger",
                                          "proc/latency_stats", "proc/timer_stats", "proc/sched_debug" };
    static const char *const masked_dirs[] = { "proc/acpi", "proc/asound", "proc/scsi" };
    static const char *const ro[] = { "proc/sys", "proc/bus", "proc/fs", "proc/irq" };
    int r = mkdir_p("proc", why);

    if (r < 0)
        return r;
    /* EPERM here usually means the host's /proc has paths mounted over
     * (Docker's masks): the kernel then refuses a fresh, fully visible
     * procfs to a user namespace. */
    if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return ns_err(why, -errno, "fs: mount proc (host /proc masked?)");
    for (size_t i = 0; i < AL_ELEMENTSOF(masked); i++) {
        if (mount("/dev/null", masked[i], NULL, MS_BIND, NULL) < 0 && errno != ENOENT)
            return ns_err(why, -errno, "fs: mask %s", masked[i]);
    }
    for (size_t i = 0; i < AL_ELEMENTSOF(masked_dirs); i++) {
        if (mount("tmpfs", masked_dirs[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,nr_inodes=2") < 0 &&
            errno != ENOENT)
            return ns_err(why, -errno, "fs: mask %s", masked_dirs[i]);
    }
    for (size_t i = 0; i < AL_ELEMENTSOF(ro); i++) {
        if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT)
                continue;
            return ns_err(why, -errno, "fs: bind %s", ro[i]);
        }
        r = mount_add_flags(ro[i], MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, true);
        if (r < 0)
            return ns_err(why, r, "fs: read-only %s", ro[i]);
    }
    return 0;
}

/* A minimal /dev: host device nodes bound onto empty files (a user
 * namespace cannot mknod devices), a private devpts, /dev/shm, the usual
 * symlinks; the tmpfs itself read-only afterwards. */
static int setup_dev(const char *shm_opts, char *why)
{
    static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
    static const char *const links[][2] = {
        { "/proc/self/fd", "dev/fd" },      { "/proc/self/fd/0", "dev/stdin" },
        { "/proc/self/fd/1", "dev/stdout" }, { "/proc/self/fd/2", "dev/stderr" },
        { "pts/ptmx", "dev/ptmx" },
    };
    char src[32], dst[32];
    int r;

    r = mount_tmpfs("dev", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64", why);
    if (r < 0)
        return r;
    for (size_t i = 0; i < AL_ELEMENTSOF(nodes); i++) {
        (void) snprintf(src, sizeof(src), "/dev/%s", nodes[i]);
        (void) snprintf(dst, sizeof(dst), "dev/%s", nodes[i]);
        if (mknod(dst, S_IFREG | 0666, 0) < 0)
            return ns_err(why, -errno, "fs: create %s", dst);
        /* The bind keeps the host devtmpfs mount's flags (no nodev): a
         * device node is opened through the mount it is found on. A node
         * the host lacks (containers often have no /dev/tty) is left out. */
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0) {
            if (errno != ENOENT)
                return ns_err(why, -errno, "fs: bind %s", src);
            (void) unlink(dst);
        }
    }
    r = mkdir_p("dev/pts", why);
    if (r < 0)
        return r;
    if (mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
        return ns_err(why, -errno, "fs: mount devpts");
    r = mount_tmpfs("dev/shm", MS_NOSUID | MS_NODEV, shm_opts, why);
    if (r < 0)
        return r;
    for (size_t i = 0; i < AL_ELEMENTSOF(links); i++) {
        if (symlink(links[i][0], links[i][1]) < 0)
            return ns_err(why, -errno, "fs: symlink %s", links[i][1]);
    }
    r = mount_add_flags("dev", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, false);
    return r < 0 ? ns_err(why, r, "fs: read-only /dev") : 0;
}

/* Everything under the new root, relative to it (the cwd). */
static int build_root(const struct al_ns_cfg *c, char *why)
{
    int64_t size = c->lim && c->lim->tmp_size > 0 ? c->lim->tmp_size : TMP_SIZE_DEFAULT;
    int64_t inodes = c->lim && c->lim->tmp_inodes > 0 ? c->lim->tmp_inodes : TMP_INODES_DEFAULT;
    char opts[96];
    int r;

    r = setup_system(why);
    if (r < 0)
        return r;
    r = bind_fd(ns_workdir_fd, "workspace", why);
    if (r < 0)
        return r;
    if (ns_outputs_fd >= 0) {
        r = mkdir_p("mnt", why);
        if (r >= 0)
            r = mkdir_p("mnt/session", why);
        if (r >= 0)
            r = bind_fd(ns_outputs_fd, "mnt/session/outputs", why);
        if (r < 0)
            return r;
    }
    (void) snprintf(opts, sizeof(opts), "mode=1777,size=%lld,nr_inodes=%lld", (long long) size, (long long) inodes);
    r = mount_tmpfs("tmp", MS_NOSUID | MS_NODEV, opts, why);
    if (r < 0)
        return r;
    r = setup_proc(why);
    if (r < 0)
        return r;
    return setup_dev(opts, why);
}

/* The new root's tmpfs, over the first of NEWROOT that exists; the cwd
 * is its root afterwards. */
static int mount_newroot(char *why)
{
    static const char *const at[] = { NEWROOT };
    int e = ENOENT;

    for (size_t i = 0; i < AL_ELEMENTSOF(at); i++) {
        if (mount("tmpfs", at[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k,nr_inodes=256") < 0) {
            e = errno;
            continue;
        }
        return chdir(at[i]) < 0 ? ns_err(why, -errno, "fs: chdir %s", at[i]) : 0;
    }
    return ns_err(why, -e, "fs: tmpfs for the new root");
}

int al_ns_setup_fs(const struct al_ns_cfg *c, char why[AL_SANDBOX_WHY])
{
    int r;

    if (!c || ns_workdir_fd < 0)
        return ns_err(why, -EINVAL, "fs: al_ns_enter() did not run in this process");
    /* Nothing we mount may leak back to the host, nor host mounts in. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return ns_err(why, -errno, "fs: make / private");
    r = mount_newroot(why);
    if (r < 0)
        return r;
    r = build_root(c, why);
    if (r < 0)
        return r;
    (void) close(ns_workdir_fd);
    ns_workdir_fd = -1;
    if (ns_outputs_fd >= 0)
        (void) close(ns_outputs_fd);
    ns_outputs_fd = -1;

    r = mount_add_flags(".", MS_RDONLY | MS_NOSUID | MS_NODEV, false);
    if (r < 0)
        return ns_err(why, r, "fs: read-only /");
    /* pivot_root(".", ".") stacks the old root on top of the new one;
     * detaching it leaves only the new tree (pivot_root(2), NOTES). */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return ns_err(why, -errno, "fs: pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        return ns_err(why, -errno, "fs: detach old root");
    if (chdir("/workspace") < 0)
        return ns_err(why, -errno, "fs: chdir /workspace");
    return 0;
}

/* ---- al_ns_setup_net ------------------------------------------------------- */

static int lo_up(char *why)
{
    _cleanup_close_ int fd = -1;
    struct ifreq ifr = { 0 };

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ns_err(why, -errno, "net: socket");
    (void) snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return ns_err(why, -errno, "net: SIOCGIFFLAGS lo");
    if (ifr.ifr_flags & IFF_UP)
        return 0;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        return ns_err(why, -errno, "net: SIOCSIFFLAGS lo up");
    return 0;
}

int al_netns_new(char why[AL_SANDBOX_WHY])
{
    _cleanup_close_ int home = -1, fd = -1;
    int r;

    home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0)
        return ns_err(why, -errno, "netns: open /proc/thread-self/ns/net");
    if (unshare(CLONE_NEWNET) < 0)
        return ns_err(why, -errno, "netns: unshare(CLONE_NEWNET)");
    r = lo_up(why);
    if (r >= 0) {
        fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            r = ns_err(why, -errno, "netns: open the new namespace");
    }
    /* Back home whatever happened: a failure here would leave this process
     * in an empty namespace, so it is fatal to the caller. */
    if (setns(home, CLONE_NEWNET) < 0)
        return ns_err(why, -ENOTRECOVERABLE, "netns: setns back to the original namespace");
    return r < 0 ? r : TAKE_FD(fd);
}

int al_ns_setup_net(const struct al_ns_cfg *c, char why[AL_SANDBOX_WHY])
{
    if (!c)
        return ns_err(why, -EINVAL, "net: no config");
    if (c->net_host)
        return 0;
    return lo_up(why);
}
