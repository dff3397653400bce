/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/sandbox/cgroup.c on this host's real cgroups: limits
 * that bite (pids.max → EAGAIN, memory → OOM kill), destroy killing a
 * setsid escapee and leaving no directory, a stale directory being
 * replaced, and the v2 kill path on any writable cgroup2 mount (here the
 * controller-less /sys/fs/cgroup/unified of a v1 host). Skipped when
 * cgroups are not writable, unless AL_SANDBOX_MUST_WORK=1 (or
 * AIRLOCK_SANDBOX_MUST_WORK=1). Children only _exit(): no cmocka, no LSan
 * in them. This process is a subreaper, so escapees re-parent to it. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "al_test.h"
#include "src/sandbox/cgroup.c"   /* static v2 helpers, for the cgroup2 test */

#define MIB (1024 * 1024)

static bool must_work(void)
{
    const char *a = getenv("AL_SANDBOX_MUST_WORK"), *b = getenv("AIRLOCK_SANDBOX_MUST_WORK");
    return (a && strcmp(a, "1") == 0) || (b && strcmp(b, "1") == 0);
}

/* A session id unique to this process and test. */
static void sid_make(char buf[static 48], const char *tag)
{
    (void) snprintf(buf, 48, "t%d-%s", (int) getpid(), tag);
}

static struct al_cgroup *create_or_skip(const char *tag, const struct al_sandbox_limits *l)
{
    char sid[48], why[AL_SANDBOX_WHY];
    int err = 0;

    sid_make(sid, tag);
    int64_t t0 = al_mono_us();
    struct al_cgroup *cg = al_cgroup_create(sid, l, &err, why);
    int64_t dt = al_mono_us() - t0;
    if (!cg && must_work())
        fail_msg("cgroup not writable but AL_SANDBOX_MUST_WORK=1: %s (%d)", why, err);
    if (!cg) {
        print_message("skipped: %s (%d)\n", why, err);
        skip();
    }
    print_message("create %s: %lld us (%s)\n", sid, (long long) dt, why);
    return cg;
}

static int destroy_timed(struct al_cgroup *cg)
{
    int64_t t0 = al_mono_us();
    int r = al_cgroup_destroy(cg);
    print_message("destroy: %lld us\n", (long long) (al_mono_us() - t0));
    return r;
}

/* fork(); the child joins cg and runs fn, which ends in _exit(). */
static pid_t spawn_in(const struct al_cgroup *cg, void (*fn)(int), int arg)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);                      /* a bound should anything hang */
        if (al_cgroup_join(al_cgroup_procs_paths(cg)) < 0)
            _exit(90);
        fn(arg);
        _exit(91);
    }
    return pid;
}

static int wait_status(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* ---- session id ------------------------------------------------------------- */

static void test_session_id_rejected(void **state)
{
    const char *bad[] = { "", "..", "a/b", "../x", "a b", "x\n", "ü",
                          "0123456789012345678901234567890123456789012345678901234567890123456789" };
    char why[AL_SANDBOX_WHY];
    int err;

    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        assert_null(al_cgroup_create(bad[i], NULL, &err, why));
        ASSERT_RET(err, -EINVAL);
    }
    assert_true(session_id_ok("sesn_01JXYZ-abc"));
    assert_int_equal(al_cgroup_destroy(NULL), 0);
    assert_int_equal(al_cgroup_oom_kills(NULL), 0);
    assert_null(al_cgroup_procs_paths(NULL)[0]);
}

/* ---- pids.max ----------------------------------------------------------------- */

struct forks { int ok, eagain, other; };

/* Tries 100 forks; the children wait on a pipe, then all are released. */
static void fork_many(int out)
{
    struct forks f = { 0 };
    int p[2];

    if (pipe2(p, O_CLOEXEC) < 0)
        _exit(92);
    for (int i = 0; i < 100; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10);
            (void) close(p[1]);
            char c;
            _exit(read(p[0], &c, 1) < 0 ? 1 : 0);
        }
        if (pid > 0)
            f.ok++;
        else if (errno == EAGAIN)
            f.eagain++;
        else
            f.other++;
    }
    (void) close(p[1]);
    while (wait(NULL) > 0)
        ;
    _exit(write(out, &f, sizeof(f)) == (ssize_t) sizeof(f) ? 0 : 93);
}

static void test_pids_max(void **state)
{
    struct al_sandbox_limits l = { .pids_max = 16, .memory_max = 64 * MIB, .cpu_pct = 100 };
    struct al_cgroup *cg = create_or_skip("pids", &l);
    struct forks f = { 0 };
    int p[2];

    if (cg->at[CG_PIDS] < 0) {
        assert_int_equal(al_cgroup_destroy(cg), 0);
        skip();
    }
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = spawn_in(cg, fork_many, p[1]);
    (void) close(p[1]);
    int st = wait_status(pid);
    ASSERT_I64_EQ(read(p[0], &f, sizeof(f)), sizeof(f));
    (void) close(p[0]);
    assert_true(WIFEXITED(st));
    ASSERT_I64_EQ(WEXITSTATUS(st), 0);
    print_message("forks: %d ok, %d EAGAIN, %d other\n", f.ok, f.eagain, f.other);
    ASSERT_I64_EQ(f.other, 0);
    assert_true(f.ok <= 15);            /* 16 tasks including the forker */
    assert_true(f.eagain >= 85);
    ASSERT_OK(destroy_timed(cg));
}

/* ---- memory ---------------------------------------------------------------------- */

