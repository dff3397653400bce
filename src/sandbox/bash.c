/* SPDX-License-Identifier: Apache-2.0 */
/* The persistent bash of one session (spec §6.3), with the result texts of
 * the SDK's Node BashSession. Differences, all invisible in the texts
 * (sandbox-notes §5.3):
 *   - stdout and stderr share one pipe, so their order is kept;
 *   - the exit status comes back on a dedicated fd-3 pipe with a per-call
 *     random nonce, never scanned out of the output;
 *   - a timeout or cancel kills the command's process tree (every descendant
 *     of this process but the shell, so setsid and double-fork escapers that
 *     re-parented to the subreaper runner die too) and keeps the shell with
 *     its cwd, variables and functions; only a shell that does not report
 *     within a second afterwards (a builtin loop) is replaced.
 * Runs in the runner's main thread; blocks for the duration of a call. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/base/utf8.h"
#include "toolset.h"

#define BASH_PATH            "/bin/bash"
#define NONCE_LEN            22
/* The SDK's buffer cap, in UTF-16 code units (JavaScript string length). */
#define OUTPUT_LIMIT_UNITS   102400
/* The SDK's sentinel "__ANT_CMD_<uuid>_DONE__" is 53 units; its buffer holds
 * output, "\n", sentinel, exit code, "\n" - so this much output fits. */
#define SENTINEL_UNITS       53
/* Raw bytes kept from the tail of the output. A UTF-16 unit never takes more
 * than 3 bytes, so this always decodes to more than the limit. */
#define RAW_KEEP             (4u * OUTPUT_LIMIT_UNITS)
#define READ_CHUNK           (64u << 10)
#define DEFAULT_TIMEOUT_MS   120000
/* SessionToolRunner aborts every tool after 120 s (TOOL_TIMEOUT_MS). */
#define TOOL_CEILING_MS      120000
/* How long a shell whose command tree was killed gets to report. */
#define REPORT_GRACE_MS      1000

struct al_bash {
    char *cwd;
    char **env;         /* owned, NULL-terminated, PS1/PS2/TERM applied */
    pid_t pid;          /* 0: no shell */
    int pidfd;
    int in_fd;          /* shell's stdin (ours: write end, non-blocking) */
    int out_fd;         /* shell's stdout and stderr (read end) */
    int st_fd;          /* shell's fd 3, the status pipe (read end) */
    char st[128];       /* partial status line */
    size_t st_len;
    bool sigpipe_ignored; /* at al_bash_new (the runner's case) */
};

/* The tail of one call's output, raw bytes. */
struct tail {
    char *p;
    size_t len, cap;
    bool dropped;       /* bytes before p[0] were discarded */
};

enum wait_end { END_STATUS, END_GONE, END_TIMEOUT, END_CANCEL };

/* One call in flight. */
struct call {
    struct al_bash *b;
    char *script;
    size_t script_len, written;
    char nonce[NONCE_LEN + 1];
    int code;           /* exit status reported by the shell */
    struct tail out;
};

static void closedir_p(DIR **d)
{
    if (*d)
        (void) closedir(*d);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- process tree -------------------------------------------------------- */

struct proc {
    pid_t pid, ppid;
    char state;
};

/* Reads every process's parent and state from /proc; returns the count
 * (*out is owned) or 0 when /proc cannot be read. */
static size_t proc_scan(struct proc **out)
{
    _cleanup_(closedir_p) DIR *d = opendir("/proc");
    struct proc *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;

    *out = NULL;
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        char path[sizeof(e->d_name) + 16], buf[512];
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t k = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (k <= 0)
            continue;
        buf[k] = '\0';
        /* "pid (comm) S ppid ...": comm may hold anything, even ") ". */
        char *rp = strrchr(buf, ')');
        struct proc p = { .pid = (pid_t) strtol(buf, NULL, 10) };
        if (!rp || sscanf(rp + 1, " %c %d", &p.state, &p.ppid) != 2)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            v = al_xrealloc(v, cap * sizeof(*v));
        }
        v[n++] = p;
    }
    *out = v;
    return n;
}

