/* SPDX-License-Identifier: Apache-2.0 */
/* What isolation this host allows (sandbox-notes §5.2): namespaces, proc
 * and lo inside them, seccomp, Landlock, openat2, pidfd and writable
 * cgroups, probed in two forked children that write their findings to a
 * shared anonymous page, so the caller (the worker, maybe threaded) changes
 * in no way. Derives the level A-D, and for each missing piece a short
 * reason and the exact fix. Not the sandbox itself; blocking, a few ms. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/base/log.h"
#include "sandbox.h"

/* Namespace steps, in the order the ns child takes them. */
enum {
    NS_USER, NS_IDMAP, NS_MNT, NS_NET, NS_IPC, NS_UTS, NS_CGROUP, NS_PID, NS_PROC, NS_LO,
    _NS_STEP_MAX,
};

static const char *const ns_step_name[_NS_STEP_MAX] = {
    [NS_USER] = "userns", [NS_IDMAP] = "userns uid_map", [NS_MNT] = "mntns", [NS_NET] = "netns",
    [NS_IPC] = "ipcns", [NS_UTS] = "utsns", [NS_CGROUP] = "cgroupns", [NS_PID] = "pidns",
    [NS_PROC] = "proc mount", [NS_LO] = "lo up",
};

#define NOT_TRIED (-1)

/* The page both children write. Errors are positive errno values, 0 for
 * success, NOT_TRIED when an earlier step failed. */
struct probe_page {
    int ns[_NS_STEP_MAX];
    int seccomp_mode;        /* PR_GET_SECCOMP: 0, 2 (already filtered), -errno */
    int seccomp_avail;       /* SECCOMP_GET_ACTION_AVAIL: 0 or errno */
    int openat2, pidfd;      /* 0 or errno */
    int landlock_abi;
    int cgroup_version;
    char cg_why[128];        /* why no cgroup tree is writable */
    char cg_fix[256];
};

static const char *errname(int e)
{
    const char *n = al_errno_name(e);
    return n ? n : "error";
}

static void fclosep(FILE **f)
{
    if (*f)
        (void) fclose(*f);
}

/* Whether word appears in s as a whole item between sep (or newline). */
static bool has_word(const char *s, const char *word, char sep)
{
    size_t n = strlen(word);

    for (const char *p = s; (p = strstr(p, word)) != NULL; p += n) {
        bool start = p == s || p[-1] == sep;
        bool end = p[n] == '\0' || p[n] == sep || p[n] == '\n';
        if (start && end)
            return true;
    }
    return false;
}

/* ---- the namespace child ------------------------------------------------- */

static int write_file(const char *path, const char *s)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t n = strlen(s);
    return write(fd, s, n) == (ssize_t) n ? 0 : errno;
}

/* Maps our ids to root inside, as al_ns_enter does. */
static int map_ids(uid_t uid, gid_t gid)
{
    char m[64];
    int e;

    snprintf(m, sizeof(m), "0 %u 1\n", (unsigned) uid);
    if ((e = write_file("/proc/self/uid_map", m)) != 0)
        return e;
    if ((e = write_file("/proc/self/setgroups", "deny")) != 0 && e != ENOENT)
        return e;
    snprintf(m, sizeof(m), "0 %u 1\n", (unsigned) gid);
    return write_file("/proc/self/gid_map", m);
}

static int lo_up(void)
{
    _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = { 0 };

    if (fd < 0)
        return errno;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return errno;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(fd, SIOCSIFFLAGS, &ifr) < 0 ? errno : 0;
}

/* Our mounts only: the mount namespace is private to this child. */
static int mount_proc(void)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return errno;
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return errno;
    return 0;
}

/* pid: unshare, then fork; the grandchild is PID 1 and mounts a fresh proc
 * (which fails where the outer /proc has masked paths: Docker, k8s). */
static void probe_pid(struct probe_page *pg)
{
    int st;

    if (unshare(CLONE_NEWPID) < 0) {
        pg->ns[NS_PID] = errno;
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        pg->ns[NS_PID] = errno;
        return;
    }
    if (pid == 0) {
        pg->ns[NS_PID] = getpid() == 1 ? 0 : EPROTO;
        if (pg->ns[NS_MNT] == 0)
            pg->ns[NS_PROC] = mount_proc();
        _exit(0);
    }
    (void) waitpid(pid, &st, 0);
}

