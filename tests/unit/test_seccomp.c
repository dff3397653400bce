/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/sandbox/seccomp.c. Every probe runs in a forked child,
 * twice: once under the filter, where it must fail with the filter's errno,
 * and once without, where it must not (so the test can fail). Probes are
 * harmless when NOT blocked (sandbox-notes §5.6): nonexistent mount
 * targets, namespaces that only the probe enters, invalid commands, fds
 * that are closed at once. The filtered child keeps its capabilities, so an
 * EPERM there is the filter's and not a missing capability's. A control
 * that the host itself refuses with the same errno (not root, a sysctl) is
 * reported and skipped. */
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/quota.h>
#include <sys/socket.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <sys/io.h>
#endif

#include "al_test.h"
#include "src/sandbox/sandbox.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

#define NOPATH "/nonexistent/al-seccomp-probe"

extern char **environ;

enum mode {
    BARE,       /* no filter: the control */
    FILTER,     /* no_new_privs + the filter, capabilities kept */
    FULL,       /* al_caps_drop() + the filter, as the runner does */
    PREPARED,   /* FULL with the program al_seccomp_prepare() built first, as in the zygote */
};

struct outcome {
    bool exited;        /* else killed by sig */
    int sig;
    long ret;           /* the probe's result: >= 0, or -errno */
    int setup;          /* al_*() result in the child */
};

/* -errno of a libc-style call, or 0; a returned fd is closed. */
static long rc(long r)
{
    if (r < 0)
        return -errno;
    return 0;
}

static long rc_fd(long fd)
{
    if (fd < 0)
        return -errno;
    (void) close((int) fd);
    return 0;
}

static int enter(enum mode m)
{
    char why[AL_SANDBOX_WHY] = "";
    int r;

    if (m == BARE)
        return 0;
    if (m == PREPARED && (r = al_seccomp_prepare(why)) < 0)
        return r;
    if (m == FULL || m == PREPARED)
        r = al_caps_drop(why);
    else
        r = prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0, 0, 0) < 0 ? -errno : 0;
    if (r < 0)
        return r;
    return al_seccomp_apply(why);
}

/* Forks, enters mode, runs probe, and reports over a pipe. The child
 * leaves with _exit(): no atexit handlers, no LeakSanitizer (which would
 * need ptrace). */