/* SIGKILLs every live descendant of this process except `except` (which may
 * be 0). Orphans re-parent to us (we are a subreaper in the runner), so a
 * setsid or double-fork escaper is still found. Scans again until no live
 * one is left, so a process forked during a pass dies in the next, and
 * every victim is dead (a zombie at most) when this returns; bounded to
 * about a second for a process stuck in the kernel. */
static void kill_descendants(pid_t except)
{
    pid_t self = getpid();
    struct timespec wait = { 0, 50 * 1000 };

    for (int pass = 0; pass < 200; pass++) {
        _cleanup_free_ struct proc *v = NULL;
        _cleanup_free_ bool *mine = NULL;
        size_t n = proc_scan(&v), live = 0;
        bool grew = true;

        mine = al_xcalloc(n + 1, sizeof(bool));
        while (grew) {
            grew = false;
            for (size_t i = 0; i < n; i++) {
                if (mine[i] || v[i].pid == self)
                    continue;
                bool parent_mine = v[i].ppid == self;
                for (size_t j = 0; j < n && !parent_mine; j++)
                    parent_mine = mine[j] && v[j].pid == v[i].ppid;
                if (parent_mine)
                    mine[i] = grew = true;
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (!mine[i] || v[i].pid == except || v[i].state == 'Z' || v[i].state == 'X')
                continue;
            if (kill(v[i].pid, SIGKILL) == 0)
                live++;
        }
        if (!live)
            return;
        /* Let the killed ones finish dying: from 50 µs, doubling to 5 ms
         * (a SIGKILLed process is a zombie within microseconds). */
        if (pass > 0) {
            (void) nanosleep(&wait, NULL);
            if (wait.tv_nsec < 5 * 1000 * 1000)
                wait.tv_nsec *= 2;
        }
    }
}

/* ---- the shell --------------------------------------------------------- */

/* A pipe whose ends are close-on-exec and above the shell's fds 0-3, so the
 * dup2 file actions below can never overwrite one another. */
static int pipe_high(int p[2])
{
    int q[2];

    if (pipe2(q, O_CLOEXEC) < 0)
        return -errno;
    p[0] = fcntl(q[0], F_DUPFD_CLOEXEC, 10);
    p[1] = fcntl(q[1], F_DUPFD_CLOEXEC, 10);
    (void) close(q[0]);
    (void) close(q[1]);
    if (p[0] < 0 || p[1] < 0) {
        int r = -errno;
        if (p[0] >= 0)
            (void) close(p[0]);
        if (p[1] >= 0)
            (void) close(p[1]);
        return r;
    }
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static void close_pipes(int in[2], int out[2], int st[2])
{
    int *all[] = { in, out, st };

    for (size_t i = 0; i < AL_ELEMENTSOF(all); i++)
        for (int k = 0; k < 2; k++)
            if (all[i][k] >= 0)
                (void) close(all[i][k]);
}

/* posix_spawn: the runner has a reader thread, and posix_spawn is safe to
 * call from a threaded process. As Node's spawn with detached:true: a new
 * session (so its own process group), default signal dispositions and an
 * empty mask, argv[0] "/bin/bash". */
static int spawn_shell(struct al_bash *b, int in_r, int out_w, int st_w)
{
    static char *const argv[] = { BASH_PATH, "--noprofile", "--norc", NULL };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int r;

    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    (void) posix_spawn_file_actions_adddup2(&fa, in_r, 0);
    (void) posix_spawn_file_actions_adddup2(&fa, out_w, 1);
    (void) posix_spawn_file_actions_adddup2(&fa, out_w, 2);
    (void) posix_spawn_file_actions_adddup2(&fa, st_w, 3);
    (void) posix_spawn_file_actions_addchdir_np(&fa, b->cwd);
    (void) posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    (void) posix_spawnattr_setsigmask(&at, &none);
    (void) posix_spawnattr_setsigdefault(&at, &all);
    al_child_spawning();
    r = -posix_spawn(&b->pid, BASH_PATH, &fa, &at, argv, b->env);
    al_child_own(r == 0 ? b->pid : -1);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (r < 0)
        b->pid = 0;
    return r;
}

static int shell_start(struct al_bash *b)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, st[2] = { -1, -1 };
    int r;

    if ((r = pipe_high(in)) < 0 || (r = pipe_high(out)) < 0 || (r = pipe_high(st)) < 0 ||
        (r = spawn_shell(b, in[0], out[1], st[1])) < 0) {
        close_pipes(in, out, st);
        return r;
    }
    /* Taken before anyone can reap it, so it names this shell for good. */
    b->pidfd = pidfd_open(b->pid, 0);
    (void) close(in[0]);
    (void) close(out[1]);
    (void) close(st[1]);
    b->in_fd = in[1];
    b->out_fd = out[0];
    b->st_fd = st[0];
    b->st_len = 0;
    /* Only our ends: each pipe end is its own open file description. */
    if ((r = set_nonblock(b->in_fd)) < 0 || (r = set_nonblock(b->out_fd)) < 0 ||
        (r = set_nonblock(b->st_fd)) < 0)
        return r;
    return 0;
}

/* Kills the shell, its process group and every other descendant, and reaps
 * the shell. The next call starts a fresh one. */
static void shell_stop(struct al_bash *b)
{
    if (b->pid <= 0)
        return;
    if (b->pidfd < 0 || pidfd_send_signal(b->pidfd, SIGKILL, NULL, 0) < 0)
        (void) kill(b->pid, SIGKILL);
    (void) kill(-b->pid, SIGKILL);
    kill_descendants(0);
    /* ECHILD when the runner's reaper got there first: then it is gone. */
    while (waitpid(b->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    al_child_disown(b->pid);
    int *fds[] = { &b->pidfd, &b->in_fd, &b->out_fd, &b->st_fd };
    for (size_t i = 0; i < AL_ELEMENTSOF(fds); i++)
        if (*fds[i] >= 0)
            (void) close(TAKE_FD(*fds[i]));
    b->pid = 0;
    b->st_len = 0;
}

static bool shell_exited(const struct al_bash *b)
{
    struct pollfd p = { .fd = b->pidfd, .events = POLLIN };

    return b->pidfd >= 0 && poll(&p, 1, 0) == 1;
}

struct al_bash *al_bash_new(const char *cwd, const char *const *env)
{
    static const char *const forced[] = { "PS1=", "PS2=", "TERM=dumb" };
    struct al_bash *b = al_xcalloc(1, sizeof(*b));
    bool have[AL_ELEMENTSOF(forced)] = { false };
    size_t n = 0, o = 0;

    while (env && env[n])
        n++;
    b->cwd = al_xstrdup(cwd);
    b->env = al_xcalloc(n + AL_ELEMENTSOF(forced) + 1, sizeof(char *));
    /* As {...env, PS1, PS2, TERM} in JavaScript: a key already present keeps
     * its place with the forced value; the others are appended in order. */
    for (size_t i = 0; i < n; i++) {
        const char *v = env[i];
        for (size_t k = 0; k < AL_ELEMENTSOF(forced); k++) {
            size_t kl = strchr(forced[k], '=') - forced[k] + 1;
            if (!strncmp(env[i], forced[k], kl)) {
                v = forced[k];
                have[k] = true;
            }
        }
        b->env[o++] = al_xstrdup(v);
    }
    for (size_t k = 0; k < AL_ELEMENTSOF(forced); k++)
        if (!have[k])
            b->env[o++] = al_xstrdup(forced[k]);
    b->pidfd = b->in_fd = b->out_fd = b->st_fd = -1;
    /* Then a write to a gone shell is EPIPE without the signal dance. */
    struct sigaction sa;
    b->sigpipe_ignored = sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
    return b;
}

int al_bash_start(struct al_bash *b)
{
    if (!b)
        return -EINVAL;
    return b->pid > 0 ? 0 : shell_start(b);
}

struct al_bash *al_bash_free(struct al_bash *b)
{
    if (!b)
        return NULL;
    shell_stop(b);
    /* Also what outlived an earlier shell. */
    kill_descendants(0);
    for (size_t i = 0; b->env[i]; i++)
        free(b->env[i]);
    free(b->env);
    free(b->cwd);
    free(b);
    return NULL;
}

/* ---- output, shaped as the SDK shapes it ----------------------------------- */

/* Reads what is in the pipe now, at most max bytes, into the tail; 0 at EOF,
 * 1 when bytes came or the pipe is empty, negative errno otherwise. */
static int tail_read(struct tail *t, int fd, size_t max)
{
    size_t got = 0;

    while (got < max) {
        if (t->cap - t->len < READ_CHUNK) {
            t->cap = t->len + READ_CHUNK;
            t->p = al_xrealloc(t->p, t->cap);
        }
        ssize_t n = read(fd, t->p + t->len, AL_MIN((size_t) READ_CHUNK, max - got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 1 : -errno;
        if (n == 0)
            return 0;
        t->len += (size_t) n;
        got += (size_t) n;
        if (t->len > 2 * RAW_KEEP) {
            memmove(t->p, t->p + t->len - RAW_KEEP, RAW_KEEP);
            t->len = RAW_KEEP;
            t->dropped = true;
        }
    }
    return 1;
}

/* UTF-16 code units of well-formed UTF-8 (a 4-byte sequence is two). */
static size_t utf16_units(const char *s, size_t n)
{
    size_t u = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        u += (c & 0xc0) != 0x80;
        u += c >= 0xf0;
    }
    return u;
}

/* The SDK's /\x1b\[[0-9;?]*[ -/]*[@-~]/g, in place. The three classes are
 * disjoint, so a greedy scan without backtracking finds the same matches. */
static size_t strip_csi(char *s, size_t n)
{
    size_t i = 0, o = 0;

    while (i < n) {
        if (s[i] == '\x1b' && i + 1 < n && s[i + 1] == '[') {
            size_t j = i + 2;
            while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == ';' || s[j] == '?'))
                j++;
            while (j < n && s[j] >= ' ' && s[j] <= '/')
                j++;
            if (j < n && s[j] >= '@' && s[j] <= '~') {
                i = j + 1;
                continue;
            }
        }
        s[o++] = s[i++];
    }
    return o;
}

static size_t decimal_digits(int v)
{
    size_t d = v < 0 ? 2 : 1;

    for (v = v < 0 ? -v : v; v >= 10; v /= 10)
        d++;
    return d;
}

/* Turns the raw output of a call that exited with `code` into the SDK's
 * text: decoded as Node decodes UTF-8; when the SDK's buffer (output, "\n",
 * sentinel, code, "\n") went over 102 400 units, only the output's tail that
 * stayed in it, prefixed "[output truncated]\n"; CSI sequences and trailing
 * newlines removed. A tail that starts inside a surrogate pair starts with
 * U+FFFD, what UTF-8 encoding makes of the lone half. */
static char *shape_output(struct tail *t, int code, size_t *ret_len)
{
    size_t start = 0, rlen, units, keep = OUTPUT_LIMIT_UNITS - SENTINEL_UNITS - 2 - decimal_digits(code);
    const char *cut;
    char *res;

    if (!t->p)
        t->p = al_xstrdup("");
    /* Decoding restarts at every byte that is not a continuation byte, so
     * from there on the tail decodes exactly as the whole stream does. */
    while (t->dropped && start < t->len && ((unsigned char) t->p[start] & 0xc0) == 0x80)
        start++;
    _cleanup_free_ char *s = al_utf8_repair(t->p + start, t->len - start, &rlen);
    units = utf16_units(s, rlen);
    bool truncated = t->dropped || units > keep;
    cut = s;
    bool lone_low = false;
    for (size_t skip = truncated ? units - keep : 0; skip > 0;) {
        unsigned char c = (unsigned char) *cut;
        size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        size_t u = len == 4 ? 2 : 1;
        if (u > skip) {
            lone_low = true;
            cut += len;
            break;
        }
        skip -= u;
        cut += len;
    }
    size_t body = rlen - (size_t) (cut - s);
    res = al_xmalloc(sizeof("[output truncated]\n") + 3 + body);
    size_t o = 0;
    if (truncated) {
        memcpy(res, "[output truncated]\n", 19);
        o = 19;
    }
    size_t text_at = o;
    if (lone_low) {
        memcpy(res + o, "\xef\xbf\xbd", 3);
        o += 3;
    }
    memcpy(res + o, cut, body);
    o = text_at + strip_csi(res + text_at, o + body - text_at);
    while (o > text_at && res[o - 1] == '\n')
        o--;
    res[o] = '\0';
    *ret_len = o;
    return res;
}

/* ---- one call ------------------------------------------------------------ */

/* Writes more of the script without ever raising SIGPIPE in this process:
 * where it is not ignored already (the runner ignores it), the signal is
 * blocked around write(2) and a pending one consumed. 0, or -EPIPE when the
 * shell is gone. */
static int script_write(struct call *c)
{
    sigset_t pipe_set, old, pending;
    bool was_pending;
    ssize_t n;

    if (c->b->sigpipe_ignored) {
        do
            n = write(c->b->in_fd, c->script + c->written, c->script_len - c->written);
        while (n < 0 && errno == EINTR);
        if (n >= 0)
            c->written += (size_t) n;
        return n >= 0 || errno == EAGAIN ? 0 : -EPIPE;
    }
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    do
        n = write(c->b->in_fd, c->script + c->written, c->script_len - c->written);
    while (n < 0 && errno == EINTR);
    int err = n < 0 ? errno : 0;
    if (err == EPIPE && !was_pending) {
        struct timespec zero = { 0 };
        (void) sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (n >= 0)
        c->written += (size_t) n;
    return err == EAGAIN || err == 0 ? 0 : -EPIPE;
}

/* Reads status lines; returns 1 when this call's line came (c->code set),
 * 0 when not yet, -EPIPE when the shell closed fd 3 (it exited). Lines of an
 * earlier call that reported late are skipped by their nonce. */
static int status_read(struct call *c)
{
    struct al_bash *b = c->b;

    for (;;) {
        ssize_t n = read(b->st_fd, b->st + b->st_len, sizeof(b->st) - 1 - b->st_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : -EPIPE;
        if (n == 0)
            return -EPIPE;
        b->st_len += (size_t) n;
        char *nl;
        while ((nl = memchr(b->st, '\n', b->st_len))) {
            *nl = '\0';
            size_t nonce_len = strlen(c->nonce);
            bool ours = !strncmp(b->st, c->nonce, nonce_len) && b->st[nonce_len] == ' ';
            int code = ours ? (int) strtol(b->st + nonce_len + 1, NULL, 10) : 0;
            b->st_len -= (size_t) (nl + 1 - b->st);
            memmove(b->st, nl + 1, b->st_len);
            if (ours) {
                c->code = code;
                return 1;
            }
        }
        if (b->st_len == sizeof(b->st) - 1)
            b->st_len = 0;      /* not a status line of ours */
    }
}

/* Runs the call until its status comes, the shell goes, deadline_ms (a
 * CLOCK_MONOTONIC time) passes, or cancel_fd becomes readable. */
static enum wait_end call_wait(struct call *c, int64_t deadline_ms, int cancel_fd)
{
    struct al_bash *b = c->b;
    bool out_open = true;

    for (;;) {
        struct pollfd p[4] = {
            { .fd = b->st_fd, .events = POLLIN },
            { .fd = out_open ? b->out_fd : -1, .events = POLLIN },
            { .fd = c->written < c->script_len ? b->in_fd : -1, .events = POLLOUT },
            { .fd = cancel_fd, .events = POLLIN },
        };
        int64_t left = deadline_ms - now_ms();
        if (left <= 0)
            return END_TIMEOUT;
        int n = poll(p, 4, (int) AL_MIN(left, (int64_t) INT32_MAX));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p[3].revents & (POLLIN | POLLHUP | POLLERR)))
            return END_CANCEL;
        if (p[1].revents && tail_read(&c->out, b->out_fd, 1u << 20) <= 0)
            out_open = false;
        if (p[2].revents && script_write(c) < 0)
            return END_GONE;
        if (p[0].revents) {
            int r = status_read(c);
            if (r != 0)
                return r > 0 ? END_STATUS : END_GONE;
        }
    }
}

/* The command's output all went into the pipe before the shell wrote the
 * status; take what is there now, and no more, so a background job that
 * keeps writing cannot hold the answer back. */
static void take_rest(struct call *c)
{
    int avail = 0;

    if (ioctl(c->b->out_fd, FIONREAD, &avail) == 0 && avail > 0)
        (void) tail_read(&c->out, c->b->out_fd, (size_t) avail);
}

/* What background jobs wrote between calls is dropped, as the SDK empties
 * its buffer when a call starts. */
static void discard_pending(struct al_bash *b)
{
    struct tail junk = { 0 };
    int avail = 0;

    if (ioctl(b->out_fd, FIONREAD, &avail) == 0 && avail > 0)
        (void) tail_read(&junk, b->out_fd, (size_t) avail);
    free(junk.p);
}

/* NONCE_LEN letters and digits, 131 random bits: shorter than hex, since
 * bash reads the script from its pipe a byte at a time. Bytes >= 248 are
 * drawn again so every character is equally likely. */
static void make_nonce(char out[static NONCE_LEN + 1])
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char r[48];
    size_t n = 0;

    while (n < NONCE_LEN) {
        if (getrandom(r, sizeof(r), 0) != (ssize_t) sizeof(r)) {
            /* Never expected; the nonce only guards against stale lines. */
            uint64_t t = (uint64_t) now_ms() ^ ((uint64_t) getpid() << 32) ^ (uint64_t) n;
            for (size_t i = 0; i < sizeof(r); i++)
                r[i] = (unsigned char) ((t >> (8 * (i % 8))) + i) % 248;
        }
        for (size_t i = 0; i < sizeof(r) && n < NONCE_LEN; i++)
            if (r[i] < 248)
                out[n++] = digits[r[i] % 62];
    }
    out[n] = '\0';
}

/* ---- the tool ------------------------------------------------------------ */

/* JavaScript truthiness of a JSON value (absent is undefined). */
static bool js_truthy(const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_TRUE:
    case JSON_OBJECT:
    case JSON_ARRAY:
        return true;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0 && json_real_value(v) == json_real_value(v);
    default:
        return false;
    }
}