static void ns_child(struct probe_page *pg)
{
    static const struct { int step, flag; } steps[] = {
        { NS_MNT, CLONE_NEWNS }, { NS_NET, CLONE_NEWNET }, { NS_IPC, CLONE_NEWIPC },
        { NS_UTS, CLONE_NEWUTS }, { NS_CGROUP, CLONE_NEWCGROUP },
    };
    uid_t uid = geteuid();
    gid_t gid = getegid();

    pg->ns[NS_USER] = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
    if (pg->ns[NS_USER] == 0)
        pg->ns[NS_IDMAP] = map_ids(uid, gid);
    else if (uid != 0)
        _exit(0);   /* root goes on in the host's user namespace */
    if (pg->ns[NS_USER] == 0 && pg->ns[NS_IDMAP] != 0)
        _exit(0);
    for (size_t i = 0; i < AL_ELEMENTSOF(steps); i++)
        pg->ns[steps[i].step] = unshare(steps[i].flag) < 0 ? errno : 0;
    if (pg->ns[NS_NET] == 0)
        pg->ns[NS_LO] = lo_up();
    probe_pid(pg);
    _exit(0);
}

/* ---- the feature and cgroup child ---------------------------------------- */

static void probe_seccomp(struct probe_page *pg)
{
    unsigned act = SECCOMP_RET_ERRNO;

    pg->seccomp_mode = prctl(PR_GET_SECCOMP, 0L, 0L, 0L, 0L);
    if (pg->seccomp_mode < 0)
        pg->seccomp_mode = -errno;
    pg->seccomp_avail = syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0U, &act) < 0 ? errno : 0;
}

static void probe_fds(struct probe_page *pg)
{
    struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS };
    long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));

    pg->openat2 = fd < 0 ? errno : 0;
    if (fd >= 0)
        (void) close((int) fd);
    fd = syscall(SYS_pidfd_open, getpid(), 0U);
    pg->pidfd = fd < 0 ? errno : 0;
    if (fd >= 0)
        (void) close((int) fd);
}

/* Reads a small text file into buf; 0 or errno. */
static int read_small(const char *path, char *buf, size_t size)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    ssize_t n = read(fd, buf, size - 1);
    if (n < 0)
        return errno;
    buf[n] = '\0';
    return 0;
}

/* The mount point of the cgroup2 tree (ctrl NULL) or of the v1 hierarchy
 * carrying ctrl, from /proc/self/mountinfo. */
static bool cg_mount(const char *ctrl, char *ret, size_t size)
{
    _cleanup_(fclosep) FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[1024], mnt[512], fstype[32], opts[512];

    while (f && fgets(line, sizeof(line), f)) {
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
            sscanf(dash + 3, "%31s %*s %511s", fstype, opts) != 2)
            continue;
        bool hit = ctrl ? strcmp(fstype, "cgroup") == 0 && has_word(opts, ctrl, ',')
                        : strcmp(fstype, "cgroup2") == 0;
        if (hit) {
            snprintf(ret, size, "%s", mnt);
            return true;
        }
    }
    return false;
}

/* Our cgroup path in the v2 tree (key "") or the v1 hierarchy of a
 * controller, from /proc/self/cgroup ("4:memory:/a/b", "0::/c"). */
static bool cg_path(const char *key, char *ret, size_t size)
{
    _cleanup_(fclosep) FILE *f = fopen("/proc/self/cgroup", "re");
    char line[1024];

    while (f && fgets(line, sizeof(line), f)) {
        char *ctrls = strchr(line, ':'), *path = ctrls ? strchr(ctrls + 1, ':') : NULL;
        if (!path)
            continue;
        *ctrls = '\0';
        *path++ = '\0';
        path[strcspn(path, "\n")] = '\0';
        bool hit = *key ? has_word(ctrls + 1, key, ',') : strcmp(line, "0") == 0 && ctrls[1] == '\0';
        if (hit) {
            snprintf(ret, size, "%s", path);
            return true;
        }
    }
    return false;
}

/* mkdir + rmdir of a probe directory: the test al_cgroup_create will pass. */
static int cg_try_mkdir(const char *dir)
{
    char d[600];

    snprintf(d, sizeof(d), "%s/airlock-probe-%d", dir, (int) getpid());
    if (mkdir(d, 0755) < 0)
        return errno;
    return rmdir(d) < 0 ? errno : 0;
}

