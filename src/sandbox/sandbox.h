/* SPDX-License-Identifier: Apache-2.0 */
/* The isolation layers around a session's runner (sandbox-notes §5), as
 * separate steps the runner takes in order at start-up (runner.h):
 *
 *   worker (host side, before/after spawning the runner)
 *     al_cgroup_create()            per-session cgroup with limits (cgroup.c)
 *   runner, still in the host's namespaces
 *     al_cgroup_join()              move itself in, before anything forks
 *     al_ns_enter()                 userns (+ uid map), mnt/pid/ipc/uts/cgroup/net
 *                                   ns; forks: the child goes on as PID 1, the
 *                                   parent waits and mirrors its exit (ns.c)
 *     al_ns_setup_fs()              tmpfs root, read-only system binds, rw
 *                                   /workspace and /mnt/session/outputs, tmpfs
 *                                   /tmp, fresh /proc, minimal /dev, pivot_root
 *     al_ns_setup_net()             bring up lo
 *     al_rlimits_apply()            backstops (limits.c)
 *     al_landlock_apply()           file-system rules (landlock.c)
 *     al_caps_drop()                NNP, no capabilities (seccomp.c)
 *     al_seccomp_apply()            the deny list (seccomp.c), last
 *   worker, after the runner exited
 *     al_cgroup_destroy()           kill what is left, remove the cgroup
 *
 * Each step returns 0 or a negative errno and fills a short reason for the
 * probe report; none of them logs secrets or exits. Base only: libc,
 * libseccomp; never libevent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/base/macro.h"

/* Isolation levels (sandbox-notes §5.2). */
enum al_isolation {
    AL_ISO_D = 0,    /* neither seccomp nor Landlock: refuse */
    AL_ISO_C,        /* no namespaces: Landlock + seccomp + rlimits */
    AL_ISO_B,        /* namespaces, no cgroups */
    AL_ISO_A,        /* everything */
};

const char *al_isolation_name(enum al_isolation l);     /* "A".."D" */
int al_isolation_parse(const char *s, enum al_isolation *ret);

/* Per-session limits (sandbox-notes §5.4); 0 = not set. */
struct al_sandbox_limits {
    int64_t memory_max;      /* bytes (cgroup memory.max; RLIMIT_DATA without cgroups) */
    int64_t pids_max;        /* cgroup pids.max; RLIMIT_NPROC with a per-session uid */
    int64_t cpu_pct;         /* percent of one CPU (cgroup cpu.max / cfs quota) */
    int64_t nofile;          /* RLIMIT_NOFILE hard; soft = min(1024, hard) */
    int64_t fsize;           /* RLIMIT_FSIZE bytes */
    int64_t tmp_size;        /* /tmp tmpfs size bytes */
    int64_t tmp_inodes;      /* /tmp tmpfs nr_inodes */
};

/* Defaults of sandbox-notes §5.4. */
void al_sandbox_limits_default(struct al_sandbox_limits *l);
/* Sets each limit of over that is > 0 over the same limit of l (a
 * configuration over the defaults). */
void al_sandbox_limits_merge(struct al_sandbox_limits *l, const struct al_sandbox_limits *over);

/* What a step reports: a short static or owned-by-caller buffer. */
#define AL_SANDBOX_WHY 160

/* ---- ns.c ---------------------------------------------------------------- */

struct al_ns_cfg {
    const char *workdir;     /* host dir, becomes /workspace (rw, nosuid, nodev) */
    const char *outputs;     /* host dir, becomes /mnt/session/outputs; NULL: none */
    uid_t uid;               /* host uid the sandbox's root maps to (per session
                              * when the worker is root; else the worker's own).
                              * Never 0: refused with -EPERM */
    gid_t gid;               /* likewise; never 0 */
    bool net_host;           /* keep the host's network namespace */
    int netns_fd;            /* >= 3: a fresh network namespace from
                              * al_netns_new() to join instead of creating
                              * one (the zygote's pool); else none */
    const struct al_sandbox_limits *lim; /* tmp_size, tmp_inodes of /tmp and
                              * /dev/shm (0 or NULL: 512 MiB, 65536) */
};

