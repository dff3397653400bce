/* SPDX-License-Identifier: Apache-2.0 */
/* See pki.h. Keys are made with EVP_EC_gen, certificates are built field
 * by field (the SANs as GENERAL_NAMEs, never through a config string, so a
 * name cannot smuggle in another entry), and each file is written to a
 * temporary name with its final mode before it is renamed into place. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "../base/util.h"
#include "pki.h"

#define PKI_BACKDATE_S 3600        /* clocks of the peers may be a little behind */
#define PKI_DAYS_MAX   3650

static void x509_freep(X509 **x) { X509_free(*x); }
static void pkey_freep(EVP_PKEY **k) { EVP_PKEY_free(*k); }
static void bio_freep(BIO **b) { BIO_free(*b); }
#define _cleanup_x509_ _cleanup_(x509_freep)
#define _cleanup_pkey_ _cleanup_(pkey_freep)
#define _cleanup_bio_ _cleanup_(bio_freep)

/* ---- names -------------------------------------------------------------- */

struct pki_name {
    bool ip;
    unsigned char addr[16];
    size_t addr_len;               /* 4 or 16 for an IP */
    const char *dns;               /* borrowed */
};

static bool dns_ok(const char *s)
{
    size_t n = strlen(s);
    const char *p = s;

    if (n == 0 || n > 253)
        return false;
    if (!strncmp(p, "*.", 2))
        p += 2;
    if (!*p || *p == '.' || *p == '-')
        return false;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '.'))
            return false;
    return s[n - 1] != '.' && !strstr(s, "..");
}

static int name_parse(const char *s, struct pki_name *ret)
{
    *ret = (struct pki_name){ 0 };
    if (inet_pton(AF_INET, s, ret->addr) == 1) {
        ret->ip = true;
        ret->addr_len = 4;
    } else if (inet_pton(AF_INET6, s, ret->addr) == 1) {
        ret->ip = true;
        ret->addr_len = 16;
    } else if (dns_ok(s)) {
        ret->dns = s;
    } else {
        return -EINVAL;
    }
    return 0;
}

static int names_parse(const char *const names[], struct pki_name out[AL_PKI_NAMES_MAX], size_t *ret_n)
{
    size_t n = 0;

    for (; names && names[n]; n++)
        if (n == AL_PKI_NAMES_MAX || name_parse(names[n], &out[n]) < 0)
            return -EINVAL;
    if (n == 0)
        return -EINVAL;
    *ret_n = n;
    return 0;
}

static bool name_eq(const struct pki_name *a, const GENERAL_NAME *g)
{
    if (a->ip) {
        if (g->type != GEN_IPADD)
            return false;
        return (size_t) ASN1_STRING_length(g->d.iPAddress) == a->addr_len &&
               !memcmp(ASN1_STRING_get0_data(g->d.iPAddress), a->addr, a->addr_len);
    }
    if (g->type != GEN_DNS)
        return false;
    size_t n = strlen(a->dns);
    return (size_t) ASN1_STRING_length(g->d.dNSName) == n &&
           !strncasecmp((const char *) ASN1_STRING_get0_data(g->d.dNSName), a->dns, n);
}

static GENERAL_NAMES *names_build(const struct pki_name *names, size_t n)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();

    for (size_t i = 0; gens && i < n; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_STRING *v = names[i].ip ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
        bool ok = g && v;
        if (ok)
            ok = names[i].ip ? ASN1_OCTET_STRING_set(v, names[i].addr, (int) names[i].addr_len) == 1
                             : ASN1_STRING_set(v, names[i].dns, (int) strlen(names[i].dns)) == 1;
        if (ok) {
            GENERAL_NAME_set0_value(g, names[i].ip ? GEN_IPADD : GEN_DNS, v);
            v = NULL;
            ok = sk_GENERAL_NAME_push(gens, g) > 0;
        }
        if (!ok) {
            ASN1_STRING_free(v);
            GENERAL_NAME_free(g);
            GENERAL_NAMES_free(gens);
            return NULL;
        }
    }
    return gens;
}

/* ---- files -------------------------------------------------------------- */

