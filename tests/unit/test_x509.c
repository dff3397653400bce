/* SPDX-License-Identifier: Apache-2.0 */
/* tls/x509: the one-certificate PEM rule of the Tunnels API, and the
 * summary (fingerprint of the DER, RFC 2253 subject, notAfter). The
 * expected values were taken from the openssl CLI when the fixtures were
 * made: `openssl x509 -outform DER | sha256sum`, `-enddate`, `-subject
 * -nameopt RFC2253`. */
#include "al_test.h"

#include "lib/tls/x509.h"

/* EC P-256, self-signed, CA:TRUE, CN=airlock test CA, O=airlock, ten years. */
#define CERT_A                                                               \
    "-----BEGIN CERTIFICATE-----\n"                                          \
    "MIIBmTCCAUCgAwIBAgIBATAKBggqhkjOPQQDAjAsMRgwFgYDVQQDDA9haXJsb2Nr\n"     \
    "IHRlc3QgQ0ExEDAOBgNVBAoMB2FpcmxvY2swHhcNMjYxMTI1MjM0NjIyWhcNMzYx\n"     \
    "MTIyMjM0NjIyWjAsMRgwFgYDVQQDDA9haXJsb2NrIHRlc3QgQ0ExEDAOBgNVBAoM\n"     \
    "B2FpcmxvY2swWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATxBMWeBANdEzNPLmQ4\n"     \
    "MVOs8TJ5XfQZA6Zg3/ps7zLvupPvKgsq5tOUkQeh0Y2gBYVwhCl6bBKUIL0949zY\n"     \
    "MUK+o1MwUTAdBgNVHQ4EFgQUJxZuvJYiXfhxU1OpIkxb2ANAwlcwHwYDVR0jBBgw\n"     \
    "FoAUJxZuvJYiXfhxU1OpIkxb2ANAwlcwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjO\n"     \
    "PQQDAgNHADBEAiA9R2jdlQxEFtDlRFzCDDFIHrzZg4m2cUhOmI9dF2GsWAIgPo8/\n"     \
    "LLAHUNo6BQqY35U7fqzfvb1MpSDO64BCh42ym0w=\n"                             \
    "-----END CERTIFICATE-----\n"
#define CERT_A_SHA256 "f00db47d217a20f9782c5d76e02bdb2d6411ee429e531a3b9b59d3f3a6acc749"
#define CERT_A_NOT_AFTER_S INT64_C(2111010382)     /* 2036-11-22T23:46:22Z */

/* A second one, CN=second. */
#define CERT_B                                                               \
    "-----BEGIN CERTIFICATE-----\n"                                          \
    "MIIBeDCCAR2gAwIBAgIUQFhCi+oeWReHW89JSra3EAIcSS0wCgYIKoZIzj0EAwIw\n"     \
    "ETEPMA0GA1UEAwwGc2Vjb25kMB4XDTI2MTEyNTIzNDYyMloXDTI3MTEyNTIzNDYy\n"     \
    "MlowETEPMA0GA1UEAwwGc2Vjb25kMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"     \
    "R0bqUtNbnPhPE2p69SfZCxlblS1jhiB9Jq7j1i3ArMsirenNc8fLxxFVQ/rXiBXH\n"     \
    "TvQJln8z8RU87Igf2/8CmqNTMFEwHQYDVR0OBBYEFE2HAfpU365nDQo34chHA0cb\n"     \
    "414AMB8GA1UdIwQYMBaAFE2HAfpU365nDQo34chHA0cb414AMA8GA1UdEwEB/wQF\n"     \
    "MAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhALZwUucOjxiy6m/iI6xUSSF3kyzL5ZTs\n"     \
    "4JtkkIB2NUsmAiEA1vAjRZoskuRR5QjJ4RStTj7FCfJe62prRr0mdfndUVg=\n"         \
    "-----END CERTIFICATE-----\n"
#define CERT_B_SHA256 "6cbee074568be3d5e6f045f6da0b4dccd95f63cf51952d25e74a847127a7ba24"

