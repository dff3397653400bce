/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer with a hard maximum, kept NUL-terminated so text
 * bodies can be used as strings. libc only. */
#pragma once

#include <stddef.h>

#include "macro.h"

struct al_buf {
    char *data;      /* NULL until the first append; owned */
    size_t len, cap;
    size_t max;      /* appends beyond this many bytes fail */
};

/* Appends n bytes; returns 0, or -EMSGSIZE (nothing appended) past max. */
_must_check_ int al_buf_append(struct al_buf *b, const void *p, size_t n);
/* Frees the data and empties b (max is kept). */
void al_buf_clear(struct al_buf *b);