static struct outcome run(enum mode m, long (*probe)(void))
{
    struct outcome o = { 0 };
    long msg[2] = { 0, 0 };
    int p[2], st;
    pid_t pid;

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void) close(p[0]);
        msg[0] = enter(m);
        if (msg[0] == 0)
            msg[1] = probe();
        if (write(p[1], msg, sizeof(msg)) != (ssize_t) sizeof(msg))
            _exit(2);
        _exit(0);
    }
    (void) close(p[1]);
    ssize_t n = read(p[0], msg, sizeof(msg));
    (void) close(p[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    o.exited = WIFEXITED(st);
    o.sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    if (n == (ssize_t) sizeof(msg)) {
        o.setup = (int) msg[0];
        o.ret = msg[1];
    } else {
        o.setup = -EPIPE;
    }
    return o;
}

/* ---- probes: each harmless when it is not blocked ------------------------ */

static long p_mount(void) { return rc(mount("none", NOPATH, "tmpfs", 0, NULL)); }
static long p_umount2(void) { return rc(umount2(NOPATH, 0)); }
static long p_pivot_root(void) { return rc(syscall(SYS_pivot_root, NOPATH, NOPATH)); }
static long p_chroot(void) { return rc(chroot(NOPATH)); }
static long p_fsopen(void) { return rc_fd(syscall(SYS_fsopen, "al-no-such-fs", 0)); }
static long p_fsconfig(void) { return rc(syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0)); }
static long p_fsmount(void) { return rc_fd(syscall(SYS_fsmount, -1, 0, 0)); }
static long p_fspick(void) { return rc_fd(syscall(SYS_fspick, AT_FDCWD, NOPATH, 0)); }
static long p_move_mount(void) { return rc(syscall(SYS_move_mount, AT_FDCWD, NOPATH, AT_FDCWD, NOPATH, 0)); }
static long p_open_tree(void) { return rc_fd(syscall(SYS_open_tree, AT_FDCWD, NOPATH, 0)); }
static long p_mount_setattr(void) { return rc(syscall(SYS_mount_setattr, AT_FDCWD, NOPATH, 0, NULL, 0)); }
/* Affects the probe process only. */
static long p_unshare(void) { return rc(unshare(CLONE_NEWUSER)); }
static long p_setns(void) { return rc(setns(-1, 0)); }
static long p_clone3(void) { return rc(syscall(SYS_clone3, NULL, 0)); }
static long p_ptrace(void) { return rc(ptrace(PTRACE_TRACEME, 0, NULL, NULL)); }
static long p_vm_readv(void) { return rc(syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0)); }
static long p_vm_writev(void) { return rc(syscall(SYS_process_vm_writev, getpid(), NULL, 0, NULL, 0, 0)); }
static long p_kcmp(void) { return rc(syscall(SYS_kcmp, getpid(), getpid(), KCMP_VM, 0, 0)); }
static long p_pidfd_getfd(void) { return rc_fd(syscall(SYS_pidfd_getfd, -1, 0, 0)); }
static long p_process_madvise(void) { return rc(syscall(SYS_process_madvise, -1, NULL, 0, 0, 0)); }
static long p_keyctl(void) { return rc(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)); }
static long p_add_key(void) { return rc(syscall(SYS_add_key, NULL, NULL, NULL, 0, KEY_SPEC_PROCESS_KEYRING)); }
static long p_request_key(void) { return rc(syscall(SYS_request_key, NULL, NULL, NULL, 0)); }
/* An unknown command. */
static long p_bpf(void) { return rc(syscall(SYS_bpf, 0x7fff, NULL, 0)); }
static long p_userfaultfd(void) { return rc_fd(syscall(SYS_userfaultfd, O_CLOEXEC)); }

static long p_io_uring_setup(void)
{
    struct io_uring_params params;

    memset(&params, 0, sizeof(params));
    return rc_fd(syscall(SYS_io_uring_setup, 1, &params));
}

static long p_io_uring_enter(void) { return rc(syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0)); }
static long p_io_uring_register(void) { return rc(syscall(SYS_io_uring_register, -1, 0, NULL, 0)); }

