/* SPDX-License-Identifier: Apache-2.0 */
/* sandbox Landlock: in forked children (restricting is irreversible), the
 * rules of al_landlock_apply against the same accesses without them, so a
 * no-op implementation fails: ro paths read and execute but do not write
 * (EACCES, not EROFS), rw paths write, unlisted paths are EACCES, missing
 * paths are skipped, and TCP is untouched unless asked. Skips when the
 * kernel has no Landlock, unless AIRLOCK_SANDBOX_MUST_WORK=1. */
#include "al_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

/* What a child saw: 0 for success, else the errno. */
struct seen {
    int apply, abi;
    int read_env, exec_true, write_usr, write_tmp, devnull, read_unlisted;
    int connect_allowed, connect_other, bind_any;
    char why[AL_SANDBOX_WHY];
};

static char g_dir[256];
static const char *g_unlisted;
static struct seen *g_seen;
static int g_listen_fd = -1;
static uint16_t g_port_open, g_port_closed;

static bool must_work(void)
{
    const char *a = getenv("AIRLOCK_SANDBOX_MUST_WORK"), *b = getenv("AL_SANDBOX_MUST_WORK");
    return (a && strcmp(a, "1") == 0) || (b && strcmp(b, "1") == 0);
}

static int skip_without_landlock(void)
{
    if (al_landlock_abi() > 0)
        return 0;
    if (must_work()) {
        print_error("Landlock unavailable and AIRLOCK_SANDBOX_MUST_WORK=1\n");
        _fail(__FILE__, __LINE__);
    }
    skip();
    return 0;
}

static int try_open(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    char c;
    int e = 0;
    if ((flags & O_ACCMODE) == O_RDONLY && !(flags & O_DIRECTORY) && read(fd, &c, 1) < 0)
        e = errno;
    if ((flags & O_ACCMODE) == O_WRONLY && write(fd, "x", 1) < 0)
        e = errno;
    (void) close(fd);
    return e;
}

static int try_exec(const char *path)
{
    pid_t pid = fork();
    int st;
    if (pid == 0) {
        char *const argv[] = { (char *) path, NULL };
        execv(path, argv);
        _exit(errno == EACCES ? 126 : 127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : WIFEXITED(st) && WEXITSTATUS(st) == 126 ? EACCES : EIO;
}

static int try_tcp(uint16_t port, bool do_bind)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };

    if (fd < 0)
        return errno;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r = do_bind ? bind(fd, (struct sockaddr *) &sa, sizeof(sa)) : connect(fd, (struct sockaddr *) &sa, sizeof(sa));
    r = r < 0 ? errno : 0;
    (void) close(fd);
    return r;
}

/* The accesses, the same with and without rules. */
static void look(struct seen *s)
{
    char p[400];

    s->read_env = try_open("/usr/bin/env", O_RDONLY);
    s->exec_true = try_exec("/usr/bin/true");
    s->write_usr = try_open("/usr/.al-landlock-test", O_WRONLY | O_CREAT | O_EXCL);
    if (s->write_usr == 0)
        (void) unlink("/usr/.al-landlock-test");
    snprintf(p, sizeof(p), "%s/written", g_dir);
    s->write_tmp = try_open(p, O_WRONLY | O_CREAT | O_TRUNC);
    s->devnull = try_open("/dev/null", O_WRONLY);
    s->read_unlisted = try_open(g_unlisted, O_RDONLY | O_DIRECTORY);
    s->connect_allowed = try_tcp(g_port_open, false);
    s->connect_other = try_tcp(g_port_closed, false);
    s->bind_any = try_tcp(0, true);
}

/* Runs look() in a child, after al_landlock_apply when p is not NULL. */
static void run_child(const struct al_landlock_paths *p)
{
    memset(g_seen, 0, sizeof(*g_seen));
    g_seen->apply = -9999;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (p) {
            g_seen->apply = al_landlock_apply(p, &g_seen->abi, g_seen->why);
            if (g_seen->apply < 0)
                _exit(1);
        }
        look(g_seen);
        _exit(0);
    }
    int st;
    assert_true(waitpid(pid, &st, 0) == pid);
    if (g_seen->why[0])
        print_message("why: %s\n", g_seen->why);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_in sa = { 0 };
    socklen_t n = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &n), 0);
    return ntohs(sa.sin_port);
}

