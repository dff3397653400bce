/* SPDX-License-Identifier: Apache-2.0 */
/* Isolation-level names and the per-session resource limits of
 * sandbox-notes §5.4: the defaults, and the rlimit backstops the runner
 * sets on itself before it starts the shell (inherited by everything the
 * session runs). Not the cgroup limits: cgroup.c writes those from the
 * worker. Runs in the runner (or a forked test child); base only. */
#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <sys/resource.h>

#include "../lib/base/log.h"
#include "sandbox.h"

#define KIB ((int64_t) 1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

/* The soft RLIMIT_NOFILE: select() breaks above FD_SETSIZE (1024), so
 * programs that want more raise their soft limit themselves (as systemd
 * does for services). */
#define NOFILE_SOFT_MAX 1024
/* sandbox-notes §5.4: the kernel's own defaults, written down so a host
 * that raised them does not raise them for sessions. */
#define MEMLOCK_MAX     (64 * KIB)
#define MSGQUEUE_MAX    819200

static const char *const iso_names[] = {
    [AL_ISO_D] = "D",
    [AL_ISO_C] = "C",
    [AL_ISO_B] = "B",
    [AL_ISO_A] = "A",
};

const char *al_isolation_name(enum al_isolation l)
{
    if ((unsigned) l >= AL_ELEMENTSOF(iso_names))
        return "?";
    return iso_names[l];
}

/* "A".."D", case-insensitive, nothing else. Returns 0 or -EINVAL (*ret
 * untouched). */
int al_isolation_parse(const char *s, enum al_isolation *ret)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < AL_ELEMENTSOF(iso_names); i++)
        if (strcasecmp(s, iso_names[i]) == 0) {
            *ret = (enum al_isolation) i;
            return 0;
        }
    return -EINVAL;
}

void al_sandbox_limits_default(struct al_sandbox_limits *l)
{
    *l = (struct al_sandbox_limits) {
        .memory_max = 2 * GIB,
        .pids_max = 512,
        .cpu_pct = 100,
        .nofile = 4096,
        .fsize = 1 * GIB,
        .tmp_size = 512 * MIB,
        .tmp_inodes = 65536,
    };
}

static int set_why(char why[AL_SANDBOX_WHY], const char *what, int r)
{
    const char *n = al_errno_name(-r);

    snprintf(why, AL_SANDBOX_WHY, "setrlimit(%s): %s", what, n ? n : "error");
    return r;
}

/* Sets resource to at most (soft, hard). A limit is only ever lowered:
 * raising a hard limit needs CAP_SYS_RESOURCE (which this host's bounding
 * set lacks, sandbox-notes §2), and a host limit stricter than ours is
 * still a limit. */
static int lower(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit cur, want;

    if (getrlimit(resource, &cur) < 0)
        return -errno;
    want.rlim_max = AL_MIN(hard, cur.rlim_max);
    want.rlim_cur = AL_MIN(soft, want.rlim_max);
    if (setrlimit(resource, &want) < 0)
        return -errno;
    return 0;
}

/* The order does not matter (each call is independent); a failure stops
 * at the first limit that could not be set and names it in why, leaving
 * the earlier ones applied. */
int al_rlimits_apply(const struct al_sandbox_limits *l, bool per_session_uid, char why[AL_SANDBOX_WHY])
{
    struct {
        const char *name;
        int resource;
        int64_t hard;   /* 0: leave alone */
        int64_t soft;   /* -1: same as hard */
    } tab[] = {
        /* Row 14: fd exhaustion. */
        { "NOFILE", RLIMIT_NOFILE, l->nofile, AL_MIN(l->nofile, (int64_t) NOFILE_SOFT_MAX) },
        /* Row 13, last resort: writes past it fail with EFBIG and raise
         * SIGXFSZ, whose default action kills the writer. */
        { "FSIZE", RLIMIT_FSIZE, l->fsize, -1 },
        { "MEMLOCK", RLIMIT_MEMLOCK, MEMLOCK_MAX, -1 },
        { "MSGQUEUE", RLIMIT_MSGQUEUE, MSGQUEUE_MAX, -1 },
        /* Row 11 fallback: NPROC counts the processes of the real uid
         * across all namespaces, so it only bounds a session whose uid is
         * its own; with a shared uid it would throttle every session. */
        { "NPROC", RLIMIT_NPROC, per_session_uid ? l->pids_max : 0, -1 },
        /* Row 12 fallback. DATA, never AS: AS counts reservations, which
         * breaks JITs and Go. DATA still counts private writable
         * mappings, so sanitizer-built programs (ASan's shadow) cannot
         * start under it; the caller passes memory_max = 0 when cgroups
         * enforce memory. */
        { "DATA", RLIMIT_DATA, l->memory_max, -1 },
    };
    int r;

    /* No core files: they would land in /workspace, and a dump of a
     * setuid-less shell is still a copy of its memory. */
    r = lower(RLIMIT_CORE, 0, 0);
    if (r < 0)
        return set_why(why, "CORE", r);
    for (size_t i = 0; i < AL_ELEMENTSOF(tab); i++) {
        if (tab[i].hard <= 0)
            continue;
        rlim_t hard = (rlim_t) tab[i].hard;
        rlim_t soft = tab[i].soft < 0 ? hard : (rlim_t) tab[i].soft;
        r = lower(tab[i].resource, soft, hard);
        if (r < 0)
            return set_why(why, tab[i].name, r);
    }
    return 0;
}

void al_sandbox_limits_merge(struct al_sandbox_limits *l, const struct al_sandbox_limits *over)
{
    int64_t *const dst[] = { &l->memory_max, &l->pids_max, &l->cpu_pct, &l->nofile, &l->fsize, &l->tmp_size,
                             &l->tmp_inodes };
    const int64_t src[] = { over->memory_max, over->pids_max, over->cpu_pct, over->nofile, over->fsize,
                            over->tmp_size, over->tmp_inodes };

    for (size_t i = 0; i < AL_ELEMENTSOF(src); i++)
        if (src[i] > 0)
            *dst[i] = src[i];
}
