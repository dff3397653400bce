/* SPDX-License-Identifier: Apache-2.0 */
/* The runner zygote: one `airlock-sandbox-runner --zygote` process the
 * worker starts once (exec'd, with the worker's scrubbed environment),
 * which forks a runner per session instead of the worker exec'ing one. A
 * fork skips the dynamic loader (most of a runner's start-up) and leaves the
 * runners sharing the zygote's pages.
 *
 * Each runner is created with CLONE_PARENT, so it is the worker's child
 * exactly as if posix_spawn had started it: the worker reaps it, its death
 * signal is tied to the worker, and nothing else about the runner changes.
 *
 * Wire, on a SOCK_SEQPACKET socket (fd 3 of the zygote):
 *   request: one message, argv[0..n) as NUL-terminated strings (at most
 *            AL_ZYGOTE_MAX_ARGS, AL_ZYGOTE_MAX_MSG bytes), carrying exactly
 *            one descriptor (SCM_RIGHTS) that becomes the runner's fd 3;
 *   reply:   one int32: the runner's pid, or -errno.
 * The zygote exits on EOF. It holds nothing of any session: the descriptor
 * it receives is closed, and the request's bytes cleared, in the zygote as
 * soon as the runner has them.
 *
 * libc only (the benchmark compiles this file on its own). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#define AL_ZYGOTE_MAX_ARGS 96
#define AL_ZYGOTE_MAX_MSG  16384

/* What a forked runner continues with: its command line, to be passed to
 * the runner's main. */
struct al_zygote_runner {
    int argc;
    char **argv;            /* NULL in the zygote */
};

struct al_zygote_extra {
    /* In the zygote, before each fork: a descriptor the runner gets as its
     * fd 4 (close-on-exec), announced by appending `flag 4` to its argv; or
     * -1. The zygote closes its copy after the fork. */
    int (*take)(void *ud, int argc, char **argv);
    /* In the zygote, once before the first request and then whenever no
     * request has come for idle_ms after one was served (a pool is refilled
     * here, off the path of a request, and not while a runner it just forked
     * is starting). A negative return ends the zygote with status 1. */
    int (*after)(void *ud);
    int idle_ms;
    const char *flag;
    void *ud;
};

/* The zygote's loop on sock. It returns twice over: in the zygote, with its
 * own exit code (0 on EOF) and runner->argv NULL; and in each runner it
 * forks, with 0 and runner->argc/argv set, already in the state posix_spawn
 * would give it (fd 3 the session's socket, nothing above it but the extra
 * fd 4, its own process group, default signals, an empty mask). mark is the
 * zygote's own "--zygote" argument: a runner overwrites it in place with
 * "--runner", so that ps and /proc/PID/cmdline tell the runners from the
 * zygote (a fork keeps its parent's command line). extra may be NULL. */
int al_zygote_serve(int sock, char *mark, const struct al_zygote_extra *extra, struct al_zygote_runner *runner);

/* Splits a request's bytes into argv (pointers into msg, NULL-terminated).
 * Returns argc, or -1 unless msg[0..len) is 1..AL_ZYGOTE_MAX_ARGS
 * NUL-terminated strings. Fuzzed. */
int al_zygote_split_args(char *msg, size_t len, char *argv[AL_ZYGOTE_MAX_ARGS + 1]);

/* Asks the zygote on sock for a runner with argv (NULL-terminated) whose
 * fd 3 is fd. Blocking, bounded by timeout_ms for the reply. Returns 0 with
 * *ret_pid, or -errno (-EPIPE, -ECONNRESET: the zygote is gone;
 * -ETIMEDOUT; or the zygote's own error). */
int al_zygote_spawn(int sock, char *const argv[], int fd, int timeout_ms, pid_t *ret_pid);