/* A software event on the calling thread only. */
static long p_perf_event_open(void)
{
    struct perf_event_attr a;

    memset(&a, 0, sizeof(a));
    a.type = PERF_TYPE_SOFTWARE;
    a.size = sizeof(a);
    a.config = PERF_COUNT_SW_DUMMY;
    a.disabled = 1;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    return rc_fd(syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

/* Far more segments than KEXEC_SEGMENT_MAX: refused before anything loads. */
static long p_kexec_load(void) { return rc(syscall(SYS_kexec_load, 0, 0x7fffffffUL, NULL, 0)); }
static long p_kexec_file_load(void) { return rc(syscall(SYS_kexec_file_load, -1, -1, 0, "", 0x7fff0000UL)); }
/* Shorter than an ELF header. */
static long p_init_module(void) { return rc(syscall(SYS_init_module, "", 0, "")); }
static long p_finit_module(void) { return rc(syscall(SYS_finit_module, -1, "", 0)); }
static long p_delete_module(void) { return rc(syscall(SYS_delete_module, "al_no_such_module", O_NONBLOCK)); }
/* A path that cannot be opened leaves accounting as it was. */
static long p_acct(void) { return rc(acct(NOPATH)); }
static long p_swapon(void) { return rc(swapon(NOPATH, 0)); }
static long p_swapoff(void) { return rc(swapoff(NOPATH)); }
/* Bad magic: refused before anything happens. */
static long p_reboot(void) { return rc(syscall(SYS_reboot, 0, 0, 0, NULL)); }
/* Both NULL: changes nothing. */
static long p_settimeofday(void) { return rc(syscall(SYS_settimeofday, NULL, NULL)); }

static long p_clock_settime(void)
{
    struct timespec ts = { 0, 0 };

    return rc(clock_settime(CLOCK_MONOTONIC, &ts));    /* never settable */
}

/* modes = 0: a read-only query. */
static long p_clock_adjtime(void)
{
    struct timex tx;

    memset(&tx, 0, sizeof(tx));
    return rc(clock_adjtime(CLOCK_REALTIME, &tx));
}

static long p_adjtimex(void)
{
    struct timex tx;

    memset(&tx, 0, sizeof(tx));
    return rc(adjtimex(&tx));
}

static long p_quotactl(void)
{
    char buf[64];

    /* QCMD() shifts a signed int past its range. */
    int cmd = (int) (((unsigned) Q_GETFMT << SUBCMDSHIFT) | USRQUOTA);

    return rc(quotactl(cmd, NOPATH, 0, buf));
}

static long p_quotactl_fd(void) { return rc(syscall(SYS_quotactl_fd, -1, 0, 0, NULL)); }
static long p_lookup_dcookie(void) { return rc(syscall(SYS_lookup_dcookie, 0, NULL, 0)); }
static long p_open_by_handle_at(void) { return rc_fd(syscall(SYS_open_by_handle_at, -1, NULL, 0)); }

static long p_name_to_handle_at(void)
{
    int mnt;

    return rc(syscall(SYS_name_to_handle_at, AT_FDCWD, NOPATH, NULL, &mnt, 0));
}

/* SYSLOG_ACTION_SIZE_BUFFER: reads a number. */
static long p_syslog(void) { return rc(klogctl(10, NULL, 0)); }

/* Without a controlling terminal vhangup() hangs up nothing. */
static long p_vhangup(void)
{
    if (setsid() < 0)
        return -1000 - errno;
    return rc(vhangup());
}

static long p_fanotify_init(void) { return rc_fd(fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC, O_RDONLY)); }
static long p_nfsservctl(void) { return rc(syscall(SYS_nfsservctl, 0, NULL, NULL)); }
static long p_uselib(void) { return rc(syscall(SYS_uselib, NOPATH)); }
#if defined(__x86_64__)
static long p_iopl(void) { return rc(iopl(0)); }
static long p_ioperm(void) { return rc(ioperm(0x80, 1, 0)); }
#endif
static long p_personality32(void) { return rc(personality(PER_LINUX32)); }
static long p_personality_norandom(void) { return rc(personality(ADDR_NO_RANDOMIZE)); }
/* High bits set: the kernel reads an unsigned int and sees ADDR_NO_RANDOMIZE. */
static long p_personality_high(void) { return rc(syscall(SYS_personality, (1UL << 32) | ADDR_NO_RANDOMIZE)); }

/* A fork-like clone() into one new namespace; the child leaves at once. */
static long clone_ns(unsigned long flag)
{
    long pid = syscall(SYS_clone, flag | SIGCHLD, 0, NULL, NULL, 0);
    int st;

    if (pid < 0)
        return -errno;
    if (pid == 0)
        _exit(0);
    return waitpid((pid_t) pid, &st, 0) == pid ? 0 : -errno;
}

static long p_clone_newns(void) { return clone_ns(CLONE_NEWNS); }
static long p_clone_newcgroup(void) { return clone_ns(CLONE_NEWCGROUP); }
static long p_clone_newuts(void) { return clone_ns(CLONE_NEWUTS); }
static long p_clone_newipc(void) { return clone_ns(CLONE_NEWIPC); }
static long p_clone_newuser(void) { return clone_ns(CLONE_NEWUSER); }
static long p_clone_newpid(void) { return clone_ns(CLONE_NEWPID); }
static long p_clone_newnet(void) { return clone_ns(CLONE_NEWNET); }
static long p_clone_newtime(void) { return clone_ns(CLONE_NEWTIME); }

/* ioctl on the master of a pty of our own. */
static long on_pty(unsigned long req, void *arg)
{
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    long r;

    if (fd < 0)
        return -2000 - errno;
    r = rc(syscall(SYS_ioctl, fd, req, arg));
    (void) close(fd);
    return r;
}

static long p_tiocsti(void)
{
    char c = ' ';

    return on_pty(TIOCSTI, &c);
}

/* CVE-2019-10063: a high bit must not hide TIOCSTI from the filter. */
static long p_tiocsti_high(void)
{
    char c = ' ';

    return on_pty((1UL << 32) | TIOCSTI, &c);
}

static long p_tioclinux(void)
{
    char sub = 0;

    return on_pty(TIOCLINUX, &sub);
}

static long p_packet(void) { return rc_fd(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)); }
static long p_packet_dgram(void) { return rc_fd(socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0)); }
static long p_packet_high(void) { return rc_fd(syscall(SYS_socket, (1UL << 32) | AF_PACKET, SOCK_RAW, 0)); }
static long p_raw4(void) { return rc_fd(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP)); }
static long p_raw6(void) { return rc_fd(socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMPV6)); }

