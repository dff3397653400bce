/* SPDX-License-Identifier: Apache-2.0 */
/* tls/pki: the CA and leaf `airlock up` makes for its tunnel. The leaf is
 * verified here with OpenSSL directly (a store holding only the CA, the
 * TLS-server purpose, the host or IP to match), independently of the
 * module's own check; then the check's refusals one by one. */
#include "al_test.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include "lib/tls/pki.h"

struct files {
    char dir[256];
    char ca[300], ca_key[300], leaf[300], leaf_key[300], other[300], other_key[300];
};

static const char *const names[] = { "*.0123456789abcdef.tunnels.localhost", "localhost", "127.0.0.1", "::1", NULL };

static int setup(void **state)
{
    struct files *f = calloc(1, sizeof(*f));

    al_test_mkdtemp(f->dir);
    snprintf(f->ca, sizeof(f->ca), "%s/ca.pem", f->dir);
    snprintf(f->ca_key, sizeof(f->ca_key), "%s/ca.key", f->dir);
    snprintf(f->leaf, sizeof(f->leaf), "%s/leaf.pem", f->dir);
    snprintf(f->leaf_key, sizeof(f->leaf_key), "%s/leaf.key", f->dir);
    snprintf(f->other, sizeof(f->other), "%s/other-ca.pem", f->dir);
    snprintf(f->other_key, sizeof(f->other_key), "%s/other-ca.key", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct files *f = *state;

    al_test_rm_rf(f->dir);
    free(f);
    return 0;
}

static X509 *read_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

/* OpenSSL's own verdict: 1 when leaf chains to ca alone and matches host
 * (or ip when host is NULL) for a TLS server. */
static int openssl_verify(const char *ca_path, const char *leaf_path, const char *host, const char *ip)
{
    X509 *ca = read_cert(ca_path), *leaf = read_cert(leaf_path);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();

    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_SSL_SERVER);
    if (host)
        X509_VERIFY_PARAM_set1_host(vp, host, 0);
    else
        X509_VERIFY_PARAM_set1_ip_asc(vp, ip);
    int ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(leaf);
    return ok;
}

static int mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int) (st.st_mode & 07777);
}

static void test_ca_and_leaf_verify(void **state)
{
    struct files *f = *state;

    ASSERT_OK(al_pki_make_ca("airlock test CA", 30, f->ca, f->ca_key));
    ASSERT_OK(al_pki_make_leaf(f->ca, f->ca_key, names, 30, f->leaf, f->leaf_key));
    ASSERT_I64_EQ(mode_of(f->ca_key), 0600);
    ASSERT_I64_EQ(mode_of(f->leaf_key), 0600);
    ASSERT_I64_EQ(mode_of(f->ca), 0644);
    ASSERT_I64_EQ(mode_of(f->leaf), 0644);

    /* OpenSSL, independently: every SAN matches, other names do not. */
    ASSERT_I64_EQ(openssl_verify(f->ca, f->leaf, "tickets.0123456789abcdef.tunnels.localhost", NULL), 1);
    ASSERT_I64_EQ(openssl_verify(f->ca, f->leaf, "localhost", NULL), 1);
    ASSERT_I64_EQ(openssl_verify(f->ca, f->leaf, NULL, "127.0.0.1"), 1);
    ASSERT_I64_EQ(openssl_verify(f->ca, f->leaf, NULL, "::1"), 1);
    ASSERT_I64_EQ(openssl_verify(f->ca, f->leaf, "a.b.0123456789abcdef.tunnels.localhost", NULL), 0);
    ASSERT_I64_EQ(openssl_verify(f->ca, f->leaf, "tickets.fedcba9876543210.tunnels.localhost", NULL), 0);
    ASSERT_I64_EQ(openssl_verify(f->ca, f->leaf, NULL, "127.0.0.2"), 0);
    /* The CA is not a server certificate of its own, and the leaf is no CA. */
    X509 *ca = read_cert(f->ca), *leaf = read_cert(f->leaf);
    ASSERT_I64_EQ(X509_check_ca(ca), 1);
    ASSERT_I64_EQ(X509_check_ca(leaf), 0);
    X509_free(ca);
    X509_free(leaf);

    /* And the module's own checks agree. */
    ASSERT_OK(al_pki_check_ca(f->ca, f->ca_key, 86400));
    ASSERT_OK(al_pki_check_leaf(f->ca, f->leaf, f->leaf_key, names, 86400));
    /* The order of the names does not matter. */
    const char *const shuffled[] = { "::1", "127.0.0.1", "localhost", "*.0123456789abcdef.tunnels.localhost", NULL };
    ASSERT_OK(al_pki_check_leaf(f->ca, f->leaf, f->leaf_key, shuffled, 0));
}

