/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/sandbox/zygote.c: a real zygote (forked from the test,
 * as the worker execs one) serving requests from al_zygote_spawn. Each
 * runner it forks reports what it got (argv, descriptors, parent, process
 * group, signal state) over its fd 3 and exits; bad requests are refused
 * with -EINVAL and leave the zygote serving; the zygote keeps no session
 * descriptor and exits on EOF. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "al_test.h"
#include "src/sandbox/zygote.h"

struct zyg {
    pid_t pid;
    int sock;           /* our end of its SOCK_SEQPACKET socket */
    int extra_r;        /* the read end of the pipe whose write end is "extra" */
};

/* Where the zygote keeps the write end it hands out through the hook. */
#define EXTRA_FD 20
static int extra_w = -1;

/* The extra hook: a dup of a pipe's write end when argv asks for one. */
static int take_extra(void *ud, int argc, char **argv)
{
    (void) ud;
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "want-extra"))
            return fcntl(extra_w, F_DUPFD_CLOEXEC, 10);
    return -1;
}

/* In a runner: one line of facts, to fd 3. */
_Noreturn static void runner_report(int argc, char **argv)
{
    char line[1024];
    int n = 0;
    sigset_t mask;
    struct sigaction sa;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int fds = 0, high = 0;

    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            int fd = (int) strtol(e->d_name, NULL, 10);
            if (fd != dirfd(d)) {
                fds++;
                high = fd > high ? fd : high;
            }
        }
    if (d)
        (void) closedir(d);
    (void) sigprocmask(SIG_SETMASK, NULL, &mask);
    int dfl = 0;
    static const int sigs[] = { SIGPIPE, SIGHUP, SIGUSR1 };
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        dfl += sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler == SIG_DFL;
    n += snprintf(line + n, sizeof(line) - (size_t) n, "ppid=%d pgid_self=%d fds=%d high=%d blocked=%d dfl=%d fd4cloexec=%d argv",
                  (int) getppid(), getpgid(0) == getpid(), fds, high, sigismember(&mask, SIGTERM), dfl,
                  fcntl(4, F_GETFD) == FD_CLOEXEC);
    for (int i = 0; i < argc; i++)
        n += snprintf(line + n, sizeof(line) - (size_t) n, " %s", argv[i]);
    (void) !write(3, line, (size_t) n);
    if (fcntl(4, F_GETFD) >= 0)
        (void) !write(4, "x", 1);
    _exit(0);
}

static void on_usr1(int sig)
{
    (void) sig;
}

static struct zyg start_zygote(void)
{
    struct zyg z = { .sock = -1 };
    int sv[2], p[2];
    sigset_t block;

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    z.pid = fork();
    assert_true(z.pid >= 0);
    if (z.pid == 0) {
        static char mark[] = "--zygote";
        const struct al_zygote_extra extra = { .take = take_extra, .flag = "--extra" };
        struct al_zygote_runner r = { 0 };
        int rc;

        /* Some state a runner must not inherit: a blocked signal, and
         * dispositions the zygote starts with (it resets them once). */
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        (void) sigprocmask(SIG_BLOCK, &block, NULL);
        (void) signal(SIGPIPE, SIG_IGN);
        (void) signal(SIGHUP, SIG_IGN);
        (void) signal(SIGUSR1, on_usr1);
        if (dup2(sv[1], 3) < 0 || dup3(p[1], EXTRA_FD, O_CLOEXEC) < 0)
            _exit(120);
        extra_w = EXTRA_FD;
        (void) close_range(4, EXTRA_FD - 1, 0);
        (void) close_range(EXTRA_FD + 1, ~0U, 0);
        rc = al_zygote_serve(3, mark, &extra, &r);
        if (r.argv)
            runner_report(r.argc, r.argv);
        _exit(rc);
    }
    (void) close(sv[1]);
    (void) close(p[1]);
    z.sock = sv[0];
    z.extra_r = p[0];
    return z;
}

static void stop_zygote(struct zyg *z)
{
    int st = 0;

    (void) close(z->sock);
    assert_int_equal(waitpid(z->pid, &st, 0), z->pid);
    assert_true(WIFEXITED(st));
    ASSERT_I64_EQ(WEXITSTATUS(st), 0);
    (void) close(z->extra_r);
}

