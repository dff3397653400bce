/* SPDX-License-Identifier: Apache-2.0 */
/* The runner's last two start-up steps (sandbox.h): al_caps_drop() sets
 * no_new_privs and empties every capability set, then al_seccomp_apply()
 * loads the syscall deny list of sandbox-notes §3 with libseccomp. It is a
 * deny list on a default-allow filter, not an allow list, so arbitrary
 * toolchains keep working (§5.1). Each rule names the §3 row it implements.
 * Runs in the runner (or a forked test child), single-threaded; both steps
 * are irreversible and inherited by everything the process starts. Base and
 * libseccomp only; never libevent. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/base/log.h"
#include "sandbox.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#endif
#ifndef PR_CAP_AMBIENT_CLEAR_ALL
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

/* <linux/securebits.h> is not installed by every libc; the ABI values. */
#define SECBIT_NOROOT                   (1U << 0)
#define SECBIT_NOROOT_LOCKED            (1U << 1)
#define SECBIT_NO_SETUID_FIXUP          (1U << 2)
#define SECBIT_NO_SETUID_FIXUP_LOCKED   (1U << 3)
#define SECBIT_NO_CAP_AMBIENT_RAISE     (1U << 6)
#define SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1U << 7)

/* clone(2) takes its flags in the first argument everywhere but s390,
 * where the stack comes first. */
#if defined(__s390__) || defined(__s390x__)
#define CLONE_FLAGS_ARG 1
#else
#define CLONE_FLAGS_ARG 0
#endif

/* The low 32 bits of an argument the kernel reads as an int: matching all
 * 64 would let a caller set a high bit to dodge an EQ rule while the
 * kernel still sees the denied value (CVE-2019-10063). */
#define LOW32 0xffffffffULL

static int fail(char why[AL_SANDBOX_WHY], const char *what, int r)
{
    const char *n = al_errno_name(-r);

    snprintf(why, AL_SANDBOX_WHY, "%s: %s", what, n ? n : "error");
    return r;
}

/* ---- capabilities ------------------------------------------------------ */

/* The highest capability this kernel knows. Falls back to the header's
 * value when /proc is not mounted (yet); dropping an unknown one then just
 * stops early at EINVAL. */
static int cap_last(void)
{
    char buf[16] = { 0 };
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    long v;
    char *end;

    if (fd >= 0)
        (void) close(fd);
    if (n <= 0)
        return CAP_LAST_CAP;
    v = strtol(buf, &end, 10);
    if (end == buf || v < 0 || v > 63)
        return CAP_LAST_CAP;
    return (int) v;
}

/* Empties the bounding set. Dropping needs CAP_SETPCAP: a process without
 * it (level C, no user namespace) keeps a full bounding set, which is
 * harmless once no_new_privs is set, because execve() then never grants
 * file capabilities. */
static int drop_bounding(void)
{
    int last = cap_last();

    for (int c = 0; c <= last; c++) {
        if (prctl(PR_CAPBSET_READ, (unsigned long) c, 0, 0, 0) <= 0)
            continue;       /* already gone, or unknown to this kernel */
        if (prctl(PR_CAPBSET_DROP, (unsigned long) c, 0, 0, 0) < 0) {
            if (errno == EPERM)
                return 0;
            if (errno == EINVAL)
                break;
            return -errno;
        }
    }
    return 0;
}

/* Row 20: no privilege gain through setuid binaries, file capabilities or
 * a uid change. Order matters: the bounding set and securebits need
 * CAP_SETPCAP, so they go before capset() empties the effective set. */
int al_caps_drop(char why[AL_SANDBOX_WHY])
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                         SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                         SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    int r;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0, 0, 0) < 0)
        return fail(why, "prctl(PR_SET_NO_NEW_PRIVS)", -errno);
    r = drop_bounding();
    if (r < 0)
        return fail(why, "prctl(PR_CAPBSET_DROP)", r);
    /* EINVAL: a kernel without ambient capabilities (< 4.3) has none. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return fail(why, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)", -errno);
    /* uid 0 gains nothing by being uid 0, now or after a setuid; locked so
     * a later step cannot undo it. Needs CAP_SETPCAP: skipped without. */
    if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0 && errno != EPERM)
        return fail(why, "prctl(PR_SET_SECUREBITS)", -errno);
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) < 0)
        return fail(why, "capset", -errno);
    return 0;
}