static int setup(void **state)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int fd;

    al_test_mkdtemp(g_dir);
    g_unlisted = access("/root", R_OK) == 0 ? "/root" : "/home";
    g_seen = mmap(NULL, sizeof(*g_seen), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(g_seen != MAP_FAILED);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(g_listen_fd >= 0);
    assert_int_equal(bind(g_listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    assert_int_equal(listen(g_listen_fd, 8), 0);
    g_port_open = bound_port(g_listen_fd);
    /* A port nobody listens on: bound, read, closed. */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    g_port_closed = bound_port(fd);
    (void) close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void) munmap(g_seen, sizeof(*g_seen));
    (void) close(g_listen_fd);
    al_test_rm_rf(g_dir);
    return 0;
}

/* Without rules the same accesses succeed, so the checks below can fail. */
static void test_baseline(void **state)
{
    run_child(NULL);
    ASSERT_RET(-g_seen->read_env, 0);
    ASSERT_RET(-g_seen->exec_true, 0);
    ASSERT_RET(-g_seen->write_tmp, 0);
    ASSERT_RET(-g_seen->read_unlisted, 0);
    ASSERT_RET(-g_seen->connect_allowed, 0);
    ASSERT_RET(-g_seen->connect_other, -ECONNREFUSED);
    if (access("/usr", W_OK) == 0)
        ASSERT_RET(-g_seen->write_usr, 0);   /* root on a rw /usr: the rules are what deny */
}

static void test_fs_rules(void **state)
{
    skip_without_landlock();
    const char *ro[] = { "/usr", "/etc", "/nonexistent-al-landlock", NULL };
    const char *rw[] = { g_dir, "/dev/null", NULL };
    struct al_landlock_paths p = { .ro = ro, .rw = rw };

    run_child(&p);
    ASSERT_OK(g_seen->apply);
    assert_true(g_seen->abi >= 1);
    print_message("landlock ABI %d\n", g_seen->abi);
    ASSERT_RET(-g_seen->read_env, 0);
    ASSERT_RET(-g_seen->exec_true, 0);
    ASSERT_RET(-g_seen->write_usr, -EACCES);
    ASSERT_RET(-g_seen->write_tmp, 0);
    ASSERT_RET(-g_seen->devnull, 0);
    ASSERT_RET(-g_seen->read_unlisted, -EACCES);
    /* TCP was not asked for: untouched. */
    ASSERT_RET(-g_seen->connect_allowed, 0);
    ASSERT_RET(-g_seen->connect_other, -ECONNREFUSED);
    ASSERT_RET(-g_seen->bind_any, 0);
}

static void test_tcp_rules(void **state)
{
    skip_without_landlock();
    const char *ro[] = { "/usr", "/etc", NULL };
    const char *rw[] = { g_dir, NULL };
    const uint16_t ports[] = { g_port_open, 0 };
    struct al_landlock_paths p = { .ro = ro, .rw = rw, .restrict_tcp = true, .tcp_connect = ports };

    run_child(&p);
    if (g_seen->abi < 4) {
        ASSERT_RET(g_seen->apply, AL_LANDLOCK_NO_NET);
        ASSERT_RET(-g_seen->read_unlisted, -EACCES);
        return;
    }
    ASSERT_OK(g_seen->apply);
    ASSERT_RET(-g_seen->connect_allowed, 0);
    ASSERT_RET(-g_seen->connect_other, -EACCES);
    ASSERT_RET(-g_seen->bind_any, -EACCES);
    ASSERT_RET(-g_seen->read_unlisted, -EACCES);
}

int main(void)
{
    if (al_landlock_abi() == 0 && !must_work()) {
        fprintf(stderr, "Landlock unavailable: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_baseline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_rules, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