/* PEM of a certificate or (unencrypted PKCS#8) key, written to path. */
static int pem_write(const char *path, X509 *x, EVP_PKEY *k)
{
    _cleanup_bio_ BIO *mem = BIO_new(BIO_s_mem());
    char *data;

    if (!mem)
        return -ENOMEM;
    if ((x && PEM_write_bio_X509(mem, x) != 1) ||
        (k && PEM_write_bio_PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL) != 1))
        return -EIO;
    long n = BIO_get_mem_data(mem, &data);
    int r = al_file_replace(path, data, (size_t) n, k ? 0600 : 0644);
    if (k)
        OPENSSL_cleanse(data, (size_t) n);
    return r;
}

static int cert_read(const char *path, X509 **ret)
{
    _cleanup_bio_ BIO *b = BIO_new_file(path, "r");

    if (!b)
        return access(path, F_OK) < 0 ? -ENOENT : -EIO;
    *ret = PEM_read_bio_X509(b, NULL, NULL, NULL);
    ERR_clear_error();
    return *ret ? 0 : -EBADMSG;
}

static int key_read(const char *path, EVP_PKEY **ret)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return -errno;
    if (st.st_mode & 077)
        return -EPERM;
    _cleanup_bio_ BIO *b = BIO_new_file(path, "r");
    if (!b)
        return -EIO;
    *ret = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    ERR_clear_error();
    return *ret ? 0 : -EBADMSG;
}

/* ---- building ----------------------------------------------------------- */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok ? 0 : -EIO;
}

/* A certificate with a random 127-bit serial, subject CN=cn, the validity
 * and the public key of key; issuer and extensions are the caller's. */
static X509 *cert_new(const char *cn, int days, EVP_PKEY *key)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    char cut[65];
    bool ok = x && serial;

    (void) snprintf(cut, sizeof(cut), "%s", cn);
    ok = ok && X509_set_version(x, X509_VERSION_3) == 1 &&
         BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
         BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) &&
         X509_gmtime_adj(X509_getm_notBefore(x), -PKI_BACKDATE_S) &&
         X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) &&
         X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8, (const unsigned char *) cut, -1,
                                    -1, 0) == 1 &&
         X509_set_pubkey(x, key) == 1;
    BN_free(serial);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int al_pki_make_ca(const char *common_name, int days, const char *cert_path, const char *key_path)
{
    if (!common_name || !*common_name || days < 1 || days > PKI_DAYS_MAX)
        return -EINVAL;
    _cleanup_pkey_ EVP_PKEY *key = EVP_EC_gen("P-256");
    _cleanup_x509_ X509 *x = key ? cert_new(common_name, days, key) : NULL;
    if (!x) {
        ERR_clear_error();
        return -ENOMEM;
    }
    int r = X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 ? 0 : -EIO;
    if (r == 0)
        r = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    if (r == 0)
        r = add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (r == 0)
        r = add_ext(x, x, NID_subject_key_identifier, "hash");
    if (r == 0 && X509_sign(x, key, EVP_sha256()) <= 0)
        r = -EIO;
    ERR_clear_error();
    if (r == 0)
        r = pem_write(key_path, NULL, key);
    return r < 0 ? r : pem_write(cert_path, x, NULL);
}

int al_pki_make_leaf(const char *ca_cert_path, const char *ca_key_path, const char *const names[], int days,
                     const char *cert_path, const char *key_path)
{
    struct pki_name parsed[AL_PKI_NAMES_MAX];
    size_t n;

    if (days < 1 || days > PKI_DAYS_MAX || names_parse(names, parsed, &n) < 0)
        return -EINVAL;
    int r = al_pki_check_ca(ca_cert_path, ca_key_path, 0);
    if (r < 0)
        return r;
    _cleanup_x509_ X509 *ca = NULL;
    _cleanup_pkey_ EVP_PKEY *ca_key = NULL;
    if ((r = cert_read(ca_cert_path, &ca)) < 0 || (r = key_read(ca_key_path, &ca_key)) < 0)
        return r;
    _cleanup_pkey_ EVP_PKEY *key = EVP_EC_gen("P-256");
    _cleanup_x509_ X509 *x = key ? cert_new(names[0], days, key) : NULL;
    if (!x) {
        ERR_clear_error();
        return -ENOMEM;
    }
    GENERAL_NAMES *gens = names_build(parsed, n);
    r = gens && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -EIO;
    GENERAL_NAMES_free(gens);
    if (r == 0)
        r = X509_set_issuer_name(x, X509_get_subject_name(ca)) == 1 ? 0 : -EIO;
    if (r == 0)
        r = add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE");
    if (r == 0)
        r = add_ext(x, ca, NID_key_usage, "critical,digitalSignature");
    if (r == 0)
        r = add_ext(x, ca, NID_ext_key_usage, "serverAuth");
    if (r == 0)
        r = add_ext(x, ca, NID_subject_key_identifier, "hash");
    if (r == 0)
        r = add_ext(x, ca, NID_authority_key_identifier, "keyid:always");
    if (r == 0 && X509_sign(x, ca_key, EVP_sha256()) <= 0)
        r = -EIO;
    ERR_clear_error();
    if (r == 0)
        r = pem_write(key_path, NULL, key);
    return r < 0 ? r : pem_write(cert_path, x, NULL);
}

