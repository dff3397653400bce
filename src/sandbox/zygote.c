/* SPDX-License-Identifier: Apache-2.0 */
/* The runner zygote and its client (zygote.h). */
#include "zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- the zygote ----------------------------------------------------------- */

int al_zygote_split_args(char *msg, size_t len, char *argv[AL_ZYGOTE_MAX_ARGS + 1])
{
    int argc = 0;

    if (len == 0 || msg[len - 1] != '\0')
        return -1;
    for (size_t i = 0; i < len; i += strlen(msg + i) + 1) {
        if (argc == AL_ZYGOTE_MAX_ARGS)
            return -1;
        argv[argc++] = msg + i;
    }
    argv[argc] = NULL;
    return argc;
}

/* The one descriptor of a request, or -1 when there is not exactly one
 * (any others are closed). */
static int take_fd(struct msghdr *mh)
{
    int fd = -1, n = 0;

    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int x;
            memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(x));
            if (n++ == 0)
                fd = x;
            else
                (void) close(x);
        }
    }
    if (n != 1 && fd >= 0) {
        (void) close(fd);
        fd = -1;
    }
    return fd;
}

/* In the new runner: the state posix_spawn would have given it (fd 3 the
 * session's socket and nothing above it, its own process group, no blocked
 * signals, default dispositions). */
static void child_state(int fd, int extra_fd, char *mark)
{
    static const char runner[] = "--runner";
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigset_t none;

    if (mark && strlen(mark) == sizeof(runner) - 1)
        memcpy(mark, runner, sizeof(runner) - 1);

    if (fd != 3) {
        if (dup2(fd, 3) < 0)
            _exit(127);
        (void) close(fd);
    } else if (fcntl(3, F_SETFD, 0) < 0) {
        _exit(127);
    }
    /* fd 4 is the extra descriptor, argv has room for its flag (serve). */
    if (extra_fd >= 0 && extra_fd != 4) {
        if (dup3(extra_fd, 4, O_CLOEXEC) < 0)
            _exit(127);
        (void) close(extra_fd);
    }
    (void) close_range(extra_fd >= 0 ? 5 : 4, ~0U, 0);
    (void) setpgid(0, 0);
    /* The zygote reset every disposition at its start and changed only
     * SIGPIPE's since (al_zygote_serve): one call, not one per signal. */
    sigemptyset(&dfl.sa_mask);
    (void) sigaction(SIGPIPE, &dfl, NULL);
    sigemptyset(&none);
    (void) sigprocmask(SIG_SETMASK, &none, NULL);
}

static void reply(int sock, int32_t v)
{
    while (send(sock, &v, sizeof(v), MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

int al_zygote_serve(int sock, char *mark, const struct al_zygote_extra *extra, struct al_zygote_runner *runner)
{
    static char four[] = "4";
    static char msg[AL_ZYGOTE_MAX_MSG + 1];
    /* Static: a runner returns with them (its own copy after the fork). */
    static char *argv[AL_ZYGOTE_MAX_ARGS + 3];
    struct sigaction ign = { .sa_handler = SIG_IGN };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    pid_t parent = getppid();

    /* Gone with the worker, whose socket end it also watches. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
        return 1;
    runner->argc = 0;
    runner->argv = NULL;
    /* Default dispositions once, whatever we were started with (an ignored
     * SIGHUP under nohup, say), so each runner only has SIGPIPE to reset. */
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void) sigaction(sig, &dfl, NULL);
    sigemptyset(&ign.sa_mask);
    (void) sigaction(SIGPIPE, &ign, NULL);
    if (extra && extra->after && extra->after(extra->ud) < 0)
        return 1;
    bool due = false;       /* a request was served since after() last ran */
    for (;;) {
        if (due && extra && extra->after) {
            struct pollfd p = { .fd = sock, .events = POLLIN };
            int k = poll(&p, 1, extra->idle_ms);
            if (k < 0 && errno == EINTR)
                continue;
            if (k == 0) {
                due = false;
                if (extra->after(extra->ud) < 0)
                    return 1;
            }
        }
        struct iovec iov = { .iov_base = msg, .iov_len = AL_ZYGOTE_MAX_MSG };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf) };
        ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        int argc, fd, xfd = -1;
        pid_t pid;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? 0 : 1;
        due = true;
        fd = take_fd(&mh);
        argc = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? -1 : al_zygote_split_args(msg, (size_t) n, argv);
        if (fd < 0 || argc < 1) {
            if (fd >= 0)
                (void) close(fd);
            reply(sock, -EINVAL);
            continue;
        }
        if (extra && extra->take && extra->flag && (xfd = extra->take(extra->ud, argc, argv)) >= 0) {
            argv[argc++] = (char *) extra->flag;
            argv[argc++] = four;
            argv[argc] = NULL;
        }
        /* A fork whose parent is the worker; the zygote never has children
         * of its own. Single-threaded, so the raw syscall is safe (as in
         * ns.c). */
#if defined(__s390__) || defined(__CRIS__)
        pid = (pid_t) syscall(SYS_clone, NULL, CLONE_PARENT | SIGCHLD);
#else
        pid = (pid_t) syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL);
#endif
        if (pid == 0) {
            (void) close(sock);
            child_state(fd, xfd, mark);
            runner->argc = argc;
            runner->argv = argv;
            return 0;
        }
        int err = errno;
        /* Nothing of this session stays in the zygote. */
        explicit_bzero(msg, (size_t) n);
        (void) close(fd);
        if (xfd >= 0)
            (void) close(xfd);
        reply(sock, pid < 0 ? -err : (int32_t) pid);
    }
}

/* ---- the client ----------------------------------------------------------- */

int al_zygote_spawn(int sock, char *const argv[], int fd, int timeout_ms, pid_t *ret_pid)
{
    char msg[AL_ZYGOTE_MAX_MSG];
    size_t len = 0;
    int argc = 0;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
    struct cmsghdr *c;
    struct pollfd p = { .fd = sock, .events = POLLIN };
    int32_t v;
    ssize_t n;

    for (; argv[argc]; argc++) {
        size_t k = strlen(argv[argc]) + 1;
        if (argc == AL_ZYGOTE_MAX_ARGS || k > sizeof(msg) - len)
            return -E2BIG;
        memcpy(msg + len, argv[argc], k);
        len += k;
    }
    if (argc == 0)
        return -EINVAL;
    iov.iov_base = msg;
    iov.iov_len = len;
    memset(&ctl, 0, sizeof(ctl));
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        break;
    }
    do
        n = recv(sock, &v, sizeof(v), MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n != (ssize_t) sizeof(v))
        return -ECONNRESET;
    if (v <= 0)
        return v < 0 ? (int) v : -EIO;
    *ret_pid = (pid_t) v;
    return 0;
}