/* timeout_ms as given, or the default for absent, null, zero or negative
 * values (the API documents 0 as "default"; the SDK would pass it on). */
static int64_t timeout_of(const json_t *input)
{
    const json_t *v = json_object_get(input, "timeout_ms");
    double d = json_is_number(v) ? json_number_value(v) : 0;

    if (!(d > 0))
        return DEFAULT_TIMEOUT_MS;
    return d > 1e15 ? (int64_t) 1e15 : (int64_t) d;
}

static bool is_cancelled(int cancel_fd)
{
    struct pollfd p = { .fd = cancel_fd, .events = POLLIN };

    return cancel_fd >= 0 && poll(&p, 1, 0) == 1;
}

static void call_done(struct call *c)
{
    free(c->script);
    free(c->out.p);
}

/* After a kill, bash reports each background job it lost ("line N: PID
 * Killed ...") on stderr before its next command. A silent round trip lets
 * that land now, to be dropped, instead of in the next call's output. */
static void settle(struct al_bash *b)
{
    struct call s = { .b = b, .code = -1 };

    make_nonce(s.nonce);
    s.script = al_xasprintf("echo %s 0 >&3\n", s.nonce);
    s.script_len = strlen(s.script);
    if (call_wait(&s, now_ms() + REPORT_GRACE_MS, -1) == END_STATUS)
        discard_pending(b);
    else
        shell_stop(b);
    call_done(&s);
}

