/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/sandbox/limits.c: isolation-level names, the §5.4
 * defaults, and the rlimits read back with getrlimit() in a forked child
 * (they cannot be raised again, and RLIMIT_DATA would starve ASan here). */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "al_test.h"
#include "src/sandbox/sandbox.h"

#define MIB ((int64_t) 1 << 20)
#define GIB ((int64_t) 1 << 30)

static void test_isolation_names(void **state)
{
    static const struct {
        const char *s;
        enum al_isolation l;
    } ok[] = {
        { "A", AL_ISO_A }, { "b", AL_ISO_B }, { "C", AL_ISO_C }, { "d", AL_ISO_D },
    };
    enum al_isolation l = AL_ISO_B;

    for (size_t i = 0; i < AL_ELEMENTSOF(ok); i++) {
        ASSERT_OK(al_isolation_parse(ok[i].s, &l));
        ASSERT_I64_EQ(l, ok[i].l);
    }
    ASSERT_STR_EQ(al_isolation_name(AL_ISO_A), "A");
    ASSERT_STR_EQ(al_isolation_name(AL_ISO_B), "B");
    ASSERT_STR_EQ(al_isolation_name(AL_ISO_C), "C");
    ASSERT_STR_EQ(al_isolation_name(AL_ISO_D), "D");
    ASSERT_STR_EQ(al_isolation_name((enum al_isolation) 9), "?");

    l = AL_ISO_B;
    ASSERT_RET(al_isolation_parse("E", &l), -EINVAL);
    ASSERT_RET(al_isolation_parse("", &l), -EINVAL);
    ASSERT_RET(al_isolation_parse("AA", &l), -EINVAL);
    ASSERT_RET(al_isolation_parse(" A", &l), -EINVAL);
    ASSERT_RET(al_isolation_parse(NULL, &l), -EINVAL);
    ASSERT_I64_EQ(l, AL_ISO_B);    /* untouched on failure */
}

static void test_defaults(void **state)
{
    struct al_sandbox_limits l;

    memset(&l, 0xa5, sizeof(l));
    al_sandbox_limits_default(&l);
    ASSERT_I64_EQ(l.memory_max, 2 * GIB);
    ASSERT_I64_EQ(l.pids_max, 512);
    ASSERT_I64_EQ(l.cpu_pct, 100);
    ASSERT_I64_EQ(l.nofile, 4096);
    ASSERT_I64_EQ(l.fsize, 1 * GIB);
    ASSERT_I64_EQ(l.tmp_size, 512 * MIB);
    ASSERT_I64_EQ(l.tmp_inodes, 65536);
}

enum { NOFILE, FSIZE, CORE, MEMLOCK, MSGQUEUE, NPROC, DATA, _N };
static const int resources[_N] = {
    RLIMIT_NOFILE, RLIMIT_FSIZE, RLIMIT_CORE, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, RLIMIT_NPROC, RLIMIT_DATA,
};

struct readback {
    int64_t r;
    struct rlimit before[_N], after[_N];
};

/* In a child: optionally lower the NOFILE hard limit first, apply, and read
 * everything back. */
static struct readback apply_in_child(const struct al_sandbox_limits *l, bool per_uid, rlim_t nofile_hard_first)
{
    struct readback rb;
    int p[2], st;
    pid_t pid;