/* Clones into new user, mount, pid, ipc, uts, cgroup (and net unless
 * net_host) namespaces; the parent writes the child's uid_map "0 uid 1" and
 * gid_map "0 gid 1" (a process inside may map only its own ids).
 * - Parent (the original runner process): never returns once the child
 *   runs. It closes every fd but 0-2 (so fd 3, the worker's socket, is
 *   the child's alone), forwards SIGTERM/SIGINT/SIGHUP to the child, and
 *   _exits with the child's status, or 128+signal. PID 1 only receives a
 *   forwarded signal it has a handler for (pid_namespaces(7)).
 * - Child: returns 0 as PID 1 of the new pid namespace, uid/gid 0 there,
 *   no supplementary groups, PR_SET_PDEATHSIG(SIGKILL), a new session (no
 *   controlling tty), hostname "airlock", and not dumpable (the session,
 *   running as the same uid, cannot ptrace it or open /proc/1/fd/3; what
 *   it execs is dumpable again).
 * Must be called single-threaded. Negative errno with nothing changed when
 * the arguments or the kernel refuse (uid/gid 0, a non-root caller mapping
 * ids not its own, a missing workdir, clone failing: EPERM/ENOSPC when user
 * namespaces are disabled). An error after the clone is returned in the
 * child, which should then exit; the parent mirrors that exit. */
_must_check_ int al_ns_enter(const struct al_ns_cfg *c, char why[AL_SANDBOX_WHY]);
/* In the child, after al_ns_enter: builds a new root on a tmpfs (read-only
 * binds of /usr /etc /opt, merged-/usr symlinks, rw /workspace and
 * /mnt/session/outputs, tmpfs /tmp, a fresh /proc with the OCI masks, a
 * minimal /dev, no /sys), makes / read-only and pivots into it; the old
 * root is detached, and the cwd is /workspace. Host paths (c->workdir)
 * mean nothing afterwards. docs/internals/SANDBOX.md lists what is seen. */
_must_check_ int al_ns_setup_fs(const struct al_ns_cfg *c, char why[AL_SANDBOX_WHY]);
/* A fresh network namespace with lo up, for a session to join later
 * (al_ns_cfg.netns_fd): made in the caller's user namespace (root: the
 * host's), so a session's root has no capability over it and cannot change
 * its configuration (it has dropped every capability anyway). The caller's
 * network namespace is unchanged on return. Needs CAP_SYS_ADMIN. The
 * descriptor (O_CLOEXEC), or -errno; -ENOTRECOVERABLE when the caller
 * could not return to its own namespace. */
_must_check_ int al_netns_new(char why[AL_SANDBOX_WHY]);
/* In the child: lo up (a no-op with net_host, and when lo is up already). */
_must_check_ int al_ns_setup_net(const struct al_ns_cfg *c, char why[AL_SANDBOX_WHY]);

/* ---- limits.c / seccomp.c ------------------------------------------------ */

/* Lowers the calling process's rlimits to l (never raises one): NOFILE
 * (soft min(1024, hard)), FSIZE, CORE 0, MEMLOCK 64 KiB, MSGQUEUE, NPROC =
 * pids_max only when per_session_uid (NPROC counts per real uid), DATA =
 * memory_max when > 0 (pass 0 when cgroups enforce memory; sanitizer-built
 * programs cannot start under it). Never RLIMIT_AS. 0 or -errno. */
_must_check_ int al_rlimits_apply(const struct al_sandbox_limits *l, bool per_session_uid, char why[AL_SANDBOX_WHY]);
/* PR_SET_NO_NEW_PRIVS, then empty bounding, ambient, inheritable, permitted
 * and effective sets, and locked NOROOT/NO_SETUID_FIXUP securebits where
 * permitted. Per thread: call it before starting threads. PR_SET_DUMPABLE
 * is left alone (the shell must be able to read its own /proc). 0 or
 * -errno. */
_must_check_ int al_caps_drop(char why[AL_SANDBOX_WHY]);
/* The deny list of sandbox-notes §3 with EPERM (clone3: ENOSYS), native arch
 * only, other arches and x32 killed; all threads (TSYNC). Inherited by
 * everything the runner starts. -EPERM unless no_new_privs is set
 * (al_caps_drop first). ptrace is denied, so LeakSanitizer cannot run at
 * exit in a sanitizer build. 0 or -errno. */
_must_check_ int al_seccomp_apply(char why[AL_SANDBOX_WHY]);
/* Builds the same filter once and keeps its BPF program in this process, so
 * that al_seccomp_apply() here and in every fork loads it instead of
 * building it again (the runner zygote calls this before it forks runners;
 * building costs more than the rest of the restrictions together). 0 or
 * -errno; on failure al_seccomp_apply() builds as before. */
_must_check_ int al_seccomp_prepare(char why[AL_SANDBOX_WHY]);

/* ---- landlock.c ------------------------------------------------------------ */

struct al_landlock_paths {
    const char *const *ro;   /* read file, read dir, execute: system dirs; NULL-terminated */
    const char *const *rw;   /* every FS right: workspace, outputs, /tmp, /dev/null...;
                              * NULL-terminated. Files (not dirs) get the file rights only */
    bool restrict_tcp;       /* ABI >= 4: deny TCP bind and connect, except connect
                              * to tcp_connect; off by default (network untouched) */
    const uint16_t *tcp_connect; /* 0-terminated ports (the egress proxy), or NULL */
};