/* ---- checking ----------------------------------------------------------- */

/* -EKEYEXPIRED unless x is valid now and still min_left_s from now. */
static int check_times(X509 *x, int64_t min_left_s)
{
    time_t now = time(NULL), later = now + (time_t) min_left_s;

    if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0 || X509_cmp_time(X509_get0_notAfter(x), &later) <= 0)
        return -EKEYEXPIRED;
    return 0;
}

/* Reads a certificate and its key, checks they belong together and the
 * times. */
static int load_pair(const char *cert_path, const char *key_path, int64_t min_left_s, X509 **ret_x)
{
    _cleanup_x509_ X509 *x = NULL;
    _cleanup_pkey_ EVP_PKEY *k = NULL;
    int r = cert_read(cert_path, &x);

    if (r < 0 || (r = key_read(key_path, &k)) < 0)
        return r;
    if (X509_check_private_key(x, k) != 1) {
        ERR_clear_error();
        return -EKEYREJECTED;
    }
    r = check_times(x, min_left_s);
    if (r == 0)
        *ret_x = TAKE_PTR(x);
    return r;
}

int al_pki_check_ca(const char *cert_path, const char *key_path, int64_t min_left_s)
{
    _cleanup_x509_ X509 *x = NULL;
    int r = load_pair(cert_path, key_path, min_left_s, &x);

    if (r < 0)
        return r;
    EVP_PKEY *pub = X509_get0_pubkey(x);
    r = X509_check_ca(x) >= 1 && pub && X509_verify(x, pub) == 1 ? 0 : -EKEYREJECTED;
    ERR_clear_error();
    return r;
}

/* Verifies x against ca alone, for TLS server use, at the current time. */
static int verify_with(X509 *ca, X509 *x)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int r = -ENOMEM;

    if (store && ctx && X509_STORE_add_cert(store, ca) == 1 && X509_STORE_CTX_init(ctx, store, x, NULL) == 1 &&
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER) == 1)
        r = X509_verify_cert(ctx) == 1 ? 0 : -EKEYREJECTED;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return r;
}

/* 0 when x's SANs are exactly names (as a set), else -EDOM. */
static int check_names(X509 *x, const struct pki_name *names, size_t n)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int count = gens ? sk_GENERAL_NAME_num(gens) : 0, r = 0;

    for (int i = 0; i < count && r == 0; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = name_eq(&names[j], sk_GENERAL_NAME_value(gens, i));
        if (!found)
            r = -EDOM;
    }
    for (size_t j = 0; j < n && r == 0; j++) {
        bool found = false;
        for (int i = 0; i < count && !found; i++)
            found = name_eq(&names[j], sk_GENERAL_NAME_value(gens, i));
        if (!found)
            r = -EDOM;
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return r;
}

int al_pki_check_leaf(const char *ca_cert_path, const char *cert_path, const char *key_path,
                      const char *const names[], int64_t min_left_s)
{
    struct pki_name parsed[AL_PKI_NAMES_MAX];
    _cleanup_x509_ X509 *ca = NULL, *x = NULL;
    size_t n;

    if (names_parse(names, parsed, &n) < 0)
        return -EINVAL;
    int r = cert_read(ca_cert_path, &ca);
    if (r < 0 || (r = load_pair(cert_path, key_path, min_left_s, &x)) < 0)
        return r;
    r = check_times(ca, min_left_s);
    if (r == 0)
        r = verify_with(ca, x);
    return r < 0 ? r : check_names(x, parsed, n);
}
