/* SPDX-License-Identifier: Apache-2.0 */
/* Landlock file-system (and, on request, TCP) rules for the runner, through
 * the raw syscalls: glibc has no wrappers and Debian 12's uapi header stops
 * at ABI 2, so the newer rights are defined here. Runs in the runner (or a
 * forked test child) only; restricting is irreversible for the calling
 * thread and everything it starts. Not the probe: probe.c only asks for the
 * ABI. Base only, never libevent. */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self 446
#endif

/* Rights newer than the installed header (kernel uapi values). */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)          /* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)       /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)      /* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)       /* ABI 4 */
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#define AL_LL_RULE_NET_PORT 2                          /* LANDLOCK_RULE_NET_PORT */

/* The kernel's struct landlock_ruleset_attr as of ABI 6. The kernel accepts
 * a larger struct than it knows as long as the extra bytes are zero, so one
 * layout serves every ABI; `scoped` stays 0 (scopes are not used). */
struct al_ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct al_ll_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
};

#define LL_FS_ABI1                                                                                   \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |     \
     LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |  \
     LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |      \
     LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |   \
     LANDLOCK_ACCESS_FS_MAKE_SYM)

/* The rights that make sense on a non-directory; the kernel refuses a
 * path-beneath rule on a file that grants directory rights (EINVAL). */
#define LL_FS_FILE                                                                                   \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |     \
     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

#define LL_FS_RO (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

int al_landlock_abi(void)
{
    long v = syscall(__NR_landlock_create_ruleset, NULL, (size_t) 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v > 0 ? (int) v : 0;
}

/* Every file-system right an ABI knows; all of them are handled, so nothing
 * the kernel can check is left open by omission. ABI 1 cannot express
 * REFER: there, linking or renaming into another directory is always
 * denied, which is the safe side. */
static uint64_t fs_rights(int abi)
{
    uint64_t r = LL_FS_ABI1;

    if (abi >= 2)
        r |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        r |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return r;
}

/* Adds one path-beneath rule. A path that does not exist is skipped
 * (returns 0): the same list serves hosts with and without /lib64, say. */
static int add_path(int ruleset, const char *path, uint64_t access, char why[AL_SANDBOX_WHY])
{
    _cleanup_close_ int fd = -1;
    struct stat st;

    fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        int r = -errno;
        snprintf(why, AL_SANDBOX_WHY, "landlock: open %s: errno %d", path, -r);
        return r;
    }
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        access &= LL_FS_FILE;

    struct landlock_path_beneath_attr pb = { .allowed_access = access, .parent_fd = fd };
    if (syscall(__NR_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0) {
        int r = -errno;
        snprintf(why, AL_SANDBOX_WHY, "landlock: add rule %s: errno %d", path, -r);
        return r;
    }
    return 0;
}

static int add_paths(int ruleset, const char *const *paths, uint64_t access, char why[AL_SANDBOX_WHY])
{
    for (size_t i = 0; paths && paths[i]; i++) {
        int r = add_path(ruleset, paths[i], access, why);
        if (r < 0)
            return r;
    }
    return 0;
}

static int add_ports(int ruleset, const uint16_t *ports, uint64_t access, char why[AL_SANDBOX_WHY])
{
    for (size_t i = 0; ports && ports[i]; i++) {
        struct al_ll_net_port_attr np = { .allowed_access = access, .port = ports[i] };
        if (syscall(__NR_landlock_add_rule, ruleset, AL_LL_RULE_NET_PORT, &np, 0) < 0) {
            int r = -errno;
            snprintf(why, AL_SANDBOX_WHY, "landlock: add port %u: errno %d", (unsigned) ports[i], -r);
            return r;
        }
    }
    return 0;
}

static int restrict_self(int ruleset, char why[AL_SANDBOX_WHY])
{
    /* restrict_self demands NNP (or CAP_SYS_ADMIN in the namespace, which a
     * sandbox's root has, but we do not rely on it). Setting it twice is
     * harmless and it cannot be unset, so no check first. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) < 0) {
        int r = -errno;
        snprintf(why, AL_SANDBOX_WHY, "landlock: PR_SET_NO_NEW_PRIVS: errno %d", -r);
        return r;
    }
    if (syscall(__NR_landlock_restrict_self, ruleset, 0) < 0) {
        int r = -errno;
        snprintf(why, AL_SANDBOX_WHY, "landlock: restrict_self: errno %d", -r);
        return r;
    }
    return 0;
}

int al_landlock_apply(const struct al_landlock_paths *p, int *abi, char why[AL_SANDBOX_WHY])
{
    _cleanup_close_ int ruleset = -1;
    bool want_net = p->restrict_tcp;
    int v = al_landlock_abi(), r;

    *abi = v;
    if (v <= 0) {
        snprintf(why, AL_SANDBOX_WHY, "landlock: unavailable (kernel < 5.13 or not in lsm=)");
        return -EOPNOTSUPP;
    }

    struct al_ll_ruleset_attr attr = { .handled_access_fs = fs_rights(v) };
    if (want_net && v >= 4)
        attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
    /* Pass only the fields this ABI knows (as the kernel's sample does);
     * `scoped` (ABI 6) is never sent. */
    size_t size = v >= 4 ? offsetof(struct al_ll_ruleset_attr, scoped) : sizeof(attr.handled_access_fs);

    ruleset = (int) syscall(__NR_landlock_create_ruleset, &attr, size, 0U);
    if (ruleset < 0) {
        r = -errno;
        snprintf(why, AL_SANDBOX_WHY, "landlock: create_ruleset (ABI %d): errno %d", v, -r);
        return r;
    }
    r = add_paths(ruleset, p->ro, LL_FS_RO & attr.handled_access_fs, why);
    if (r < 0)
        return r;
    r = add_paths(ruleset, p->rw, attr.handled_access_fs, why);
    if (r < 0)
        return r;
    if (attr.handled_access_net) {
        r = add_ports(ruleset, p->tcp_connect, LANDLOCK_ACCESS_NET_CONNECT_TCP, why);
        if (r < 0)
            return r;
    }
    r = restrict_self(ruleset, why);
    if (r < 0)
        return r;
    if (want_net && v < 4) {
        snprintf(why, AL_SANDBOX_WHY, "landlock: ABI %d < 4, TCP not restricted", v);
        return AL_LANDLOCK_NO_NET;
    }
    return 0;
}