/* Plain mmap and one store per page: no malloc, so ASan stays out of it. */
static void touch_200m(int unused)
{
    size_t sz = 200 * (size_t) MIB;
    char *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (m == MAP_FAILED)
        _exit(94);
    for (size_t o = 0; o < sz; o += 4096)
        ((volatile char *) m)[o] = 1;
    _exit(0);
}

static void test_memory_oom(void **state)
{
    struct al_sandbox_limits l = { .pids_max = 16, .memory_max = 64 * MIB };
    struct al_cgroup *cg = create_or_skip("oom", &l);

    if (cg->at[CG_MEM] < 0) {
        assert_int_equal(al_cgroup_destroy(cg), 0);
        skip();
    }
    ASSERT_I64_EQ(al_cgroup_oom_kills(cg), 0);
    int st = wait_status(spawn_in(cg, touch_200m, 0));
    if (!WIFSIGNALED(st))
        fail_msg("child exited %d instead of being OOM-killed", WEXITSTATUS(st));
    ASSERT_I64_EQ(WTERMSIG(st), SIGKILL);
    assert_true(al_cgroup_oom_kills(cg) >= 1);
    ASSERT_OK(destroy_timed(cg));
}

/* ---- destroy ------------------------------------------------------------------------ */

/* Starts a setsid grandchild that reports its pid and would outlive us. */
static void escape(int out)
{
    pid_t gc = fork();

    if (gc == 0) {
        alarm(10);                      /* SIGALRM, not SIGKILL, if destroy misses it */
        (void) setsid();
        pid_t me = getpid();
        if (write(out, &me, sizeof(me)) != (ssize_t) sizeof(me))
            _exit(96);
        for (;;)
            pause();
    }
    _exit(gc > 0 ? 0 : 95);
}

/* Runs escape() in cg, destroys cg, and checks that the grandchild died of
 * SIGKILL and that the session's directories are gone. */
static void destroy_kills_escapee(struct al_cgroup *cg)
{
    char dirs[_CG_CTRL_MAX][PATH_MAX];
    size_t n = cg->n;
    pid_t gc = 0;
    int p[2];

    for (size_t i = 0; i < n; i++)
        (void) snprintf(dirs[i], sizeof(dirs[i]), "%s", cg->dir[i]);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    int st = wait_status(spawn_in(cg, escape, p[1]));
    (void) close(p[1]);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ASSERT_I64_EQ(read(p[0], &gc, sizeof(gc)), sizeof(gc));
    (void) close(p[0]);
    ASSERT_I64_EQ(waitpid(gc, &st, WNOHANG), 0);    /* outlived its parent */

    ASSERT_OK(destroy_timed(cg));
    st = wait_status(gc);
    assert_true(WIFSIGNALED(st));
    ASSERT_I64_EQ(WTERMSIG(st), SIGKILL);
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        ASSERT_RET(stat(dirs[i], &sb) < 0 ? -errno : 0, -ENOENT);
    }
}

static void test_destroy_kills_setsid_escapee(void **state)
{
    struct al_sandbox_limits l = { .pids_max = 16, .memory_max = 64 * MIB };

    destroy_kills_escapee(create_or_skip("esc", &l));
}

/* A crashed worker's directory with a process still inside: a new session
 * with the same id kills it and starts empty. */
static void test_stale_directory_replaced(void **state)
{
    struct al_cgroup *old = create_or_skip("stale", NULL);
    char sid[48], why[AL_SANDBOX_WHY];
    pid_t gc = 0;
    int p[2], err;

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    (void) wait_status(spawn_in(old, escape, p[1]));
    (void) close(p[1]);
    ASSERT_I64_EQ(read(p[0], &gc, sizeof(gc)), sizeof(gc));
    (void) close(p[0]);
    cg_free(old);                       /* the "crash": directories stay */

    sid_make(sid, "stale");
    struct al_cgroup *cg = al_cgroup_create(sid, NULL, &err, why);
    assert_non_null(cg);
    int st = wait_status(gc);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    ASSERT_OK(al_cgroup_destroy(cg));
}

/* ---- cgroup v2 --------------------------------------------------------------------- */

/* The v2 path (cgroup.kill, cgroup.events, rmdir) on whatever cgroup2
 * mount holds this process, without requiring controllers: on a v1 host
 * that is the empty unified hierarchy, on a v2 host the real one. */
static void test_v2_kill_path(void **state)
{
    char text[8192], own[PATH_MAX], base[PATH_MAX], sid[48], why[AL_SANDBOX_WHY] = "";

    assert_true(file_read("/proc/self/cgroup", NULL, text, sizeof(text)) > 0);
    if (own_path(text, NULL, own, sizeof(own)) < 0 || hier_dir("cgroup2", NULL, own, NULL, base, sizeof(base)) < 0)
        skip();
    struct al_cgroup *cg = cg_new(2);
    sid_make(sid, "v2");
    int r = v2_create(cg, base, sid, 0, why);
    if (r < 0) {
        cg_free(cg);
        print_message("skipped: %s\n", why);
        skip();
        return;                         /* skip() longjmps; for the analyzer */
    }
    print_message("v2 at %s\n", cg->dir[0]);
    destroy_kills_escapee(cg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_id_rejected),
        cmocka_unit_test(test_pids_max),
        cmocka_unit_test(test_memory_oom),
        cmocka_unit_test(test_destroy_kills_setsid_escapee),
        cmocka_unit_test(test_stale_directory_replaced),
        cmocka_unit_test(test_v2_kill_path),
    };

    (void) prctl(PR_SET_CHILD_SUBREAPER, 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