/* Refused by its label, before its content is looked at: no real key here. */
#define KEY_BLOCK "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"

static int parse(const char *pem, struct al_x509_info *info)
{
    return al_x509_pem_one(pem, strlen(pem), info);
}

static void test_one_certificate(void **state)
{
    struct al_x509_info info;

    ASSERT_OK(parse(CERT_A, &info));
    ASSERT_STR_EQ(info.fingerprint_sha256, CERT_A_SHA256);
    ASSERT_STR_EQ(info.subject, "O=airlock,CN=airlock test CA");
    ASSERT_I64_EQ(info.not_after_us, CERT_A_NOT_AFTER_S * 1000000);

    ASSERT_OK(parse(CERT_B, &info));
    ASSERT_STR_EQ(info.fingerprint_sha256, CERT_B_SHA256);
    ASSERT_STR_EQ(info.subject, "CN=second");

    /* RFC 7468 explanatory text around the block, and CRLF line ends. */
    ASSERT_OK(parse("Subject: airlock test CA\nIssuer: itself\n" CERT_A "trailing words\n", &info));
    ASSERT_STR_EQ(info.fingerprint_sha256, CERT_A_SHA256);
    char crlf[4096] = "";
    for (const char *s = CERT_A; *s; s++) {
        size_t n = strlen(crlf);
        if (*s == '\n')
            crlf[n++] = '\r';
        crlf[n++] = *s;
        crlf[n] = '\0';
    }
    ASSERT_OK(parse(crlf, &info));
    ASSERT_STR_EQ(info.fingerprint_sha256, CERT_A_SHA256);
}

static void test_refused(void **state)
{
    struct al_x509_info info = { .subject = "untouched" };

    ASSERT_RET(parse(CERT_A CERT_B, &info), -E2BIG);
    ASSERT_RET(parse(CERT_A CERT_A, &info), -E2BIG);
    ASSERT_RET(parse(CERT_A KEY_BLOCK, &info), -EPERM);
    ASSERT_RET(parse(KEY_BLOCK CERT_A, &info), -EPERM);
    ASSERT_RET(parse("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n" CERT_A, &info), -EPERM);
    ASSERT_RET(parse("", &info), -ENOENT);
    ASSERT_RET(parse("just some text\n", &info), -ENOENT);
    /* Other block types, a damaged body, a body that is not a certificate. */
    ASSERT_RET(parse("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", &info), -EBADMSG);
    ASSERT_RET(parse("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", &info), -EBADMSG);
    ASSERT_RET(parse("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &info), -EBADMSG);
    ASSERT_RET(parse("-----BEGIN CERTIFICATE-----\nMIIBmTCCAUCgAwIBAgIBATAK\n-----END CERTIFICATE-----\n", &info),
               -EBADMSG);
    ASSERT_RET(parse("-----BEGIN CERTIFICATE-----\nMIIBmTCC\n", &info), -EBADMSG);   /* no END line */
    ASSERT_STR_EQ(info.subject, "untouched");
}

static void test_size_limit(void **state)
{
    struct al_x509_info info;
    size_t n = AL_X509_PEM_MAX + 1;
    char *big = malloc(n + 1);

    assert_non_null(big);
    /* The certificate padded with explanatory text: exactly at the limit it
     * is accepted, one byte over it is not even looked at. */
    memset(big, 'x', n);
    big[0] = '\n';
    memcpy(big + AL_X509_PEM_MAX - strlen(CERT_A), CERT_A, strlen(CERT_A));
    big[AL_X509_PEM_MAX - strlen(CERT_A) - 1] = '\n';
    ASSERT_OK(al_x509_pem_one(big, AL_X509_PEM_MAX, &info));
    ASSERT_STR_EQ(info.fingerprint_sha256, CERT_A_SHA256);
    ASSERT_RET(al_x509_pem_one(big, n, &info), -EMSGSIZE);
    free(big);

    /* Only n bytes are read: a certificate cut short is not one. */
    ASSERT_RET(al_x509_pem_one(CERT_A, strlen(CERT_A) - 30, &info), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_certificate),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