struct probe {
    const char *name;
    long (*fn)(void);
    long want;          /* under the filter */
};

#define P(fn, want) { #fn, p_##fn, -(want) }
static const struct probe denied[] = {
    /* row 3 */
    P(ptrace, EPERM), P(vm_readv, EPERM), P(vm_writev, EPERM), P(kcmp, EPERM),
    P(pidfd_getfd, EPERM), P(process_madvise, EPERM),
    /* row 4 */
    P(keyctl, EPERM), P(add_key, EPERM), P(request_key, EPERM),
    /* row 5 */
    P(mount, EPERM), P(umount2, EPERM), P(pivot_root, EPERM), P(chroot, EPERM), P(fsopen, EPERM),
    P(fsconfig, EPERM), P(fsmount, EPERM), P(fspick, EPERM), P(move_mount, EPERM),
    P(open_tree, EPERM), P(mount_setattr, EPERM),
    /* row 6 */
    P(unshare, EPERM), P(setns, EPERM), P(clone3, ENOSYS),
    P(clone_newns, EPERM), P(clone_newcgroup, EPERM), P(clone_newuts, EPERM),
    P(clone_newipc, EPERM), P(clone_newuser, EPERM), P(clone_newpid, EPERM),
    P(clone_newnet, EPERM), P(clone_newtime, EPERM),
    /* rows 7-10 */
    P(bpf, EPERM), P(userfaultfd, EPERM), P(io_uring_setup, EPERM), P(io_uring_enter, EPERM),
    P(io_uring_register, EPERM), P(perf_event_open, EPERM),
    /* row 18 (optional socket rules) */
    P(packet, EPERM), P(packet_dgram, EPERM), P(packet_high, EPERM), P(raw4, EPERM), P(raw6, EPERM),
    /* row 19 */
    P(tiocsti, EPERM), P(tiocsti_high, EPERM), P(tioclinux, EPERM), P(vhangup, EPERM),
    /* beyond §3: host-wide state */
    P(kexec_load, EPERM), P(kexec_file_load, EPERM), P(init_module, EPERM), P(finit_module, EPERM),
    P(delete_module, EPERM), P(acct, EPERM), P(swapon, EPERM), P(swapoff, EPERM), P(reboot, EPERM),
    P(settimeofday, EPERM), P(clock_settime, EPERM), P(clock_adjtime, EPERM), P(adjtimex, EPERM),
    P(quotactl, EPERM), P(quotactl_fd, EPERM), P(lookup_dcookie, EPERM),
    P(open_by_handle_at, EPERM), P(name_to_handle_at, EPERM), P(syslog, EPERM),
    P(fanotify_init, EPERM), P(nfsservctl, EPERM), P(uselib, EPERM),
#if defined(__x86_64__)
    P(iopl, EPERM), P(ioperm, EPERM),
#endif
    P(personality32, EPERM), P(personality_norandom, EPERM), P(personality_high, EPERM),
};
#undef P

