/* SPDX-License-Identifier: Apache-2.0 */
/* See x509.h. Every PEM block is read with the generic reader so that its
 * type is known before anything is decoded: a key pasted by mistake is
 * refused by name, never parsed. */
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>
#include <time.h>

#include "../base/util.h"
#include "x509.h"

#define PEM_BLOCKS_MAX 8     /* an 8 KiB input cannot hold many; stop early anyway */

struct pem_block {
    char *name, *header;
    unsigned char *data;
    long len;
};

static void pem_block_done(struct pem_block *b)
{
    OPENSSL_free(b->name);
    OPENSSL_free(b->header);
    OPENSSL_free(b->data);
    *b = (struct pem_block){ 0 };
}

/* Reads the next block: 1 with *b filled, 0 at the end, -EBADMSG. */
static int pem_next(BIO *bio, struct pem_block *b)
{
    ERR_clear_error();
    if (PEM_read_bio(bio, &b->name, &b->header, &b->data, &b->len) == 1)
        return 1;
    unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE ? 0 : -EBADMSG;
}

static int summarise(const unsigned char *der, long len, struct al_x509_info *ret)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, len);
    unsigned char *canon = NULL;
    BIO *mem = NULL;
    struct tm tm;
    int r = -EBADMSG;

    if (!x || p != der + len)
        goto out;
    /* The fingerprint is over the DER as OpenSSL re-encodes it, which is
     * what `openssl x509 -outform DER` writes. */
    int clen = i2d_X509(x, &canon);
    if (clen <= 0)
        goto out;
    const ASN1_TIME *na = X509_get0_notAfter(x);
    if (!na || ASN1_TIME_to_tm(na, &tm) != 1)
        goto out;
    mem = BIO_new(BIO_s_mem());
    if (!mem || X509_NAME_print_ex(mem, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) < 0)
        goto out;

    struct al_x509_info info = { 0 };
    unsigned char d[AL_SHA256_LEN];
    al_sha256(canon, (size_t) clen, d);
    al_hex(d, sizeof(d), info.fingerprint_sha256);
    char *text = NULL;
    long tlen = BIO_get_mem_data(mem, &text);
    size_t keep = tlen > 0 ? AL_MIN((size_t) tlen, sizeof(info.subject) - 1) : 0;
    if (keep)
        memcpy(info.subject, text, keep);
    info.subject[keep] = '\0';
    info.not_after_us = (int64_t) timegm(&tm) * 1000000;
    *ret = info;
    r = 0;
out:
    BIO_free(mem);
    OPENSSL_free(canon);
    X509_free(x);
    return r;
}

int al_x509_pem_one(const char *pem, size_t n, struct al_x509_info *ret)
{
    struct pem_block b = { 0 }, cert = { 0 };
    int ncert = 0, nblocks = 0, r;

    if (n > AL_X509_PEM_MAX)
        return -EMSGSIZE;
    BIO *bio = BIO_new_mem_buf(pem, (int) n);
    if (!bio)
        return -ENOMEM;
    while ((r = pem_next(bio, &b)) == 1) {
        nblocks++;
        if (strstr(b.name, "PRIVATE KEY")) {
            r = -EPERM;
            break;
        }
        if (strcmp(b.name, "CERTIFICATE") != 0 || nblocks > PEM_BLOCKS_MAX) {
            r = -EBADMSG;
            break;
        }
        if (++ncert > 1) {
            r = -E2BIG;
            break;
        }
        cert = b;
        b = (struct pem_block){ 0 };
    }
    pem_block_done(&b);
    BIO_free(bio);
    if (r == 0)
        r = ncert == 0 ? -ENOENT : summarise(cert.data, cert.len, ret);
    pem_block_done(&cert);
    return r;
}