/* ---- seccomp ------------------------------------------------------------- */

/* Denied outright, with the §3 row each one answers. */
static const struct {
    int nr;
    int err;
    unsigned char row;
    const char *name;
} deny[] = {
#define D(sys, row) { SCMP_SYS(sys), EPERM, (row), #sys }
    /* 3: reaching into another process. ptrace is opt-in per session in
     * §3, which this contract does not carry yet: denied. */
    D(ptrace, 3), D(process_vm_readv, 3), D(process_vm_writev, 3), D(kcmp, 3),
    D(pidfd_getfd, 3), D(process_madvise, 3),
    /* 4: keyrings are not fully namespaced. */
    D(keyctl, 4), D(add_key, 4), D(request_key, 4),
    /* 5: undoing the read-only binds, old and new mount API. */
    D(mount, 5), D(umount2, 5), D(pivot_root, 5), D(chroot, 5), D(fsopen, 5), D(fsconfig, 5),
    D(fsmount, 5), D(fspick, 5), D(move_mount, 5), D(open_tree, 5), D(mount_setattr, 5),
    /* 6: nested namespaces (clone with CLONE_NEW* is below). */
    D(unshare, 6), D(setns, 6),
    /* 7, 8, 9, 10: kernel attack surface with a record. */
    D(bpf, 7), D(userfaultfd, 8), D(io_uring_setup, 9), D(io_uring_enter, 9),
    D(io_uring_register, 9), D(perf_event_open, 10),
    /* Row 0 (beyond §3): host-wide state, the calls Docker's default
     * profile refuses too. Each also needs a capability the session no
     * longer has (row 20); the filter keeps them out should one survive (a
     * user namespace's root, a kernel bug). vhangup() belongs to row 19. */
    D(kexec_load, 0), D(kexec_file_load, 0), D(init_module, 0), D(finit_module, 0),
    D(delete_module, 0), D(acct, 0), D(swapon, 0), D(swapoff, 0), D(reboot, 0),
    D(settimeofday, 0), D(clock_settime, 0), D(clock_adjtime, 0), D(adjtimex, 0),
    D(quotactl, 0), D(quotactl_fd, 0), D(lookup_dcookie, 0), D(open_by_handle_at, 0),
    D(name_to_handle_at, 0), D(syslog, 0), D(vhangup, 19), D(fanotify_init, 0),
    D(nfsservctl, 0), D(uselib, 0), D(iopl, 0), D(ioperm, 0),
#undef D
};

static int rule(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n, const struct scmp_arg_cmp *cmp)
{
    return seccomp_rule_add_array(ctx, action, nr, n, cmp);
}

/* Row 6: clone() with any namespace flag. One rule per flag, because a
 * rule's comparisons are ANDed and "(flags & mask) != 0" has no single
 * libseccomp comparison. clone3() passes its flags in memory, out of the
 * filter's reach, so it is ENOSYS: glibc then falls back to clone(). */
static int add_clone_rules(scmp_filter_ctx ctx, char why[AL_SANDBOX_WHY])
{
    static const uint64_t ns_flags[] = {
        CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
        CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME,
    };
    int r;

    for (size_t i = 0; i < AL_ELEMENTSOF(ns_flags); i++) {
        struct scmp_arg_cmp c = SCMP_CMP(CLONE_FLAGS_ARG, SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]);
        r = rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, &c);
        if (r < 0)
            return fail(why, "seccomp_rule_add(clone)", r);
    }
    r = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL);
    if (r < 0)
        return fail(why, "seccomp_rule_add(clone3)", r);
    return 0;
}

/* Row 19: pushing bytes into a terminal's input (TIOCSTI) or the console's
 * selection buffer (TIOCLINUX). The request is compared on its low 32 bits
 * only: the kernel reads it as an unsigned int. */
static int add_ioctl_rules(scmp_filter_ctx ctx, char why[AL_SANDBOX_WHY])
{
    static const uint64_t reqs[] = { TIOCSTI, TIOCLINUX };

    for (size_t i = 0; i < AL_ELEMENTSOF(reqs); i++) {
        struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, LOW32, reqs[i]);
        int r = rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, &c);
        if (r < 0)
            return fail(why, "seccomp_rule_add(ioctl)", r);
    }
    return 0;
}