static void test_denied(void **state)
{
    int failed = 0, skipped = 0;
    char a[32], b[32];

    for (size_t i = 0; i < AL_ELEMENTSOF(denied); i++) {
        const struct probe *p = &denied[i];
        struct outcome f = run(FILTER, p->fn), c = run(BARE, p->fn);

        if (!f.exited || f.setup != 0 || f.ret != p->want) {
            print_error("%s: filtered: setup %d, exited %d (sig %d), got %s, want %s\n", p->name,
                        f.setup, f.exited, f.sig, al_test_errname(f.ret, a), al_test_errname(p->want, b));
            failed++;
        }
        /* The control proves the probe can fail: the same errno without
         * the filter means the probe does not tell the filter apart. */
        if (!c.exited || c.setup != 0) {
            print_error("%s: control child died (sig %d)\n", p->name, c.sig);
            failed++;
        } else if (c.ret == p->want) {
            print_message("%s: the host refuses it too (%s); control half skipped\n", p->name,
                          al_test_errname(c.ret, a));
            skipped++;
        }
    }
    print_message("%zu probes, %d controls skipped\n", AL_ELEMENTSOF(denied), skipped);
    ASSERT_I64_EQ(failed, 0);
}

/* The zygote's path: the prepared program blocks every probe as the built
 * one does (test_allowed runs it over what must keep working). */
static void test_prepared(void **state)
{
    int failed = 0;
    char a[32], b[32];

    for (size_t i = 0; i < AL_ELEMENTSOF(denied); i++) {
        const struct probe *p = &denied[i];
        struct outcome f = run(PREPARED, p->fn);

        if (!f.exited || f.setup != 0 || f.ret != p->want) {
            print_error("%s: prepared: setup %d, exited %d (sig %d), got %s, want %s\n", p->name, f.setup,
                        f.exited, f.sig, al_test_errname(f.ret, a), al_test_errname(p->want, b));
            failed++;
        }
    }
    ASSERT_I64_EQ(failed, 0);
}

/* ---- what must keep working ----------------------------------------------- */

static long p_fork(void)
{
    pid_t pid = fork();
    int st;

    if (pid < 0)
        return -errno;
    if (pid == 0)
        _exit(7);
    if (waitpid(pid, &st, 0) != pid)
        return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 7 ? 0 : -ECHILD;
}

static void *thread_main(void *arg) { return arg; }

/* glibc tries clone3() first and falls back to clone() on ENOSYS. */
static long p_thread(void)
{
    pthread_t t;
    void *ret = NULL;
    int r = pthread_create(&t, NULL, thread_main, (void *) 0x5);

    if (r != 0)
        return -r;
    r = pthread_join(t, &ret);
    if (r != 0)
        return -r;
    return ret == (void *) 0x5 ? 0 : -EPROTO;
}

static long p_spawn(void)
{
    char *argv[] = { (char *) "true", NULL };
    pid_t pid;
    int st, r = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);

    if (r != 0)
        return -r;
    if (waitpid(pid, &st, 0) != pid)
        return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

static long p_personality_query(void) { return rc(personality(0xffffffff)); }
static long p_personality_linux(void) { return rc(personality(PER_LINUX)); }
static long p_netlink_route(void) { return rc_fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)); }
static long p_tcp(void) { return rc_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); }
static long p_udp6(void) { return rc_fd(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)); }
static long p_unix(void) { return rc_fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)); }

static long p_tiocgwinsz(void)
{
    struct winsize ws;

    return on_pty(TIOCGWINSZ, &ws);
}