/* Runs `cmd` in the shell, which is running. */
static void run_command(struct al_bash *b, const char *cmd, size_t cmd_len, int64_t timeout_ms,
                        int cancel_fd, struct al_tool_result *r)
{
    struct call c = { .b = b, .code = -1 };
    int64_t start = now_ms();
    /* The SDK's tool runner aborts at 120 s; a timer that ends at the same
     * moment loses to it, as the runner's timer was set first. */
    bool ceiling = timeout_ms >= TOOL_CEILING_MS;
    int64_t deadline = start + (ceiling ? TOOL_CEILING_MS : timeout_ms);
    enum wait_end end;

    make_nonce(c.nonce);
    /* Two lines, as the SDK's wrapper, so bash's "line N" messages agree.
     * fd 3 is closed for the command, so nothing it starts can hold it. */
    c.script = al_xasprintf("{ %.*s\n} </dev/null 2>&1 3>&-; echo %s $? >&3\n", (int) cmd_len, cmd, c.nonce);
    c.script_len = strlen(c.script);
    discard_pending(b);
    end = call_wait(&c, deadline, cancel_fd);
    if (end == END_TIMEOUT || end == END_CANCEL) {
        /* Kill what the command started, keep the shell if it then reports. */
        kill_descendants(b->pid);
        enum wait_end again = END_GONE;
        if (c.written == c.script_len) {
            int64_t until = now_ms() + REPORT_GRACE_MS;
            /* A cancel can come before the shell has started the command:
             * what it forks after the kill dies on the next round. */
            for (;;) {
                again = call_wait(&c, AL_MIN(now_ms() + 20, until), -1);
                if (again != END_TIMEOUT || now_ms() >= until)
                    break;
                kill_descendants(b->pid);
            }
        }
        if (again == END_STATUS)
            settle(b);
        else
            shell_stop(b);
        if (end == END_TIMEOUT && !ceiling)
            al_tool_result_set(r, true, "bash: bash command timed out after %lldms", (long long) timeout_ms);
        else
            al_tool_result_set(r, true, "bash: This operation was aborted");
    } else if (end == END_GONE) {
        shell_stop(b);
        al_tool_result_set(r, true, "bash: bash session terminated");
    } else {
        take_rest(&c);
        size_t len;
        char *text = shape_output(&c.out, c.code, &len);
        if (c.code != 0 && len == 0) {
            free(text);
            al_tool_result_set(r, true, "exit %d", c.code);
        } else {
            *r = (struct al_tool_result){ .is_error = c.code != 0, .text = text, .len = len };
        }
    }
    call_done(&c);
}

