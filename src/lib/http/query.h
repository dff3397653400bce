/* SPDX-License-Identifier: Apache-2.0 */
/* Query-string parser: splits on '&', percent-decodes keys and values ('+'
 * is a space), and normalises "name[]" to "name" so that the qs "brackets"
 * form and the plain repeated form read the same. Pure, bounded, fuzzed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "../base/macro.h"

#define AL_QUERY_MAX_PAIRS 64
#define AL_QUERY_MAX_LEN   8192

struct al_query_pair {
    char *key;    /* decoded, "[]" suffix removed */
    char *value;  /* decoded */
};

struct al_query {
    struct al_query_pair pairs[AL_QUERY_MAX_PAIRS];
    size_t n;
};

/* Parses s[0..len). Returns 0, -E2BIG (too many pairs or too long) or
 * -EBADMSG (bad percent escape or a NUL byte). On error q is left empty. */
_must_check_ int al_query_parse(const char *s, size_t len, struct al_query *q);
void al_query_clear(struct al_query *q);
/* The last value for key, or NULL. */
const char *al_query_get(const struct al_query *q, const char *key);
/* Fills out[] with up to max values for key (in order); returns the count. */
size_t al_query_get_all(const struct al_query *q, const char *key, const char **out, size_t max);
/* Percent-decodes s[0..len) into a new string; plus_is_space for query parts.
 * Returns NULL on a bad escape or an embedded NUL. */
char *al_percent_decode(const char *s, size_t len, bool plus_is_space);
