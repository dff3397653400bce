/* SPDX-License-Identifier: Apache-2.0 */
/* agent_toolset_20260401 in C: bash, read, write, edit, glob, grep, with the
 * result texts and is_error of the SDK's Node toolset (spec §6). The tools
 * run inside the per-session runner process (runner.h), never in the worker.
 * Depends on base only (libc, jansson); never on libevent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "../lib/base/macro.h"

/* One tool call's answer: what the agent sees as user.tool_result. text is
 * owned, valid UTF-8 (invalid input bytes replaced as a WHATWG decoder does,
 * see base/utf8.h), and may contain NUL bytes, hence len. An empty success
 * text is sent as "(no output)" by the encoder (spec §6.1), not here. */
struct al_tool_result {
    bool is_error;
    char *text;
    size_t len;
};

void al_tool_result_done(struct al_tool_result *r);
/* Sets r to an owned copy of the formatted text. */
_printf_(3, 4) void al_tool_result_set(struct al_tool_result *r, bool is_error, const char *fmt, ...);

/* What every file tool needs about the session. */
struct al_tool_ctx {
    int root_fd;          /* O_PATH | O_DIRECTORY of the canonical workdir */
    const char *root;     /* canonical absolute workdir, as results print it */
    int cancel_fd;        /* readable when the call is cancelled; -1 = none */
    const char *const *env; /* environment for helper programs (rg); scrubbed */
};

/* File tools (file_tools.c and friends). Each returns 0 with *r filled, the
 * tool's own error texts included (is_error true); a negative errno only for
 * a failure of the runner itself (r is then untouched). */
_must_check_ int al_tool_read(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r);
_must_check_ int al_tool_write(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r);
_must_check_ int al_tool_edit(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r);
_must_check_ int al_tool_glob(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r);
_must_check_ int al_tool_grep(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r);

/* Children a tool waits for itself (bash, rg): the runner's reaper, which
 * reaps everything else that ends up its child (orphans of the session),
 * leaves these alone. A tool calls al_child_spawning() before it spawns
 * and then al_child_own(pid) (or al_child_own(-1) when the spawn failed);
 * in between the reaper reaps nothing. Thread-safe. */
void al_child_spawning(void);
void al_child_own(pid_t pid);
void al_child_disown(pid_t pid);
/* For the reaper: may pid be reaped now? */
bool al_child_reapable(pid_t pid);
/* The reaper's eventfd, written when a spawn settles. */
void al_child_set_wake(int efd);

/* The persistent shell of one session (bash.c). */
struct al_bash;

/* cwd is the session's workdir; env is the scrubbed environment the shell
 * starts with (the runner adds PS1, PS2 and TERM). Nothing starts until the
 * first call or al_bash_start(). */
struct al_bash *al_bash_new(const char *cwd, const char *const *env);
/* Starts the shell now if it is not running, so that its start-up (a few
 * milliseconds) is not paid by the first call. 0 or -errno; a failure is
 * met again, and reported, by the first call. */
_must_check_ int al_bash_start(struct al_bash *b);
/* Kills the shell and everything it started; NULL-safe; returns NULL. */
struct al_bash *al_bash_free(struct al_bash *b);
/* Runs one bash tool call ({command?, restart?, timeout_ms?}). Blocks until
 * the command finishes, times out, or c->cancel_fd becomes readable. */
_must_check_ int al_bash_call(struct al_bash *b, const struct al_tool_ctx *c, const json_t *input,
                              struct al_tool_result *r);