static void test_check_refusals(void **state)
{
    struct files *f = *state;

    ASSERT_OK(al_pki_make_ca("airlock test CA", 30, f->ca, f->ca_key));
    ASSERT_OK(al_pki_make_leaf(f->ca, f->ca_key, names, 2, f->leaf, f->leaf_key));
    ASSERT_OK(al_pki_make_ca("another CA", 30, f->other, f->other_key));

    /* Missing files. */
    ASSERT_RET(al_pki_check_ca(f->ca, "/nonexistent/ca.key", 0), -ENOENT);
    ASSERT_RET(al_pki_check_leaf("/nonexistent/ca.pem", f->leaf, f->leaf_key, names, 0), -ENOENT);
    /* Another CA: the leaf does not verify against it. */
    ASSERT_RET(al_pki_check_leaf(f->other, f->leaf, f->leaf_key, names, 0), -EKEYREJECTED);
    /* A key that is not the certificate's. */
    ASSERT_RET(al_pki_check_ca(f->ca, f->other_key, 0), -EKEYREJECTED);
    ASSERT_RET(al_pki_check_leaf(f->ca, f->leaf, f->ca_key, names, 0), -EKEYREJECTED);
    /* A leaf is no CA. */
    ASSERT_RET(al_pki_check_ca(f->leaf, f->leaf_key, 0), -EKEYREJECTED);
    /* Other names: one missing, one more, one different. */
    const char *const fewer[] = { "localhost", "127.0.0.1", "::1", NULL };
    const char *const more[] = { "*.0123456789abcdef.tunnels.localhost", "localhost", "127.0.0.1", "::1", "x.test", NULL };
    const char *const other[] = { "*.fedcba9876543210.tunnels.localhost", "localhost", "127.0.0.1", "::1", NULL };
    ASSERT_RET(al_pki_check_leaf(f->ca, f->leaf, f->leaf_key, fewer, 0), -EDOM);
    ASSERT_RET(al_pki_check_leaf(f->ca, f->leaf, f->leaf_key, more, 0), -EDOM);
    ASSERT_RET(al_pki_check_leaf(f->ca, f->leaf, f->leaf_key, other, 0), -EDOM);
    /* Valid for two days: not for three more. */
    ASSERT_OK(al_pki_check_leaf(f->ca, f->leaf, f->leaf_key, names, 86400));
    ASSERT_RET(al_pki_check_leaf(f->ca, f->leaf, f->leaf_key, names, 3 * 86400), -EKEYEXPIRED);
    ASSERT_RET(al_pki_check_ca(f->ca, f->ca_key, 31 * 86400), -EKEYEXPIRED);
    /* A key others can read is refused. */
    assert_int_equal(chmod(f->leaf_key, 0644), 0);
    ASSERT_RET(al_pki_check_leaf(f->ca, f->leaf, f->leaf_key, names, 0), -EPERM);
    assert_int_equal(chmod(f->leaf_key, 0600), 0);
    /* A file that is not PEM. */
    FILE *fp = fopen(f->other, "w");
    fputs("not a certificate\n", fp);
    fclose(fp);
    ASSERT_RET(al_pki_check_ca(f->other, f->other_key, 0), -EBADMSG);
    /* A new CA in the same files: the old leaf no longer verifies. */
    ASSERT_OK(al_pki_make_ca("airlock test CA", 30, f->ca, f->ca_key));
    ASSERT_RET(al_pki_check_leaf(f->ca, f->leaf, f->leaf_key, names, 0), -EKEYREJECTED);
}

static void test_bad_arguments(void **state)
{
    struct files *f = *state;
    const char *const none[] = { NULL };
    const char *const comma[] = { "a.test,DNS:evil.test", NULL };
    const char *const empty_label[] = { "a..test", NULL };
    const char *const mid_wildcard[] = { "a.*.test", NULL };

    ASSERT_RET(al_pki_make_ca("", 30, f->ca, f->ca_key), -EINVAL);
    ASSERT_RET(al_pki_make_ca("x", 0, f->ca, f->ca_key), -EINVAL);
    ASSERT_OK(al_pki_make_ca("x", 30, f->ca, f->ca_key));
    ASSERT_RET(al_pki_make_leaf(f->ca, f->ca_key, none, 30, f->leaf, f->leaf_key), -EINVAL);
    ASSERT_RET(al_pki_make_leaf(f->ca, f->ca_key, comma, 30, f->leaf, f->leaf_key), -EINVAL);
    ASSERT_RET(al_pki_make_leaf(f->ca, f->ca_key, empty_label, 30, f->leaf, f->leaf_key), -EINVAL);
    ASSERT_RET(al_pki_make_leaf(f->ca, f->ca_key, mid_wildcard, 30, f->leaf, f->leaf_key), -EINVAL);
    /* Nothing was written for the refused leaves. */
    struct stat st;
    ASSERT_I64_EQ(stat(f->leaf, &st), -1);
    ASSERT_I64_EQ(stat(f->leaf_key, &st), -1);
    /* A CA whose key others can read is not used to sign. */
    assert_int_equal(chmod(f->ca_key, 0640), 0);
    ASSERT_RET(al_pki_make_leaf(f->ca, f->ca_key, names, 30, f->leaf, f->leaf_key), -EPERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ca_and_leaf_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
