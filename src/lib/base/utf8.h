/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 repair with the WHATWG decoder's replacement rule (what Node's
 * TextDecoder and Buffer#toString do): each maximal subpart of an ill-formed
 * sequence becomes one U+FFFD. Tool output must match the SDK's bytes for
 * bytes, so this is the one place that decides. libc only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* True when s[0..n) is well-formed UTF-8 (NUL bytes allowed). */
bool al_utf8_valid(const char *s, size_t n);
/* Returns an owned, NUL-terminated copy of s[0..n) with ill-formed
 * sequences replaced; *out_len gets its length (it may contain NULs). */
_nonnull_ret_ char *al_utf8_repair(const char *s, size_t n, size_t *out_len);
