/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "../base/util.h"
#include "crypto.h"

void al_sha256(const void *data, size_t n, unsigned char out[AL_SHA256_LEN])
{
    unsigned int len = AL_SHA256_LEN;
    if (EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) != 1)
        abort();
}

void al_sha256_hex(const char *s, char out[2 * AL_SHA256_LEN + 1])
{
    unsigned char d[AL_SHA256_LEN];
    al_sha256(s, strlen(s), d);
    al_hex(d, sizeof(d), out);
}

void al_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                    unsigned char out[AL_SHA256_LEN])
{
    unsigned int len = AL_SHA256_LEN;
    if (!HMAC(EVP_sha256(), key, (int) keylen, data, n, out, &len))
        abort();
}

bool al_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