/* Row 18's optional socket rules: no packet sockets, and no raw sockets
 * of any family but netlink. glibc's getifaddrs() and getaddrinfo()'s
 * AI_ADDRCONFIG open NETLINK_ROUTE as SOCK_RAW, so netlink stays allowed.
 * The type is masked with 0xf to see through SOCK_NONBLOCK|SOCK_CLOEXEC.
 * "domain != AF_NETLINK" compares all 64 bits, which only errs towards
 * denying: the one value it lets through is AF_NETLINK itself. */
static int add_socket_rules(scmp_filter_ctx ctx, char why[AL_SANDBOX_WHY])
{
    struct scmp_arg_cmp packet = SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, AF_PACKET);
    struct scmp_arg_cmp raw[] = {
        SCMP_A0(SCMP_CMP_NE, AF_NETLINK, 0),
        SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW),
    };
    int r;

    r = rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1, &packet);
    if (r >= 0)
        r = rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), AL_ELEMENTSOF(raw), raw);
    if (r < 0)
        return fail(why, "seccomp_rule_add(socket)", r);
    return 0;
}

/* personality(): only the query (0xffffffff, which ASan and glibc issue)
 * and PER_LINUX (0) pass. The other personas turn off ASLR
 * (ADDR_NO_RANDOMIZE), make data executable (READ_IMPLIES_EXEC) or map
 * page 0 (MMAP_PAGE_ZERO), each weakening the kernel's exploit
 * mitigations for the session.
 *
 * libseccomp takes one comparison per argument in a rule, so "neither 0
 * nor 0xffffffff" is written as a union of single comparisons: a 32-bit
 * value that is neither all zeros nor all ones has, read cyclically, some
 * set bit i followed by a clear bit i+1. One rule per i denies exactly
 * those values. Only the low 32 bits are looked at, as by the kernel. */
static int add_personality_rules(scmp_filter_ctx ctx, char why[AL_SANDBOX_WHY])
{
    for (unsigned i = 0; i < 32; i++) {
        uint64_t bit = 1ULL << i, next = 1ULL << ((i + 1) % 32);
        struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_MASKED_EQ, bit | next, bit);
        int r = rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1, &c);
        if (r < 0)
            return fail(why, "seccomp_rule_add(personality)", r);
    }
    return 0;
}

/* Row 22: only the native ABI. seccomp_init() adds the native arch alone;
 * any other arch (i386 via int 0x80 on x86-64) hits BADARCH and kills the
 * process. x32 shares x86-64's AUDIT_ARCH, so libseccomp's x86-64 filter
 * sends syscall numbers with __X32_SYSCALL_BIT to BADARCH as well, as long
 * as x32 is not added; test_seccomp checks that it does. */
static int set_attrs(scmp_filter_ctx ctx, char why[AL_SANDBOX_WHY])
{
    static const struct {
        enum scmp_filter_attr attr;
        uint32_t value;
        const char *name;
    } attrs[] = {
        { SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS, "BADARCH" },
        /* no_new_privs is al_caps_drop()'s job; libseccomp setting it
         * quietly would hide a step taken out of order. */
        { SCMP_FLTATR_CTL_NNP, 0, "CTL_NNP" },
        /* Every thread, not just the caller. */
        { SCMP_FLTATR_CTL_TSYNC, 1, "CTL_TSYNC" },
        /* A binary tree over the syscall numbers: ioctl(), socket(),
         * clone() and personality() carry argument rules, so the kernel's
         * allow cache cannot skip the filter for them, and ioctl() is hot.
         * Also cuts the load (the kernel emulates the filter per syscall
         * to fill that cache). */
        { SCMP_FLTATR_CTL_OPTIMIZE, 2, "CTL_OPTIMIZE" },
        /* Raw -errno from libseccomp instead of its generic -ECANCELED. */
        { SCMP_FLTATR_API_SYSRAWRC, 1, "API_SYSRAWRC" },
    };

    for (size_t i = 0; i < AL_ELEMENTSOF(attrs); i++) {
        int r = seccomp_attr_set(ctx, attrs[i].attr, attrs[i].value);
        if (r < 0)
            return fail(why, attrs[i].name, r);
    }
    if (seccomp_arch_exist(ctx, SCMP_ARCH_NATIVE) != 0)
        return fail(why, "seccomp_arch_exist(native)", -EOPNOTSUPP);
    return 0;
}

