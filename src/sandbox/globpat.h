/* SPDX-License-Identifier: Apache-2.0 */
/* Glob patterns as Node 22's fs.glob sees them (its bundled minimatch with
 * optimizationLevel 2, windowsPathsNoEscape, nonegate, nocomment, case
 * sensitive): brace expansion, split on '/', the same preprocessing
 * (globpat.c), and each segment compiled as minimatch compiles it: '*', '?',
 * [...] classes, extglobs such as "+(a|b)" and "!(x)", and the dot rule
 * (globseg.c, matching through PCRE2). Pure: no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "../lib/base/macro.h"

#define AL_GLOB_MAX_PATTERNS 1024    /* brace expansions kept */
#define AL_GLOB_MAX_PARTS    256     /* segments per pattern */

enum al_glob_part_kind { AL_GLOB_LITERAL, AL_GLOB_MAGIC, AL_GLOB_GLOBSTAR };

struct al_glob_re;                    /* a compiled segment (globseg.c) */

struct al_glob_part {
    enum al_glob_part_kind kind;
    char *text;                       /* the segment as written: the walk's cache key */
    char *lit;                        /* LITERAL: the name it stands for ("[a]" is "a") */
    struct al_glob_re *re;            /* MAGIC: the compiled segment */
};

struct al_glob_pattern {
    struct al_glob_part *parts;
    size_t n;
};

struct al_glob_set {
    struct al_glob_pattern *v;
    size_t n;
};

/* Parses pattern into the set of expanded, preprocessed, compiled patterns.
 * Returns 0; -E2BIG when it expands past the caps; -EINVAL when Node would
 * throw building a regular expression, with *ret_err (caller-owned) set to
 * V8's message. On failure *ret is empty. */
_must_check_ int al_glob_parse(const char *pattern, struct al_glob_set *ret, char **ret_err);
void al_glob_set_done(struct al_glob_set *s);

/* True when part (not "**") matches one path segment, name. */
bool al_glob_part_match(const struct al_glob_part *part, const char *name);

/* minimatch's match of one path segment against one pattern segment;
 * false when the segment does not compile. For tests. */
bool al_glob_segment_match(const char *pat, const char *name);

/* globseg.c. Compiles one segment other than "**" and "": sets *ret_lit
 * (owned) when it has no magic, else *ret_re. Returns 0, or -EINVAL with
 * *ret_err (owned) when V8 would reject the regular expression. */
_must_check_ int al_glob_seg_compile(const char *seg, char **ret_lit, struct al_glob_re **ret_re,
                                     char **ret_err);
bool al_glob_re_match(const struct al_glob_re *re, const char *name);
/* The JavaScript source minimatch builds (without ^ and $), for tests. */
const char *al_glob_re_source(const struct al_glob_re *re);
struct al_glob_re *al_glob_re_free(struct al_glob_re *re);   /* NULL-safe; returns NULL */