static bool cg_dir(const char *ctrl, char *ret, size_t size)
{
    char mnt[512], path[512];

    if (!cg_mount(ctrl, mnt, sizeof(mnt)) || !cg_path(ctrl ? ctrl : "", path, sizeof(path)))
        return false;
    snprintf(ret, size, "%s%s", mnt, strcmp(path, "/") == 0 ? "" : path);
    return true;
}

/* Whether pid is the worker (our parent) or one of its probe children. */
static bool is_worker_or_probe(pid_t pid)
{
    char path[64], st[512];
    const char *p;
    int ppid = -1;

    if (pid == getppid() || pid == getpid())
        return true;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    if (read_small(path, st, sizeof(st)) != 0 || !(p = strrchr(st, ')')))
        return false;
    return sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == (int) getppid();
}

/* al_cgroup_create enables memory+pids below the worker's cgroup itself,
 * moving the worker into a leaf first (the no-internal-processes rule);
 * that fails (EBUSY) when other processes share the cgroup. */
static bool cg_v2_can_enable(const char *dir)
{
    char file[1200], procs[4096] = "";
    char *save = NULL;

    snprintf(file, sizeof(file), "%s/cgroup.procs", dir);
    if (read_small(file, procs, sizeof(procs)) != 0)
        return false;
    for (char *t = strtok_r(procs, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
        if (!is_worker_or_probe((pid_t) strtol(t, NULL, 10)))
            return false;
    return true;
}

static bool cg_v2(struct probe_page *pg)
{
    char dir[1100], file[1200], ctl[256] = "";
    int e;

    if (!cg_dir(NULL, dir, sizeof(dir))) {
        snprintf(pg->cg_why, sizeof(pg->cg_why), "v2: not mounted");
        return false;
    }
    snprintf(file, sizeof(file), "%s/cgroup.controllers", dir);
    if (read_small(file, ctl, sizeof(ctl)) != 0 || !has_word(ctl, "memory", ' ') || !has_word(ctl, "pids", ' ')) {
        snprintf(pg->cg_why, sizeof(pg->cg_why), "v2: memory+pids not delegated");
        snprintf(pg->cg_fix, sizeof(pg->cg_fix),
                 "delegate a cgroup v2 subtree with memory+pids: systemd-run --user -p Delegate=yes "
                 "--scope airlock worker ... (or Delegate=yes in the unit), or run the worker as root");
        return false;
    }
    snprintf(file, sizeof(file), "%s/cgroup.subtree_control", dir);
    if (read_small(file, ctl, sizeof(ctl)) != 0 || !has_word(ctl, "memory", ' ') || !has_word(ctl, "pids", ' ')) {
        if (!cg_v2_can_enable(dir)) {
            snprintf(pg->cg_why, sizeof(pg->cg_why), "v2: other processes share the worker's cgroup");
            snprintf(pg->cg_fix, sizeof(pg->cg_fix),
                     "give the worker a cgroup of its own: its own systemd unit with Delegate=yes, or "
                     "systemd-run --user -p Delegate=yes --scope airlock worker ...");
            return false;
        }
    }
    if ((e = cg_try_mkdir(dir)) != 0) {
        snprintf(pg->cg_why, sizeof(pg->cg_why), "v2: mkdir: %s", errname(e));
        snprintf(pg->cg_fix, sizeof(pg->cg_fix),
                 "chown the worker's cgroup to its user (systemd: Delegate=yes), or run the worker as root");
        return false;
    }
    return true;
}

static bool cg_v1(struct probe_page *pg)
{
    static const char *const ctrls[] = { "memory", "pids" };
    size_t n = strlen(pg->cg_why);
    char dir[1100];

    for (size_t i = 0; i < AL_ELEMENTSOF(ctrls); i++) {
        int e = cg_dir(ctrls[i], dir, sizeof(dir)) ? cg_try_mkdir(dir) : ENOENT;
        if (e != 0) {
            snprintf(pg->cg_why + n, sizeof(pg->cg_why) - n, "%sv1 %s: %s", n ? ", " : "", ctrls[i],
                     errname(e));
            if (!pg->cg_fix[0])
                snprintf(pg->cg_fix, sizeof(pg->cg_fix),
                         "run the worker as root, or give its user write access to its memory and pids "
                         "cgroups (cgcreate -a/-t), or boot with cgroup v2 and Delegate=yes");
            return false;
        }
    }
    return true;
}

/* As al_cgroup_create decides: v1 when /proc/self/cgroup lists any v1
 * controller it uses, else v2. */
static bool cg_is_v1(void)
{
    static const char *const ctrls[] = { "memory", "pids", "cpu", "freezer" };
    char path[8];

    for (size_t i = 0; i < AL_ELEMENTSOF(ctrls); i++)
        if (cg_path(ctrls[i], path, sizeof(path)))
            return true;
    return false;
}

static void feature_child(struct probe_page *pg, bool cgroups)
{
    probe_seccomp(pg);
    probe_fds(pg);
    pg->landlock_abi = al_landlock_abi();
    if (cgroups)
        pg->cgroup_version = cg_is_v1() ? (cg_v1(pg) ? 1 : 0) : cg_v2(pg) ? 2 : 0;
    _exit(0);
}

/* ---- the parent: run, derive, explain ------------------------------------ */

static pid_t spawn(void (*fn)(struct probe_page *, bool), struct probe_page *pg, bool arg)
{
    pid_t pid = fork();
    if (pid == 0)
        fn(pg, arg);
    return pid;
}

static void ns_child_fn(struct probe_page *pg, bool unused)
{
    ns_child(pg);
}

/* Appends item to a "; "-separated list unless it is there already or
 * would not fit whole (the lists are bounded; the first reasons matter). */
static void list_add(char *buf, size_t size, const char *item)
{
    size_t n = strlen(buf), m = strlen(item);

    if (strstr(buf, item) || n + (n ? 2 : 0) + m >= size)
        return;
    snprintf(buf + n, size - n, "%s%s", n ? "; " : "", item);
}

static bool sysctl_is(const char *path, const char *want)
{
    char v[32] = "";

    if (read_small(path, v, sizeof(v)) != 0)
        return false;
    v[strcspn(v, "\n")] = '\0';
    return strcmp(v, want) == 0;
}

/* The fix for namespaces that the kernel or a container refuses: the
 * host's own switch when one is off (exact), else the container's. */
static void fix_namespaces(struct al_probe *p, const struct probe_page *pg)
{
    static const struct { const char *path, *off, *fix; } switches[] = {
        { "/proc/sys/kernel/unprivileged_userns_clone", "0",
          "sysctl -w kernel.unprivileged_userns_clone=1" },
        { "/proc/sys/user/max_user_namespaces", "0", "sysctl -w user.max_user_namespaces=15000" },
        { "/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1",
          "Ubuntu: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor "
          "profile with 'userns,' for the airlock binary" },
    };
    const char *fix = NULL;

    for (size_t i = 0; i < AL_ELEMENTSOF(switches); i++)
        if (sysctl_is(switches[i].path, switches[i].off)) {
            list_add(p->fixes, sizeof(p->fixes), switches[i].fix);
            fix = switches[i].fix;
        }
    if (fix)
        return;
    if (secure_getenv("KUBERNETES_SERVICE_HOST"))
        fix = "k8s: securityContext.seccompProfile.type: Unconfined and appArmorProfile.type: "
              "Unconfined, or hostUsers: false";
    else if (pg->seccomp_mode == 2 || access("/.dockerenv", F_OK) == 0 ||
             access("/run/.containerenv", F_OK) == 0)
        fix = "container: docker/podman run --security-opt seccomp=unconfined --security-opt "
              "apparmor=unconfined";
    else
        fix = "allow unprivileged user namespaces (sysctl -w user.max_user_namespaces=15000), or "
              "run the worker as root";
    list_add(p->fixes, sizeof(p->fixes), fix);
}

static void explain_ns(struct al_probe *p, const struct probe_page *pg)
{
    char m[64];
    bool need_fix = false;

    for (int i = 0; i < _NS_STEP_MAX; i++) {
        int e = pg->ns[i];
        if (e == 0 || e == NOT_TRIED)
            continue;
        snprintf(m, sizeof(m), "%s: %s%s", ns_step_name[i], errname(e),
                 i == NS_USER && p->root ? " (root: host namespaces used)" : "");
        list_add(p->missing, sizeof(p->missing), m);
        if (i == NS_PROC)
            list_add(p->fixes, sizeof(p->fixes),
                     "/proc is masked: k8s securityContext.procMount: Unmasked (with hostUsers: false); "
                     "docker --security-opt systempaths=unconfined");
        else if (i == NS_LO)
            list_add(p->fixes, sizeof(p->fixes),
                     "Ubuntu: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (AppArmor "
                     "denies RTM_NEWADDR), or run the worker as root");
        else
            need_fix = true;
    }
    if (need_fix)
        fix_namespaces(p, pg);
}

static void explain_features(struct al_probe *p, const struct probe_page *pg)
{
    char m[96];

    if (!p->seccomp) {
        snprintf(m, sizeof(m), "seccomp: %s", errname(pg->seccomp_mode < 0 ? -pg->seccomp_mode
                                                                          : pg->seccomp_avail));
        list_add(p->missing, sizeof(p->missing), m);
        list_add(p->fixes, sizeof(p->fixes), "a kernel with CONFIG_SECCOMP_FILTER=y");
    }
    if (p->landlock_abi == 0) {
        list_add(p->missing, sizeof(p->missing), "landlock: unavailable");
        list_add(p->fixes, sizeof(p->fixes),
                 "kernel >= 5.13 with CONFIG_SECURITY_LANDLOCK=y and landlock in lsm= (kernel "
                 "command line, e.g. lsm=landlock,lockdown,yama,apparmor,bpf)");
    }
    if (!p->openat2) {
        snprintf(m, sizeof(m), "openat2: %s", errname(pg->openat2));
        list_add(p->missing, sizeof(p->missing), m);
        list_add(p->fixes, sizeof(p->fixes), "kernel >= 5.6 for openat2 (file tools walk per component)");
    }
    if (!p->pidfd) {
        snprintf(m, sizeof(m), "pidfd_open: %s", errname(pg->pidfd));
        list_add(p->missing, sizeof(p->missing), m);
        list_add(p->fixes, sizeof(p->fixes), "kernel >= 5.3 for pidfd_open");
    }
}

static void explain_cgroups(struct al_probe *p, const struct probe_page *pg, bool disabled)
{
    char m[160];

    if (p->cgroup_writable)
        return;
    if (disabled) {
        list_add(p->missing, sizeof(p->missing), "cgroup: disabled by AIRLOCK_SANDBOX_NO_CGROUPS");
        list_add(p->fixes, sizeof(p->fixes), "unset AIRLOCK_SANDBOX_NO_CGROUPS");
        return;
    }
    snprintf(m, sizeof(m), "cgroup: not writable (%s)", pg->cg_why);
    list_add(p->missing, sizeof(p->missing), m);
    list_add(p->fixes, sizeof(p->fixes),
             pg->cg_fix[0] ? pg->cg_fix : "run the worker as root, or delegate a cgroup v2 subtree");
}

static void copy_results(struct al_probe *p, const struct probe_page *pg)
{
    bool *const ns[_NS_STEP_MAX] = {
        [NS_USER] = &p->userns, [NS_MNT] = &p->mntns, [NS_NET] = &p->netns, [NS_IPC] = &p->ipcns,
        [NS_UTS] = &p->utsns, [NS_CGROUP] = &p->cgroupns, [NS_PID] = &p->pidns,
        [NS_PROC] = &p->proc_mount, [NS_LO] = &p->lo_up,
    };

    for (int i = 0; i < _NS_STEP_MAX; i++)
        if (ns[i])
            *ns[i] = pg->ns[i] == 0;
    p->userns = p->userns && pg->ns[NS_IDMAP] == 0;
    p->seccomp = pg->seccomp_mode >= 0 && pg->seccomp_avail == 0;
    p->openat2 = pg->openat2 == 0;
    p->pidfd = pg->pidfd == 0;
    p->landlock_abi = pg->landlock_abi;
    p->cgroup_version = pg->cgroup_version;
    p->cgroup_writable = pg->cgroup_version > 0;
}

static enum al_isolation derive(const struct al_probe *p)
{
    bool ns = (p->userns || p->root) && p->mntns && p->pidns && p->netns && p->ipcns && p->utsns &&
              p->cgroupns && p->proc_mount && p->lo_up;

    if (ns)
        return p->cgroup_writable ? AL_ISO_A : AL_ISO_B;
    return p->seccomp && p->landlock_abi > 0 ? AL_ISO_C : AL_ISO_D;
}

static void apply_force(struct al_probe *p)
{
    const char *f = secure_getenv("AIRLOCK_SANDBOX_FORCE_LEVEL");
    enum al_isolation l;
    char m[96];

    if (!f || !*f)
        return;
    if (al_isolation_parse(f, &l) < 0) {
        list_add(p->missing, sizeof(p->missing), "AIRLOCK_SANDBOX_FORCE_LEVEL: not A-D, ignored");
        return;
    }
    p->forced = true;
    p->forced_level = l;
    if (l < p->level) {
        snprintf(m, sizeof(m), "level: capped at %s by AIRLOCK_SANDBOX_FORCE_LEVEL", al_isolation_name(l));
        list_add(p->missing, sizeof(p->missing), m);
        list_add(p->fixes, sizeof(p->fixes), "unset AIRLOCK_SANDBOX_FORCE_LEVEL");
        p->level = l;
    }
}

static bool env_true(const char *name)
{
    const char *v = secure_getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

void al_probe_run(struct al_probe *p)
{
    bool no_cg = env_true("AIRLOCK_SANDBOX_NO_CGROUPS");
    struct probe_page *pg;
    pid_t a, b;

    *p = (struct al_probe){ .root = geteuid() == 0 };
    pg = mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pg == MAP_FAILED) {
        list_add(p->missing, sizeof(p->missing), "probe: mmap failed");
        p->level = AL_ISO_D;
        return;
    }
    for (int i = 0; i < _NS_STEP_MAX; i++)
        pg->ns[i] = NOT_TRIED;
    pg->ns[NS_USER] = pg->seccomp_avail = pg->openat2 = pg->pidfd = ECHILD;

    a = spawn(ns_child_fn, pg, false);
    b = spawn(feature_child, pg, !no_cg);
    if (a > 0)
        (void) waitpid(a, NULL, 0);
    if (b > 0)
        (void) waitpid(b, NULL, 0);

    copy_results(p, pg);
    explain_ns(p, pg);
    explain_features(p, pg);
    explain_cgroups(p, pg, no_cg);
    p->level = derive(p);
    apply_force(p);
    (void) munmap(pg, sizeof(*pg));
}

/* A "; "-separated list as a JSON array of strings; NULL on OOM. */
static json_t *list_json(const char *s)
{
    json_t *a = json_array();

    while (a && *s) {
        const char *e = strstr(s, "; ");
        size_t n = e ? (size_t) (e - s) : strlen(s);
        if (json_array_append_new(a, json_stringn(s, n)) < 0) {
            json_decref(a);
            return NULL;
        }
        s += n + (e ? 2 : 0);
    }
    return a;
}

char *al_probe_json(const struct al_probe *p)
{
    struct utsname u;
    json_t *missing = list_json(p->missing), *fixes = list_json(p->fixes), *o;
    char *s;

    if (uname(&u) < 0)
        snprintf(u.release, sizeof(u.release), "unknown");
    if (!missing || !fixes) {
        json_decref(missing);
        json_decref(fixes);
        return NULL;
    }
    o = json_pack("{s:s, s:{s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:i, s:i},"
                  " s:o, s:o, s:s, s:b, s:s?}",
                  "level", al_isolation_name(p->level),
                  "features",
                  "userns", p->userns, "mntns", p->mntns, "pidns", p->pidns, "netns", p->netns,
                  "ipcns", p->ipcns, "utsns", p->utsns, "cgroupns", p->cgroupns,
                  "proc_mount", p->proc_mount, "lo_up", p->lo_up, "seccomp", p->seccomp,
                  "openat2", p->openat2, "pidfd", p->pidfd, "cgroup_writable", p->cgroup_writable,
                  "landlock_abi", p->landlock_abi, "cgroup_version", p->cgroup_version,
                  "missing", missing, "fixes", fixes, "kernel", u.release, "root", p->root,
                  "forced", p->forced ? al_isolation_name(p->forced_level) : NULL);
    if (!o)
        return NULL;
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