    memset(&rb, 0, sizeof(rb));
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char why[AL_SANDBOX_WHY] = "";
        if (nofile_hard_first) {
            struct rlimit nf = { nofile_hard_first, nofile_hard_first };
            if (setrlimit(RLIMIT_NOFILE, &nf) < 0)
                _exit(3);
        }
        for (int i = 0; i < _N; i++)
            (void) getrlimit(resources[i], &rb.before[i]);
        rb.r = al_rlimits_apply(l, per_uid, why);
        for (int i = 0; i < _N; i++)
            (void) getrlimit(resources[i], &rb.after[i]);
        _exit(write(p[1], &rb, sizeof(rb)) == (ssize_t) sizeof(rb) ? 0 : 2);
    }
    (void) close(p[1]);
    ASSERT_I64_EQ(read(p[0], &rb, sizeof(rb)), sizeof(rb));
    (void) close(p[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    ASSERT_I64_EQ(WEXITSTATUS(st), 0);
    return rb;
}

#define ASSERT_LIMIT(rl, soft, hard)                  \
    do {                                              \
        ASSERT_I64_EQ((rl).rlim_cur, (int64_t) (soft)); \
        ASSERT_I64_EQ((rl).rlim_max, (int64_t) (hard)); \
    } while (0)

static void test_apply_defaults(void **state)
{
    struct al_sandbox_limits l;
    struct readback rb;

    al_sandbox_limits_default(&l);
    rb = apply_in_child(&l, true, 0);
    ASSERT_OK(rb.r);
    /* The host's hard NOFILE is above 4096 here; elsewhere it only lowers. */
    rlim_t nofile = AL_MIN((rlim_t) 4096, rb.before[NOFILE].rlim_max);
    ASSERT_LIMIT(rb.after[NOFILE], AL_MIN((rlim_t) 1024, nofile), nofile);
    ASSERT_LIMIT(rb.after[FSIZE], GIB, GIB);
    ASSERT_LIMIT(rb.after[CORE], 0, 0);
    ASSERT_LIMIT(rb.after[MEMLOCK], 64 * 1024, 64 * 1024);
    ASSERT_LIMIT(rb.after[MSGQUEUE], 819200, 819200);
    ASSERT_LIMIT(rb.after[NPROC], 512, 512);
    ASSERT_LIMIT(rb.after[DATA], 2 * GIB, 2 * GIB);
}

/* A shared uid: NPROC stays as it was. memory_max = 0 (cgroups enforce
 * memory): DATA stays too. */
static void test_apply_shared_uid_no_backstop(void **state)
{
    struct al_sandbox_limits l;
    struct readback rb;

    al_sandbox_limits_default(&l);
    l.memory_max = 0;
    rb = apply_in_child(&l, false, 0);
    ASSERT_OK(rb.r);
    ASSERT_LIMIT(rb.after[NPROC], rb.before[NPROC].rlim_cur, rb.before[NPROC].rlim_max);
    ASSERT_LIMIT(rb.after[DATA], rb.before[DATA].rlim_cur, rb.before[DATA].rlim_max);
    ASSERT_LIMIT(rb.after[CORE], 0, 0);
}

/* Limits only go down: a host hard limit below ours is kept, and the soft
 * limit follows it. */
static void test_apply_never_raises(void **state)
{
    struct al_sandbox_limits l;
    struct readback rb;

    al_sandbox_limits_default(&l);
    l.memory_max = 0;
    rb = apply_in_child(&l, false, 512);
    ASSERT_OK(rb.r);
    ASSERT_LIMIT(rb.after[NOFILE], 512, 512);

    l.nofile = 300;     /* below the soft cap: soft = hard */
    rb = apply_in_child(&l, false, 0);
    ASSERT_OK(rb.r);
    ASSERT_LIMIT(rb.after[NOFILE], 300, 300);
}

static long long data_probe(void)
{
    struct al_sandbox_limits l = { .memory_max = 64 * MIB };
    char why[AL_SANDBOX_WHY] = "";
    int p[2], st;
    long long got = -1;
    pid_t pid;

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        long long r = al_rlimits_apply(&l, false, why);
        /* A private writable mapping past the limit: refused at mmap time.
         * Not malloc: under ASan that would be the shadow's problem. */
        if (r == 0) {
            void *m = mmap(NULL, (size_t) (128 * MIB), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            r = m == MAP_FAILED ? -errno : 0;
        }
        _exit(write(p[1], &r, sizeof(r)) == (ssize_t) sizeof(r) ? 0 : 2);
    }
    (void) close(p[1]);
    ASSERT_I64_EQ(read(p[0], &got, sizeof(got)), sizeof(got));
    (void) close(p[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return got;
}

/* The DATA backstop bites (that is its point; it also means sanitizer-built
 * programs cannot start under it). */
static void test_data_backstop_bites(void **state)
{
    ASSERT_RET(data_probe(), -ENOMEM);
}

/* Past RLIMIT_FSIZE a write fails (EFBIG) and raises SIGXFSZ, which kills
 * a writer with the default disposition. */
static void test_fsize_kills_writer(void **state)
{
    struct al_sandbox_limits l = { .fsize = 4096 };
    char dir[256], path[300];
    pid_t pid;
    int st;

    al_test_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/f", dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char why[AL_SANDBOX_WHY] = "", buf[8192];
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || al_rlimits_apply(&l, false, why) < 0)
            _exit(2);
        memset(buf, 'x', sizeof(buf));
        if (write(fd, buf, sizeof(buf)) != 4096)      /* partial, up to the limit */
            _exit(3);
        _exit(write(fd, buf, sizeof(buf)) < 0 ? 4 : 5); /* not reached: SIGXFSZ */
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    al_test_rm_rf(dir);
    assert_true(WIFSIGNALED(st));
    ASSERT_I64_EQ(WTERMSIG(st), SIGXFSZ);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolation_names),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_apply_defaults),
        cmocka_unit_test(test_apply_shared_uid_no_backstop),
        cmocka_unit_test(test_apply_never_raises),
        cmocka_unit_test(test_data_backstop_bites),
        cmocka_unit_test(test_fsize_kills_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
