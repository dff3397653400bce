/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the file tools (read, write, edit, glob, grep): the SDK's path
 * confinement (spec §6.2) and its error texts, and race-free opening of the
 * confined path relative to the session's root dirfd. Runs in the runner
 * process; blocking file system calls only; libc and base only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "toolset.h"

#define AL_SYMLINK_HOPS_MAX 40

/* Node's fsErrorMessage() without the "<file>: " prefix: "no such file or
 * directory", ..., "i/o error (EXDEV)". err is a positive errno. */
const char *al_fs_errmsg(int err, char buf[static 48]);

/* Lexical path.resolve(base, p) (POSIX): absolute, no ".", "..", empty
 * components or trailing slash. base must be absolute. Owned result. */
_nonnull_ret_ char *al_path_resolve(const char *base, const char *p);

/* The SDK's canonicalize(): realpath of the longest existing prefix plus the
 * missing tail; symlinks (dangling ones and the leaf too) are followed, at
 * most AL_SYMLINK_HOPS_MAX hops. abs must be lexically normal. Returns 0 and
 * an owned *ret, or -errno. */
_must_check_ int al_path_canonicalize(const char *abs, char **ret);

/* True when p is root or below it (byte comparison, as isWithin()). */
bool al_path_within(const char *root, const char *p);

/* JSON.stringify(s) for a string: the quoted form used in "path \"..\"". */
_nonnull_ret_ char *al_js_quote(const char *s);

/* Confines the tool input path p to c->root. Returns 0 with an owned
 * canonical absolute path in *ret_abs, or 1 with r set to the SDK's error
 * text (is_error). */
_must_check_ int al_confine(const struct al_tool_ctx *c, const char *p, char **ret_abs,
                            struct al_tool_result *r);

/* The part of a confined absolute path below c->root ("." for the root). */
const char *al_path_below_root(const struct al_tool_ctx *c, const char *abs);

/* openat2(c->root_fd, below-root part, flags, RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS): a symlink swapped in after
 * confinement fails with -ELOOP/-EXDEV instead of being followed. Returns an
 * fd (O_CLOEXEC) or -errno. */
_must_check_ int al_open_beneath(const struct al_tool_ctx *c, const char *abs, int flags, mode_t mode);
/* The same relative to any dirfd. */
_must_check_ int al_openat_beneath(int dirfd, const char *rel, int flags, mode_t mode);

/* mkdir -p of the directory abs (confined, below c->root), one component at
 * a time relative to dirfds, mode 0700, never following a symlink. Returns
 * an O_PATH dirfd of it, or -errno. */
_must_check_ int al_mkdir_beneath(const struct al_tool_ctx *c, const char *abs);

/* The SDK's atomicWriteFile() for dirfd/name: temp file ".tmp-<pid>-<uuid>"
 * created O_EXCL|O_NOFOLLOW 0600, the existing file's permission bits
 * copied, data written, fsync, renameat over name. Returns 0 or -errno. */
_must_check_ int al_atomic_write(int dirfd, const char *name, const void *data, size_t n);

/* Test hook: called between confinement and the first open, so a test can
 * swap a component for a symlink. NULL in production. */
extern void (*al_fstools_race_hook)(const char *abs);
