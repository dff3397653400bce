/* SPDX-License-Identifier: Apache-2.0 */
/* X.509 certificates as the Tunnels API takes them: one PEM certificate,
 * checked and summarised (SHA-256 fingerprint of the DER, subject, notAfter).
 * A thin layer over OpenSSL's PEM and X.509 parsers; no I/O, no logging.
 * Any thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "../base/macro.h"
#include "crypto.h"

#define AL_X509_PEM_MAX 8192          /* bytes, the Tunnels API's limit */
#define AL_X509_SUBJECT_MAX 1024      /* bytes of the RFC 2253 subject kept */

struct al_x509_info {
    char fingerprint_sha256[2 * AL_SHA256_LEN + 1];  /* of the DER, lowercase hex */
    char subject[AL_X509_SUBJECT_MAX];               /* RFC 2253, cut at the limit */
    int64_t not_after_us;                            /* µs since the epoch */
};

/* Parses pem[0..n) as exactly one PEM "CERTIFICATE" block (explanatory text
 * around it is allowed, per RFC 7468) holding a DER X.509 certificate.
 * Returns 0 and fills *ret, or:
 *   -EMSGSIZE  n > AL_X509_PEM_MAX;
 *   -ENOENT    no PEM block at all;
 *   -E2BIG     more than one certificate;
 *   -EPERM     a private key block is present;
 *   -EBADMSG   anything else (bad base64, another block type, DER that is
 *              not a certificate or has trailing bytes, unreadable notAfter).
 * *ret is untouched on failure. */
_must_check_ int al_x509_pem_one(const char *pem, size_t n, struct al_x509_info *ret);