/* Applies a ruleset handling every FS right the running ABI knows (1: base,
 * 2: REFER, 3: TRUNCATE, 5: IOCTL_DEV; scopes are not used), so what is not
 * under ro or rw is denied with EACCES. Paths that do not exist are skipped.
 * Sets PR_SET_NO_NEW_PRIVS first. Irreversible for the calling thread and
 * its descendants; fds already open keep their access. *abi gets the ABI
 * (0 when Landlock is unavailable: returns -EOPNOTSUPP). Returns 0, or
 * AL_LANDLOCK_NO_NET when restrict_tcp was asked but the ABI is < 4 (the FS
 * rules are in force, TCP is not restricted, why says so), or -errno with
 * why filled (nothing restricted). */
#define AL_LANDLOCK_NO_NET 1
_must_check_ int al_landlock_apply(const struct al_landlock_paths *p, int *abi, char why[AL_SANDBOX_WHY]);
int al_landlock_abi(void);   /* 0 when unavailable */

/* ---- cgroup.c (worker side; needs write access to a cgroup tree) ---------- */

struct al_cgroup;            /* one session's cgroup(s), v2 or v1 */

/* Creates the session's cgroup under the worker's (v2: a delegated subtree,
 * <own>/airlock-sessions/<id>; v1: <own>/airlock/<id> in each of the memory,
 * pids, cpu, freezer hierarchies that is writable) with the limits (0 = not
 * written; l may be NULL). session_id: 1-64 of [A-Za-z0-9_-], else -EINVAL.
 * On v2 the worker may move itself into <own>/airlock-worker (the
 * no-internal-processes rule). Owned by the caller until destroy; why gets
 * a summary ("cgroup v1: memory pids cpu freezer"). NULL with *err (-errno)
 * and why set when cgroups are not writable here or a limit is refused. */
struct al_cgroup *al_cgroup_create(const char *session_id, const struct al_sandbox_limits *l, int *err,
                                   char why[AL_SANDBOX_WHY]);
/* Paths the runner joins (one per hierarchy), NULL-terminated; borrowed. */
const char *const *al_cgroup_procs_paths(const struct al_cgroup *cg);
/* From the runner, before it forks: writes its pid to every cgroup.procs. */
_must_check_ int al_cgroup_join(const char *const *procs_paths);
/* Kills every process left (cgroup.kill, or freeze + SIGKILL + thaw),
 * waits until empty, removes the directories, frees cg. From the worker
 * (pids are read in its pid namespace). NULL-safe. Bounded (~3 s worst,
 * typically ~1 ms). Returns 0 or -errno (-ETIMEDOUT: a task would not
 * die; cg is freed anyway). */
int al_cgroup_destroy(struct al_cgroup *cg);
/* OOM kills in the session (v2 memory.events, v1 memory.oom_control; v1
 * before 4.13: 1 when memory.failcnt > 0); 0 when none, unknown or NULL. */
int al_cgroup_oom_kills(const struct al_cgroup *cg);

/* ---- probe.c --------------------------------------------------------------- */

/* What this host allows, probed in forked children (sandbox-notes §5.2). */
struct al_probe {
    enum al_isolation level; /* A: namespaces (userns or root) + cgroups; B: no
                              * cgroups; C: no namespaces, seccomp + Landlock; D */
    bool userns, mntns, pidns, netns, ipcns, utsns, cgroupns, proc_mount, lo_up;
    bool seccomp, openat2, pidfd, cgroup_writable;
    int landlock_abi;
    int cgroup_version;      /* 2, 1, or 0 when not writable */
    bool root;
    bool forced;             /* AIRLOCK_SANDBOX_FORCE_LEVEL capped level at forced_level */
    enum al_isolation forced_level;
    char missing[512];       /* "userns: EPERM; cgroup: not writable": "; "-separated */
    char fixes[1024];        /* the exact fix for each missing piece, "; "-separated */
};

/* Probes in forked children, so the calling process changes in no way (it
 * may be multi-threaded: the children are not). Blocks for a few ms and
 * reaps its own children with waitpid(pid): call it before installing a
 * SIGCHLD handler that reaps everything. Environment (tests, operators):
 * AIRLOCK_SANDBOX_FORCE_LEVEL=A..D caps the level; AIRLOCK_SANDBOX_NO_CGROUPS=1
 * reports cgroups as not writable. Never fails: what cannot be probed is
 * reported missing. */
void al_probe_run(struct al_probe *p);
/* The JSON report `airlock worker --check` prints: {"level","features":{...},
 * "missing":[],"fixes":[],"kernel","root","forced":null|"C"}. Owned by the
 * caller (free()); NULL on out of memory. */
char *al_probe_json(const struct al_probe *p);
