/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock up`'s children: the hub, the worker, the relay, the gateway and
 * the demo MCP server (this binary, exec'd in a process group of their own
 * so that a terminal's Ctrl-C reaches only us and we stop them in order)
 * and the demo's timeline (forked, since a blocking
 * SSE read cannot be interrupted otherwise). Signals are read from a
 * signalfd; nothing here installs a handler. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../lib/base/util.h"
#include "cli-internal.h"
#include "up-internal.h"

extern char **environ;

#define UP_LOG_TAIL_MAX (64u << 10)    /* bytes of a child's log read back for a diagnosis */

static void stop_set(sigset_t *s)
{
    sigemptyset(s);
    sigaddset(s, SIGINT);
    sigaddset(s, SIGTERM);
    sigaddset(s, SIGCHLD);
}

int up_signals_open(struct up *u)
{
    sigset_t s;

    stop_set(&s);
    if (sigprocmask(SIG_BLOCK, &s, NULL) < 0)
        return -errno;
    u->sigfd = signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK);
    return u->sigfd < 0 ? -errno : 0;
}

/* In a new child: undo what we changed in this process, and make sure the
 * child goes when we go. Returns < 0 when it must not run on. */
static int child_setup(pid_t parent, bool own_group)
{
    sigset_t none;

    sigemptyset(&none);
    if (own_group && setpgid(0, 0) < 0)
        return -errno;
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        return -errno;
    if (getppid() != parent)
        return -ESRCH;          /* we died before the prctl */
    return sigprocmask(SIG_SETMASK, &none, NULL) < 0 ? -errno : 0;
}

/* Places fd at target without CLOEXEC (dup2 onto itself keeps the flag). */
static int fd_place(int fd, int target)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0);
    return dup2(fd, target) < 0 ? -1 : 0;
}

static _Noreturn void child_exec(struct up *u, char *const argv[], char *const envp[], int null_fd, int log_fd,
                                 int ready_fd)
{
    if (fd_place(null_fd, 0) < 0 || fd_place(log_fd, 1) < 0 || fd_place(log_fd, 2) < 0 ||
        (ready_fd >= 0 && fd_place(ready_fd, 3) < 0))
        _exit(127);
    (void) close_range(ready_fd >= 0 ? 4 : 3, ~0U, 0);
    execve(u->exe, argv, envp);
    _exit(127);
}

int up_child_spawn(struct up *u, struct up_child *c, char *const argv[], char *const envp[], int *ret_ready)
{
    _cleanup_close_ int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int log_fd = open(c->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    _cleanup_close_ int rd = -1, wr = -1;
    int p[2];
    pid_t parent = getpid();

    if (null_fd < 0 || log_fd < 0)
        return -errno;
    struct stat st;
    c->log_start = fstat(log_fd, &st) == 0 ? st.st_size : 0;
    if (ret_ready) {
        if (pipe2(p, O_CLOEXEC) < 0)
            return -errno;
        rd = p[0], wr = p[1];
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        if (child_setup(parent, true) < 0)
            _exit(127);
        child_exec(u, argv, envp, null_fd, log_fd, wr);
    }
    c->pid = pid;
    c->exited = false;
    if (ret_ready)
        *ret_ready = TAKE_FD(rd);
    return 0;
}

int up_child_fork(struct up *u, struct up_child *c, int (*fn)(struct up *u))
{
    pid_t parent = getpid();

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int rc = 127;
        (void) close(u->sigfd);
        if (child_setup(parent, false) == 0)
            rc = fn(u);
        fflush(NULL);
        _exit(rc);
    }
    c->pid = pid;
    c->exited = false;
    return 0;
}

static bool reap(struct up *u)
{
    struct up_child *all[] = { &u->hub, &u->worker, &u->relay, &u->mcp, &u->gateway, &u->demo };
    bool any = false;
    int st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        for (size_t i = 0; i < AL_ELEMENTSOF(all); i++)
            if (all[i]->pid == pid) {
                all[i]->pid = -1;
                all[i]->exited = true;
                all[i]->status = st;
                any = true;
            }
    return any;
}

/* Drains the signalfd. Returns -EINTR for a stop signal, -ECHILD for an
 * exited child, 0 otherwise. */
static int take_signals(struct up *u)
{
    struct signalfd_siginfo si;
    int r = 0;

    while (read(u->sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            if (reap(u) && r == 0)
                r = -ECHILD;
        } else {
            u->stop_signals++;
            r = -EINTR;
        }
    }
    return r;
}

int up_wait(struct up *u, int fd, int64_t timeout_ms)
{
    int64_t end = al_mono_us() / 1000 + timeout_ms;

    for (;;) {
        struct pollfd p[2] = { { .fd = u->sigfd, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
        int64_t left = end - al_mono_us() / 1000;
        if (left <= 0)
            return 0;
        int n = poll(p, fd >= 0 ? 2 : 1, (int) AL_MIN(left, 60000));
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n <= 0)
            continue;
        int r = take_signals(u);
        if (r < 0)
            return r;
        if (fd >= 0 && p[1].revents)
            return 1;
    }
}

char *up_read_ready(struct up *u, struct up_child *c, int fd, int64_t timeout_ms)
{
    _cleanup_close_ int rd = fd;
    char buf[512];
    size_t len = 0;

    while (len < sizeof(buf) - 1) {
        int r = up_wait(u, rd, timeout_ms);
        if (r == -ECHILD && !c->exited)
            continue;               /* another child: the caller looks at it later */
        if (r <= 0)
            return NULL;
        ssize_t n = read(rd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t) n;
        if (memchr(buf, '\n', len))
            break;
    }
    buf[len] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf[0] ? al_xstrdup(buf) : NULL;
}

bool up_child_ok(const struct up_child *c)
{
    if (!c->exited)
        return true;
    if (WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0)
        return true;
    if (WIFEXITED(c->status))
        fprintf(stderr, "airlock up: the %s exited with status %d\n", c->name, WEXITSTATUS(c->status));
    else
        fprintf(stderr, "airlock up: the %s was killed by signal %d\n", c->name, WTERMSIG(c->status));
    return false;
}

int up_child_stop(struct up *u, struct up_child *c, int64_t timeout_ms)
{
    int64_t end = al_mono_us() / 1000 + timeout_ms;

    if (c->pid > 0) {
        (void) kill(c->pid, SIGTERM);
        while (c->pid > 0) {
            int64_t left = end - al_mono_us() / 1000;
            if (left <= 0) {
                fprintf(stderr, "airlock up: the %s did not stop in time; killing it\n", c->name);
                (void) kill(c->pid, SIGKILL);
                end = al_mono_us() / 1000 + 5000;
                continue;
            }
            if (up_wait(u, -1, left) == -EINTR && c->pid > 0)
                (void) kill(c->pid, SIGTERM);   /* impatient: a second signal ends the drain */
        }
    }
    return up_child_ok(c) ? 0 : -ECHILD;
}

/* Reads back (at most the last UP_LOG_TAIL_MAX bytes of) what this run
 * wrote to the child's log. Caller frees; NULL if there is none. */
static char *log_read(const struct up_child *c)
{
    _cleanup_close_ int fd = c->log_path ? open(c->log_path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;

    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= c->log_start)
        return NULL;
    off_t from = AL_MAX(c->log_start, st.st_size - (off_t) UP_LOG_TAIL_MAX);
    size_t n = (size_t) (st.st_size - from);
    char *buf = al_xmalloc(n + 1);
    ssize_t got = pread(fd, buf, n, from);
    buf[got > 0 ? got : 0] = '\0';
    return buf;
}

bool up_child_log_has(const struct up_child *c, const char *s)
{
    _cleanup_free_ char *log = log_read(c);
    return log && strstr(log, s);
}

void up_child_log_tail(const struct up_child *c, int lines)
{
    _cleanup_free_ char *log = log_read(c);

    if (!log || !*log)
        return;
    size_t len = strlen(log);
    const char *start = log + len;
    for (int seen = 0; start > log; start--)
        if (start[-1] == '\n' && start != log + len && ++seen > lines)
            break;
    fprintf(stderr, "--- the last lines of %s ---\n", c->log_path);
    for (const char *s = start; *s;) {
        size_t n = strcspn(s, "\n");
        cli_put_clean(stderr, s, n, 1000);
        fputc('\n', stderr);
        s += n + (s[n] == '\n');
    }
}

char **up_child_env(char *const extra[])
{
    size_t n = 0, k = 0;

    for (char **e = environ; *e; e++)
        n++;
    for (char *const *e = extra; *e; e++)
        n++;
    char **env = al_xcalloc(n + 1, sizeof(*env));
    for (char **e = environ; *e; e++)
        if (strncasecmp(*e, "AIRLOCK_", 8) != 0 && strncasecmp(*e, "ANTHROPIC_", 10) != 0)
            env[k++] = *e;
    for (char *const *e = extra; *e; e++)
        env[k++] = *e;
    return env;
}