/* A clone() without namespace flags, the way fork() issues it. */
static long p_clone_plain(void) { return clone_ns(0); }

static void test_allowed(void **state)
{
    static const struct {
        const char *name;
        long (*fn)(void);
    } ok[] = {
        { "fork", p_fork }, { "pthread_create", p_thread }, { "posix_spawn", p_spawn },
        { "clone", p_clone_plain }, { "personality(query)", p_personality_query },
        { "personality(PER_LINUX)", p_personality_linux }, { "netlink route", p_netlink_route },
        { "tcp", p_tcp }, { "udp6", p_udp6 }, { "unix", p_unix }, { "TIOCGWINSZ", p_tiocgwinsz },
    };
    char a[32];
    int failed = 0;

    for (size_t i = 0; i < AL_ELEMENTSOF(ok); i++) {
        for (enum mode m = FULL; m <= PREPARED; m++) {
            struct outcome o = run(m, ok[i].fn);
            if (!o.exited || o.setup != 0 || o.ret != 0) {
                print_error("%s (%s): setup %d, exited %d (sig %d), got %s\n", ok[i].name,
                            m == FULL ? "built" : "prepared", o.setup, o.exited, o.sig, al_test_errname(o.ret, a));
                failed++;
            }
        }
    }
    ASSERT_I64_EQ(failed, 0);
}

/* ---- row 22: other ABIs are killed ------------------------------------------ */

#if defined(__x86_64__)
#define X32_SYSCALL_BIT 0x40000000L

static long p_x32_getpid(void) { return syscall(X32_SYSCALL_BIT | SYS_getpid) < 0 ? -errno : 0; }

/* i386's getpid (20) through int 0x80. */
static long p_i386_getpid(void)
{
    long ret = 20;

    __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
    return ret < 0 ? ret : 0;
}

static void test_other_abis_killed(void **state)
{
    struct outcome o;

    o = run(FILTER, p_x32_getpid);
    assert_false(o.exited);
    ASSERT_I64_EQ(o.sig, SIGSYS);

    /* Without IA-32 emulation int 0x80 faults before seccomp sees it. */
    o = run(BARE, p_i386_getpid);
    if (!o.exited) {
        print_message("int 0x80 unavailable here (signal %d): i386 half skipped\n", o.sig);
        return;
    }
    o = run(FILTER, p_i386_getpid);
    assert_false(o.exited);
    ASSERT_I64_EQ(o.sig, SIGSYS);
}
#else
static void test_other_abis_killed(void **state)
{
    skip();
}
#endif

/* ---- ordering, caps and cost ------------------------------------------------ */

