/* SPDX-License-Identifier: Apache-2.0 */
/* Skill archives (zip or tar, any compression libarchive detects): member
 * validation with the SDK worker's rules (spec §7), a capped reader that
 * applies them in one pass, and extraction of the skill's name and
 * description from its SKILL.md front matter. Pure over a memory buffer; no
 * file system access; never runs a helper program. Shared by the hub's
 * upload check and the sandbox's extractor (libc, base and libarchive
 * only). Fuzzed. */
#pragma once

#include <locale.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../base/macro.h"

#define AL_SKILL_ARCHIVE_MAX      (32u << 20)   /* upload cap */
#define AL_SKILL_MAX_MEMBERS      10000
#define AL_SKILL_MD_MAX           (256u << 10)
/* Decompression caps: the sum of member sizes (declared, plus any data read
 * beyond them), and the whole decompressed stream, which adds room for
 * headers (pax, GNU long names) that member sizes do not count. */
#define AL_SKILL_UNPACKED_MAX     ((uint64_t) 256 << 20)
#define AL_SKILL_STREAM_MAX       (AL_SKILL_UNPACKED_MAX + ((uint64_t) 64 << 20))
/* The SDK worker caps its member listing at 1 MiB; the names alone (one a
 * line) must fit. */
#define AL_SKILL_NAMES_MAX        ((uint64_t) 1 << 20)

enum al_member_verdict {
    AL_MEMBER_OK,         /* regular file or directory: extracted */
    AL_MEMBER_EXCLUDED,   /* symlink, hardlink, device, fifo, socket: skipped */
    AL_MEMBER_REFUSED,    /* absolute, "..", empty, unprintable special: the whole archive is refused */
};

/* Classifies one member. name is the member's path as stored; is_regular
 * and is_dir describe its type (neither = special). Pure. */
enum al_member_verdict al_skill_member_check(const char *name, bool is_regular, bool is_dir);

struct archive;
struct archive_entry;

/* Copies untrusted text (a member name) into buf[size] for an error
 * message: printable ASCII only, ending in "..." when it does not fit.
 * size must be at least 5. Returns buf. */
const char *al_skill_safe_text(const char *s, char *buf, size_t size);

/* One capped pass over an archive in memory. Not thread-safe; while it is
 * open the calling thread runs in the C.UTF-8 locale (libarchive converts
 * zip names flagged UTF-8 to the thread's charset). Every failure fills
 * error[] with a message that quotes member names safely. */
struct al_skill_reader {
    struct archive *a;
    bool zip;            /* a zip (read from its central directory), else a tar */
    size_t entries;      /* members seen, of any verdict */
    uint64_t names;      /* bytes of a one-name-a-line listing */
    uint64_t unpacked;   /* declared sizes, plus data read beyond them */
    uint64_t declared;   /* declared size of the current member */
    uint64_t read;       /* data read from the current member */
    const void *data;    /* borrowed */
    size_t len;
    locale_t utf8, saved;
    char error[256];
};

/* Opens rd over data[0..n), which must outlive it. Returns 0, -EBADMSG
 * (empty) or -ENOMEM; call al_skill_reader_done() either way. */
_must_check_ int al_skill_reader_open(struct al_skill_reader *rd, const void *data, size_t n);
/* Advances to the next member. Returns 1 with its name (never NULL) and its
 * verdict, where REFUSED is not returned but fails with -EPERM; 0 at the
 * end; -EBADMSG (unreadable, or a zip/tar mismatch with the "PK\3\4" sniff
 * the SDK worker uses), -E2BIG (over a cap) or -EPERM (refused member). */
_must_check_ int al_skill_reader_next(struct al_skill_reader *rd, struct archive_entry **ret_entry,
                                      const char **ret_name, enum al_member_verdict *ret_verdict);
/* Reads up to n bytes of the current member's data: the count, 0 at its end,
 * or -EBADMSG / -E2BIG. */
_must_check_ ssize_t al_skill_reader_data(struct al_skill_reader *rd, void *buf, size_t n);
void al_skill_reader_done(struct al_skill_reader *rd);

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
