/* SPDX-License-Identifier: Apache-2.0 */
/* Skills inside the runner (spec §7): extract one skill archive (zip, or
 * tar with any compression libarchive has built in) into
 * <workdir>/skills/<dir>/, applying the member rules and caps the hub
 * checks uploads with (src/lib/archive/skill_archive.h: symlinks,
 * hardlinks, devices, fifos and sockets excluded when their names are
 * plain; absolute names, ".." and unquotable special names refuse the
 * archive), stripping a single wrapper directory the way the SDK does
 * (every extracted member under one top-level name, at least one below it)
 * and normalising modes (dirs 0700; files 0755 with any x bit, else 0644);
 * and remove it again. dir is a single path component chosen by the worker
 * (never "", "." or ".."; else -EINVAL). Both work relative to workdir_fd
 * and never follow a symlink: a symlinked skills/ is refused. Blocking;
 * not thread-safe (the calling thread's locale is switched to C.UTF-8 while
 * the archive is read). */
#pragma once

#include <stddef.h>

#include "../lib/base/macro.h"

/* An existing skills/<dir> is removed first; skills/ is created 0700 when
 * missing. The archive is extracted into a private skills/.staging-<random>
 * and renamed into place. Returns 0 with *why NULL, or a negative errno
 * with *why set to an owned message that names no host path: -EINVAL (bad
 * dir), -EBADMSG (not a readable archive), -EPERM (a refused member),
 * -E2BIG (over a cap), or the file system's error. On failure nothing is
 * left behind under skills/ (neither <dir> nor the staging directory). */
_must_check_ int al_skill_install(int workdir_fd, const char *dir, const void *data, size_t len, char **why);
/* Removes skills/<dir> recursively (the skills/ parent stays), unlinking
 * symlinks rather than following them. 0 when it is gone (or never was),
 * else -errno (-ELOOP for a tree deeper than 256 levels). */
_must_check_ int al_skill_remove(int workdir_fd, const char *dir);
