/* SPDX-License-Identifier: Apache-2.0 */
/* Time, ids and encodings: RFC 3339 timestamps, random ids with a type
 * prefix, base64url. Pure functions plus getrandom(2); libc only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Wall clock in microseconds since the epoch, and a monotonic clock in µs. */
int64_t al_now_us(void);
int64_t al_mono_us(void);

/* Formats us (µs since epoch) as "2026-11-25T19:22:07.123456Z" into buf
 * (at least AL_RFC3339_MAX bytes). Returns buf. */
#define AL_RFC3339_MAX 32
char *al_rfc3339(int64_t us, char buf[static AL_RFC3339_MAX]);
/* Parses an RFC 3339 date-time (any offset, optional fraction up to µs).
 * Returns 0 and sets *ret_us, or -EINVAL. Pure; fuzzed. */
_must_check_ int al_rfc3339_parse(const char *s, int64_t *ret_us);

/* Fills buf with n cryptographically random bytes (getrandom). Aborts if the
 * kernel cannot supply them: nothing safe can proceed without randomness. */
void al_random(void *buf, size_t n);

/* A new id: prefix + "_" + 24 base62 characters (≈143 bits). Caller frees. */
char *al_id_new(const char *prefix);
/* A new secret: prefix + 43 base64url characters (256 bits). Caller frees. */
char *al_secret_new(const char *prefix);

/* base64url without padding. Output is NUL-terminated; caller frees. */
char *al_b64url_encode(const void *data, size_t n);
/* Decodes base64 in either alphabet ('+/' or '-_'), padding optional.
 * Returns 0 with a malloc'd *ret (NUL-terminated, *ret_n bytes) or -EINVAL. */
_must_check_ int al_b64_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_n);

/* Hex-encodes n bytes into out (2n+1 bytes). */
void al_hex(const void *data, size_t n, char *out);

/* Parses a decimal integer in [min, max] from the whole string: digits with
 * an optional leading '-' (no '+', no spaces). Returns 0 or -EINVAL / -ERANGE;
 * *ret is only written on success. */
_must_check_ int al_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret);
/* Replaces path with n bytes of data, file mode mode: written to
 * "<path>.tmp" beside it, fsynced, then renamed over path, so a reader sees
 * the old file or the whole new one. Returns 0 or -errno (the temporary
 * file is removed on failure). */
_must_check_ int al_file_replace(const char *path, const void *data, size_t n, unsigned mode);
/* Parses a duration ("250ms", "5s", "2m", "1h", bare number = seconds) to µs. */
_must_check_ int al_parse_duration_us(const char *s, int64_t *ret_us);
