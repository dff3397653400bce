/* SPDX-License-Identifier: Apache-2.0 */
/* Skill archives (zip or tar, any compression libarchive detects): member
 * validation with the SDK worker's rules (spec §7) and extraction of the
 * skill's name and description from its SKILL.md front matter. Pure over a
 * memory buffer; no file system access. Fuzzed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "../base/macro.h"

#define AL_SKILL_ARCHIVE_MAX      (32u << 20)   /* upload cap */
#define AL_SKILL_MAX_MEMBERS      10000
#define AL_SKILL_MD_MAX           (256u << 10)

enum al_member_verdict {
    AL_MEMBER_OK,         /* regular file or directory: extracted */
    AL_MEMBER_EXCLUDED,   /* symlink, hardlink, device, fifo, socket: skipped */
    AL_MEMBER_REFUSED,    /* absolute, "..", empty, unprintable special: the whole archive is refused */
};

/* Classifies one member. name is the member's path as stored; is_regular
 * and is_dir describe its type (neither = special). Pure. */
enum al_member_verdict al_skill_member_check(const char *name, bool is_regular, bool is_dir);

struct al_skill_info {
    char *name;           /* from SKILL.md front matter "name:", else NULL */
    char *description;    /* from "description:", else NULL */
    char *directory;      /* the single top-level wrapper directory, or NULL */
    size_t members;       /* accepted members */
    size_t excluded;      /* special members that a worker will skip */
    char error[256];      /* why the archive was refused */
};

/* Reads the archive in data[0..n). Returns 0 and fills info (caller frees
 * with al_skill_info_done), -EBADMSG when it is not a readable archive,
 * -EPERM when a member is refused (info->error says which), -E2BIG when it
 * has too many members, -ENOENT when there is no SKILL.md. */
_must_check_ int al_skill_archive_inspect(const void *data, size_t n, struct al_skill_info *info);
void al_skill_info_done(struct al_skill_info *info);
