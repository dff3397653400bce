/* SPDX-License-Identifier: Apache-2.0 */
/* A small test PKI, as `airlock up` needs one for its tunnel: ECDSA P-256
 * CAs and leaf certificates for given DNS names and IP addresses, written
 * as PEM files (keys 0600), and checks that such files are still usable so
 * that a second run can keep them. Not a CA for production use: no CRLs,
 * no chains longer than one. Blocking file I/O, no logging; any thread. */
#pragma once

#include <stdint.h>

#include "../base/macro.h"

#define AL_PKI_NAMES_MAX 16     /* SANs per leaf */

/* Makes a self-signed CA (CA:TRUE, pathlen 0, keyCertSign) named
 * common_name, valid from an hour ago for days days, and writes its
 * certificate to cert_path (0644) and its key (PKCS#8) to key_path (0600).
 * Each file is replaced atomically (a temporary file, then rename).
 * Returns 0, -EINVAL (bad arguments), -ENOMEM/-EIO (OpenSSL), or -errno of
 * the file operations. */
_must_check_ int al_pki_make_ca(const char *common_name, int days, const char *cert_path, const char *key_path);

/* Makes a leaf (CA:FALSE, digitalSignature, serverAuth) signed by the CA in
 * ca_cert_path/ca_key_path for names (NULL-terminated, at most
 * AL_PKI_NAMES_MAX): each IPv4 or IPv6 literal becomes an IP SAN, anything
 * else a DNS SAN (letters, digits, '-', '.', and a leading "*." wildcard);
 * the subject CN is the first name. Files as al_pki_make_ca. Returns as
 * al_pki_make_ca, plus the errors of al_pki_check_ca for the CA files. */
_must_check_ int al_pki_make_leaf(const char *ca_cert_path, const char *ca_key_path, const char *const names[],
                                  int days, const char *cert_path, const char *key_path);

/* Whether cert_path/key_path are a usable CA: 0, or
 *   -ENOENT        a file is missing;
 *   -EBADMSG       a file is not a PEM certificate / private key;
 *   -EPERM         the key file is readable or writable by others than its owner;
 *   -EKEYREJECTED  the key is not the certificate's, it is not a CA, or its
 *                  self-signature does not verify;
 *   -EKEYEXPIRED   it is not valid now, or no longer min_left_s from now. */
_must_check_ int al_pki_check_ca(const char *cert_path, const char *key_path, int64_t min_left_s);

/* Whether cert_path/key_path are a usable leaf of the CA in ca_cert_path
 * (verified against that CA only, for TLS server use) whose SANs are exactly
 * names: 0, the errors of al_pki_check_ca (-EKEYREJECTED also when it does
 * not verify against the CA), or -EDOM when the SANs differ from names. */
_must_check_ int al_pki_check_leaf(const char *ca_cert_path, const char *cert_path, const char *key_path,
                                   const char *const names[], int64_t min_left_s);
