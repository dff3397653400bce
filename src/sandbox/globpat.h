/* SPDX-License-Identifier: Apache-2.0 */
/* Glob patterns as Node 22's fs.glob sees them (its bundled minimatch with
 * optimizationLevel 2, windowsPathsNoEscape, nonegate, nocomment, case
 * sensitive): brace expansion, split on '/', the same preprocessing, and
 * per-segment matching of '*', '?' and '[...]' classes with minimatch's dot
 * rule. Pure: no I/O. Not supported (deliberate difference): extglobs such
 * as "+(a|b)", which minimatch expands and we match literally. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "../lib/base/macro.h"

#define AL_GLOB_MAX_PATTERNS 1024    /* brace expansions kept */
#define AL_GLOB_MAX_PARTS    256     /* segments per pattern */

enum al_glob_part_kind { AL_GLOB_LITERAL, AL_GLOB_MAGIC, AL_GLOB_GLOBSTAR };

struct al_glob_part {
    enum al_glob_part_kind kind;
    char *text;                       /* the segment as written */
};

struct al_glob_pattern {
    struct al_glob_part *parts;
    size_t n;
};

struct al_glob_set {
    struct al_glob_pattern *v;
    size_t n;
};

/* Parses pattern into the set of expanded, preprocessed patterns.
 * Returns 0, or -E2BIG when it expands past the caps. */
_must_check_ int al_glob_parse(const char *pattern, struct al_glob_set *ret);
void al_glob_set_done(struct al_glob_set *s);

/* minimatch's match of one path segment against one pattern segment. */
bool al_glob_segment_match(const char *pat, const char *name);