/* One runner: its report line, after it exited 0 as our child. */
static void run_one(struct zyg *z, char *const argv[], char *line, size_t cap)
{
    int s[2], st = 0;
    pid_t pid = 0;
    ssize_t n;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
    ASSERT_OK(al_zygote_spawn(z->sock, argv, s[1], 5000, &pid));
    (void) close(s[1]);
    assert_true(pid > 0 && pid != z->pid);
    n = read(s[0], line, cap - 1);
    assert_true(n > 0);
    line[n] = '\0';
    (void) close(s[0]);
    /* CLONE_PARENT: the runner is ours to reap, not the zygote's. */
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_runner_state(void **state)
{
    struct zyg z = start_zygote();
    char *const argv[] = { "sandbox-runner", "--fd", "3", "--workdir", "/w", NULL };
    char line[1024], want[64];

    run_one(&z, argv, line, sizeof(line));
    print_message("%s\n", line);
    (void) snprintf(want, sizeof(want), "ppid=%d ", (int) getpid());
    assert_non_null(strstr(line, want));
    /* fds 0-2 (inherited) and 3, nothing above; its own process group; no
     * blocked signal and default dispositions, unlike the zygote. */
    /* SIGPIPE, SIGHUP and SIGUSR1 are all back to SIG_DFL (dfl=3). */
    assert_non_null(strstr(line, "pgid_self=1 fds=4 high=3 blocked=0 dfl=3 fd4cloexec=0"));
    assert_non_null(strstr(line, "argv sandbox-runner --fd 3 --workdir /w"));
    stop_zygote(&z);
}

static void test_extra_fd(void **state)
{
    struct zyg z = start_zygote();
    char *const argv[] = { "r", "want-extra", NULL };
    char line[1024], c = 0;

    run_one(&z, argv, line, sizeof(line));
    print_message("%s\n", line);
    /* The extra descriptor is fd 4, close-on-exec, announced in argv. */
    assert_non_null(strstr(line, "fds=5 high=4"));
    assert_non_null(strstr(line, "fd4cloexec=1"));
    assert_non_null(strstr(line, "argv r want-extra --extra 4"));
    ASSERT_I64_EQ(read(z.extra_r, &c, 1), 1);
    ASSERT_I64_EQ(c, 'x');
    stop_zygote(&z);
}

/* A raw request: bytes and nfds descriptors. The zygote's int32 reply. */
static int32_t raw_request(int sock, const void *msg, size_t len, int nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } ctl;
    struct iovec iov = { .iov_base = (void *) msg, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    int fds[2] = { -1, -1 };
    int32_t v = 0;

    memset(&ctl, 0, sizeof(ctl));
    if (nfds > 0) {
        for (int i = 0; i < nfds; i++)
            fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE((size_t) nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t) nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t) nfds * sizeof(int));
    }
    assert_true(sendmsg(sock, &mh, 0) == (ssize_t) len);
    for (int i = 0; i < nfds; i++)
        (void) close(fds[i]);
    assert_int_equal(recv(sock, &v, sizeof(v), 0), (ssize_t) sizeof(v));
    return v;
}

/* The zygote's descriptors: 0-3 and the hook's pipe, nothing else. */
static void assert_zygote_fds(pid_t pid)
{
    char path[64], got[256] = "";
    DIR *d;
    struct dirent *e;
    int fds[64], n = 0;

    (void) snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) && n < 64)
        if (e->d_name[0] != '.')
            fds[n++] = (int) strtol(e->d_name, NULL, 10);
    (void) closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (fds[j] < fds[i]) {
                int t = fds[i];
                fds[i] = fds[j], fds[j] = t;
            }
    for (int i = 0, o = 0; i < n; i++)
        o += snprintf(got + o, sizeof(got) - (size_t) o, "%d ", fds[i]);
    assert_string_equal(got, "0 1 2 3 20 ");
}

static void test_bad_requests(void **state)
{
    struct zyg z = start_zygote();
    static const char ok[] = "r\0a";
    static const char unterminated[] = { 'r', 'x' };
    char *const argv[] = { "after", NULL };
    char line[1024];

    ASSERT_I64_EQ(raw_request(z.sock, ok, sizeof(ok), 0), -EINVAL);            /* no descriptor */
    ASSERT_I64_EQ(raw_request(z.sock, ok, sizeof(ok), 2), -EINVAL);            /* two */
    ASSERT_I64_EQ(raw_request(z.sock, unterminated, sizeof(unterminated), 1), -EINVAL);
    assert_zygote_fds(z.pid);
    /* Still serving. */
    run_one(&z, argv, line, sizeof(line));
    assert_non_null(strstr(line, "argv after"));
    assert_zygote_fds(z.pid);
    stop_zygote(&z);
}

static void test_client_limits(void **state)
{
    static char big[AL_ZYGOTE_MAX_MSG + 1];     /* one byte over, with its NUL */
    char *argv[AL_ZYGOTE_MAX_ARGS + 2];
    char *const none[] = { NULL };
    pid_t pid = 0;

    memset(big, 'a', sizeof(big) - 1);
    char *const one[] = { big, NULL };
    /* Refused before anything is sent (the socket is not even valid). */
    ASSERT_I64_EQ(al_zygote_spawn(-1, one, 0, 10, &pid), -E2BIG);
    for (int i = 0; i <= AL_ZYGOTE_MAX_ARGS; i++)
        argv[i] = "x";
    argv[AL_ZYGOTE_MAX_ARGS + 1] = NULL;
    ASSERT_I64_EQ(al_zygote_spawn(-1, argv, 0, 10, &pid), -E2BIG);
    ASSERT_I64_EQ(al_zygote_spawn(-1, none, 0, 10, &pid), -EINVAL);
}

static void test_gone_zygote(void **state)
{
    struct zyg z = start_zygote();
    char *const argv[] = { "r", NULL };
    int s[2], st;
    pid_t pid = 0;

    assert_int_equal(kill(z.pid, SIGKILL), 0);
    assert_int_equal(waitpid(z.pid, &st, 0), z.pid);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
    int r = al_zygote_spawn(z.sock, argv, s[1], 2000, &pid);
    assert_true(r == -EPIPE || r == -ECONNRESET || r == -ECONNREFUSED);
    (void) close(s[0]);
    (void) close(s[1]);
    (void) close(z.sock);
    (void) close(z.extra_r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runner_state),
        cmocka_unit_test(test_extra_fd),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_client_limits),
        cmocka_unit_test(test_gone_zygote),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