int al_bash_call(struct al_bash *b, const struct al_tool_ctx *ctx, const json_t *input, struct al_tool_result *r)
{
    const json_t *cmd = json_object_get(input, "command");
    int cancel_fd = ctx ? ctx->cancel_fd : -1;
    _cleanup_free_ char *text = NULL;
    const char *s;
    size_t len;

    if (js_truthy(json_object_get(input, "restart")))
        shell_stop(b);
    if (!js_truthy(cmd)) {
        if (js_truthy(json_object_get(input, "restart")))
            al_tool_result_set(r, false, "bash session restarted");
        else
            al_tool_result_set(r, true, "bash: command is required");
        return 0;
    }
    if (json_is_string(cmd)) {
        s = json_string_value(cmd);
        len = json_string_length(cmd);
    } else if (json_is_integer(cmd) || json_is_true(cmd)) {
        /* What a template string makes of them. */
        text = json_is_true(cmd) ? al_xstrdup("true") : al_xasprintf("%lld", (long long) json_integer_value(cmd));
        s = text;
        len = strlen(text);
    } else {
        al_tool_result_set(r, true, "bash: command must be a string");
        return 0;
    }
    if (b->pid > 0 && shell_exited(b)) {
        /* Died between calls (killed from a background job, say). */
        shell_stop(b);
        al_tool_result_set(r, true, "bash: bash session terminated");
        return 0;
    }
    if (is_cancelled(cancel_fd)) {
        shell_stop(b);
        al_tool_result_set(r, true, "bash: This operation was aborted");
        return 0;
    }
    if (b->pid <= 0 && shell_start(b) < 0) {
        /* The SDK sees its child close at once: the same answer. */
        shell_stop(b);
        al_tool_result_set(r, true, "bash: bash session terminated");
        return 0;
    }
    run_command(b, s, len, timeout_of(input), cancel_fd, r);
    return 0;
}
