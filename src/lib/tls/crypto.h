/* SPDX-License-Identifier: Apache-2.0 */
/* Hashes and MACs from OpenSSL, for credentials: keys are stored as SHA-256
 * digests and compared in constant time. This module and the rest of
 * src/lib/tls/ are the only ones that include OpenSSL headers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define AL_SHA256_LEN 32

void al_sha256(const void *data, size_t n, unsigned char out[AL_SHA256_LEN]);
/* SHA-256 as 64 lowercase hex characters plus NUL. */
void al_sha256_hex(const char *s, char out[2 * AL_SHA256_LEN + 1]);
void al_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                    unsigned char out[AL_SHA256_LEN]);
/* Constant-time equality of two equal-length buffers. */
bool al_ct_equal(const void *a, const void *b, size_t n);