static void test_needs_no_new_privs(void **state)
{
    pid_t pid = fork();
    int st;

    assert_true(pid >= 0);
    if (pid == 0) {
        char why[AL_SANDBOX_WHY] = "";
        int r = al_seccomp_apply(why);
        /* Refused, and nothing loaded: mount still reaches the kernel. */
        _exit(r == -EPERM && why[0] && p_mount() != -EPERM && prctl(PR_GET_SECCOMP) == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    ASSERT_I64_EQ(WEXITSTATUS(st), 0);
}

/* Hex value of a "Name:\t..." line of /proc/self/status, or -1. */
static long long status_field(const char *name)
{
    char buf[4096], *line;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    size_t len = strlen(name);

    if (fd >= 0)
        (void) close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    for (line = buf; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
        if (strncmp(line, name, len) == 0 && line[len] == ':')
            return strtoll(line + len + 1, NULL, 16);
    return -1;
}

static const char *const status_names[] = {
    "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp",
};

static void read_status_in_child(enum mode m, long long out[7])
{
    int p[2], st;
    pid_t pid;

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        long long v[7 + 1];
        v[0] = enter(m);
        for (size_t i = 0; i < AL_ELEMENTSOF(status_names); i++)
            v[i + 1] = status_field(status_names[i]);
        _exit(write(p[1], v, sizeof(v)) == (ssize_t) sizeof(v) ? 0 : 1);
    }
    (void) close(p[1]);
    long long v[7 + 1];
    ASSERT_I64_EQ(read(p[0], v, sizeof(v)), sizeof(v));
    (void) close(p[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    ASSERT_OK(v[0]);
    memcpy(out, v + 1, 7 * sizeof(long long));
}

static void test_caps_drop(void **state)
{
    long long v[7];

    read_status_in_child(FULL, v);
    ASSERT_I64_EQ(v[0], 0);    /* CapInh */
    ASSERT_I64_EQ(v[1], 0);    /* CapPrm */
    ASSERT_I64_EQ(v[2], 0);    /* CapEff */
    if (geteuid() == 0)
        ASSERT_I64_EQ(v[3], 0);    /* CapBnd: needs CAP_SETPCAP to drop */
    ASSERT_I64_EQ(v[4], 0);    /* CapAmb */
    ASSERT_I64_EQ(v[5], 1);    /* NoNewPrivs */
    ASSERT_I64_EQ(v[6], 2);    /* Seccomp: filter mode */

    /* The control: root's sets are not empty before the drop. */
    read_status_in_child(BARE, v);
    if (geteuid() == 0)
        assert_true(v[2] != 0);
    ASSERT_I64_EQ(v[5], 0);
}

/* After the drop, even without the filter, root cannot do what needs a
 * capability (chroot to where it already is: harmless either way), and
 * cannot get one back. */
static long p_after_drop(void)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    char why[AL_SANDBOX_WHY] = "";
    long r = al_caps_drop(why);

    if (r < 0)
        return -3000 + r;
    memset(data, 0, sizeof(data));
    data[0].effective = data[0].permitted = 1U << CAP_SYS_ADMIN;
    if (syscall(SYS_capset, &hdr, data) == 0)
        return -3001;
    if (prctl(PR_SET_NO_NEW_PRIVS, 0UL, 0, 0, 0) == 0)
        return -3002;
    return rc(chroot("/"));
}

static void test_caps_drop_effect(void **state)
{
    struct outcome o = run(BARE, p_after_drop);
    char a[32];

    assert_true(o.exited);
    if (o.ret != -EPERM)
        print_error("after the drop: %s\n", al_test_errname(o.ret, a));
    ASSERT_RET(o.ret, -EPERM);
}

static long p_cost(void)
{
    struct timespec a, b;
    char why[AL_SANDBOX_WHY] = "";
    int r;

    (void) clock_gettime(CLOCK_MONOTONIC, &a);
    r = al_caps_drop(why);
    if (r >= 0)
        r = al_seccomp_apply(why);
    (void) clock_gettime(CLOCK_MONOTONIC, &b);
    if (r < 0)
        return r;
    return (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
}

/* Not a benchmark gate: prints what the two steps cost here. */
static void test_cost(void **state)
{
    long ns[21];

    for (size_t i = 0; i < AL_ELEMENTSOF(ns); i++) {
        struct outcome o = run(BARE, p_cost);
        assert_true(o.exited);
        assert_true(o.ret >= 0);
        ns[i] = o.ret;
    }
    for (size_t i = 1; i < AL_ELEMENTSOF(ns); i++)
        for (size_t j = i; j > 0 && ns[j - 1] > ns[j]; j--) {
            long t = ns[j];
            ns[j] = ns[j - 1];
            ns[j - 1] = t;
        }
    print_message("al_caps_drop + al_seccomp_apply: median %ld us, min %ld us (%zu runs)\n",
                  ns[AL_ELEMENTSOF(ns) / 2] / 1000, ns[0] / 1000, AL_ELEMENTSOF(ns));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_denied),
        cmocka_unit_test(test_prepared),
        cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_other_abis_killed),
        cmocka_unit_test(test_needs_no_new_privs),
        cmocka_unit_test(test_caps_drop),
        cmocka_unit_test(test_caps_drop_effect),
        cmocka_unit_test(test_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