static int build(scmp_filter_ctx ctx, char why[AL_SANDBOX_WHY])
{
    char what[64];
    int r;

    r = set_attrs(ctx, why);
    if (r < 0)
        return r;
    for (size_t i = 0; i < AL_ELEMENTSOF(deny); i++) {
        /* A negative number is libseccomp's stand-in for a syscall this
         * arch does not have (iopl off x86): nothing to deny. */
        if (deny[i].nr < 0)
            continue;
        r = rule(ctx, SCMP_ACT_ERRNO(deny[i].err), deny[i].nr, 0, NULL);
        if (r < 0) {
            snprintf(what, sizeof(what), "seccomp_rule_add(%s, row %u)", deny[i].name, deny[i].row);
            return fail(why, what, r);
        }
    }
    r = add_clone_rules(ctx, why);
    if (r >= 0)
        r = add_ioctl_rules(ctx, why);
    if (r >= 0)
        r = add_socket_rules(ctx, why);
    if (r >= 0)
        r = add_personality_rules(ctx, why);
    return r;
}

static void seccomp_releasep(scmp_filter_ctx *ctx)
{
    if (*ctx)
        seccomp_release(*ctx);
}

/* A new context with the whole filter in *ret (the caller releases it). */
static int new_filter(scmp_filter_ctx *ret, char why[AL_SANDBOX_WHY])
{
    *ret = seccomp_init(SCMP_ACT_ALLOW);
    if (!*ret)
        return fail(why, "seccomp_init", -ENOMEM);
    return build(*ret, why);
}

/* The program al_seccomp_prepare() built, or none. */
static struct sock_filter *prepared;
static unsigned short prepared_len;

int al_seccomp_prepare(char why[AL_SANDBOX_WHY])
{
    __attribute__((cleanup(seccomp_releasep))) scmp_filter_ctx ctx = NULL;
    _cleanup_close_ int fd = -1;
    struct stat st;
    int r;

    if (prepared)
        return 0;
    r = new_filter(&ctx, why);
    if (r < 0)
        return r;
    /* libseccomp 2.5 exports to a descriptor only. */
    fd = memfd_create("airlock-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return fail(why, "memfd_create", -errno);
    r = seccomp_export_bpf(ctx, fd);
    if (r < 0)
        return fail(why, "seccomp_export_bpf", r);
    if (fstat(fd, &st) < 0)
        return fail(why, "fstat", -errno);
    if (st.st_size <= 0 || st.st_size % (off_t) sizeof(struct sock_filter) ||
        st.st_size / (off_t) sizeof(struct sock_filter) > BPF_MAXINSNS)
        return fail(why, "seccomp_export_bpf: unexpected program size", -EIO);
    struct sock_filter *prog = al_xmalloc((size_t) st.st_size);
    if (pread(fd, prog, (size_t) st.st_size, 0) != st.st_size) {
        free(prog);
        return fail(why, "pread", -EIO);
    }
    prepared = prog;
    prepared_len = (unsigned short) (st.st_size / (off_t) sizeof(struct sock_filter));
    return 0;
}

/* Builds and loads the filter, or loads the prepared program with the flag
 * the build sets (TSYNC). Refuses (-EPERM) unless no_new_privs is already
 * set: al_caps_drop() comes first, and without it an unprivileged process
 * could not load a filter anyway. */
int al_seccomp_apply(char why[AL_SANDBOX_WHY])
{
    __attribute__((cleanup(seccomp_releasep))) scmp_filter_ctx ctx = NULL;
    int r;

    r = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    if (r < 0)
        return fail(why, "prctl(PR_GET_NO_NEW_PRIVS)", -errno);
    if (r != 1)
        return fail(why, "no_new_privs not set (al_caps_drop first)", -EPERM);
    if (prepared) {
        struct sock_fprog fp = { .len = prepared_len, .filter = prepared };
        long k = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp);
        if (k < 0)
            return fail(why, "seccomp(SET_MODE_FILTER)", -errno);
        if (k > 0)
            return fail(why, "seccomp(SET_MODE_FILTER): a thread could not be synchronised", -EBUSY);
        return 0;
    }
    r = new_filter(&ctx, why);
    if (r < 0)
        return r;
    r = seccomp_load(ctx);
    if (r < 0)
        return fail(why, "seccomp_load", r);
    return 0;
}
