/* SPDX-License-Identifier: Apache-2.0 */
/* Skills inside the runner (spec §7): extract one skill archive with
 * libarchive into <workdir>/skills/<dir>/, applying the SDK worker's member
 * rules (symlinks, hardlinks, devices and fifos excluded; absolute names and
 * ".." refused), stripping a single wrapper directory and normalising modes
 * (dirs 0700; files 0755 with any x bit, else 0644); and remove it again.
 * dir is a single path component chosen by the worker (never "", "." or
 * ".."). Neither follows a symlink out of the workdir. */
#pragma once

#include <stddef.h>

#include "../lib/base/macro.h"

/* Returns 0, or a negative errno with *why set to an owned message that
 * names no host path (the archive is refused or extraction failed; nothing
 * is left behind under skills/<dir>). */
_must_check_ int al_skill_install(int workdir_fd, const char *dir, const void *data, size_t len, char **why);
/* Removes skills/<dir> (the skills/ parent stays). 0 when it is gone. */
_must_check_ int al_skill_remove(int workdir_fd, const char *dir);
