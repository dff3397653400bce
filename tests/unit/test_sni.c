/* SPDX-License-Identifier: Apache-2.0 */
/* relay/sni: the ClientHello peek against real ClientHellos made by an
 * OpenSSL client writing into a memory BIO (SNI, ALPN, a post-quantum-sized
 * extension that spans records, re-fragmented into many small records, fed
 * one byte at a time), and against hand-built malformed ones. */
#include "al_test.h"

#include <openssl/ssl.h>

#include "relay/sni.h"

static uint8_t scratch[RELAY_HELLO_MAX + 4];

struct bytes {
    uint8_t *p;
    size_t n;
};

static int add_big_ext(SSL *s, unsigned int ext_type, unsigned int context, const unsigned char **out,
                       size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    size_t n = (size_t) (uintptr_t) arg;
    unsigned char *b = malloc(n);
    memset(b, 0xa5, n);
    *out = b;
    *outlen = n;
    return 1;
}

static void free_big_ext(SSL *s, unsigned int ext_type, unsigned int context, const unsigned char *out, void *arg)
{
    free((void *) out);
}

/* The bytes an OpenSSL client sends first, for sni (NULL = none), alpn
 * (wire format, NULL = none) and an extra extension of extra bytes. */
static struct bytes real_hello(const char *sni, const char *alpn, size_t alpnlen, size_t extra)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    if (extra)
        assert_int_equal(SSL_CTX_add_custom_ext(ctx, 0xfe42, SSL_EXT_CLIENT_HELLO, add_big_ext, free_big_ext,
                                                (void *) (uintptr_t) extra, NULL, NULL), 1);
    SSL *s = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(s, rb, wb);
    if (sni)
        assert_int_equal(SSL_set_tlsext_host_name(s, sni), 1);
    if (alpn)
        assert_int_equal(SSL_set_alpn_protos(s, (const unsigned char *) alpn, (unsigned) alpnlen), 0);
    assert_int_equal(SSL_connect(s), -1);
    assert_int_equal(SSL_get_error(s, -1), SSL_ERROR_WANT_READ);
    char *data;
    long n = BIO_get_mem_data(wb, &data);
    assert_true(n > 0);
    struct bytes b = { malloc((size_t) n), (size_t) n };
    memcpy(b.p, data, (size_t) n);
    SSL_free(s);
    SSL_CTX_free(ctx);
    return b;
}

/* Re-wraps the handshake bytes of a one-record-or-more hello into records
 * of at most chunk bytes. */
static struct bytes refragment(struct bytes in, size_t chunk)
{
    uint8_t *hs = malloc(in.n);
    size_t hn = 0;
    for (size_t pos = 0; pos + 5 <= in.n;) {
        size_t rl = (size_t) in.p[pos + 3] << 8 | in.p[pos + 4];
        memcpy(hs + hn, in.p + pos + 5, rl);
        hn += rl;
        pos += 5 + rl;
    }
    struct bytes out = { malloc(hn + 5 * (hn / chunk + 1)), 0 };
    for (size_t off = 0; off < hn; off += chunk) {
        size_t k = AL_MIN(chunk, hn - off);
        uint8_t *r = out.p + out.n;
        r[0] = 22, r[1] = 3, r[2] = 1, r[3] = (uint8_t) (k >> 8), r[4] = (uint8_t) k;
        memcpy(r + 5, hs + off, k);
        out.n += 5 + k;
    }
    free(hs);
    return out;
}

static void test_real_sni_alpn(void **state)
{
    struct bytes b = real_hello("Docs.0123456789abcdef.Tunnel.TEST", "\x08http/1.1\x02h2", 12, 0);
    struct relay_hello h;

    ASSERT_I64_EQ(relay_sni_parse(b.p, b.n, scratch, sizeof(scratch), &h), (int64_t) b.n);
    ASSERT_STR_EQ(h.sni, "docs.0123456789abcdef.tunnel.test");
    assert_true(h.has_alpn);
    ASSERT_STR_EQ(h.alpn, "http/1.1");
    ASSERT_I64_EQ(h.records, 1);
    free(b.p);
}

static void test_real_no_sni(void **state)
{
    struct bytes b = real_hello(NULL, NULL, 0, 0);
    struct relay_hello h;

    ASSERT_I64_EQ(relay_sni_parse(b.p, b.n, scratch, sizeof(scratch), &h), (int64_t) b.n);
    ASSERT_STR_EQ(h.sni, "");
    assert_false(h.has_alpn);
    free(b.p);
}

/* Every proper prefix is -EAGAIN (TCP segments of any size), the whole is
 * a success, and bytes after the hello (the client's next flight) are not
 * the parser's business. */
static void test_real_byte_by_byte(void **state)
{
    struct bytes b = real_hello("a.b.example", "\x02h2", 3, 0);
    struct relay_hello h;

    for (size_t n = 0; n < b.n; n++)
        ASSERT_RET(relay_sni_parse(b.p, n, scratch, sizeof(scratch), &h), -EAGAIN);
    uint8_t *more = malloc(b.n + 10);
    memcpy(more, b.p, b.n);
    memset(more + b.n, 0x17, 10);
    ASSERT_I64_EQ(relay_sni_parse(more, b.n + 10, scratch, sizeof(scratch), &h), (int64_t) b.n);
    ASSERT_STR_EQ(h.sni, "a.b.example");
    ASSERT_STR_EQ(h.alpn, "h2");
    free(more);
    free(b.p);
}

/* A post-quantum-sized key share makes the hello larger than one record:
 * OpenSSL splits it and the parser reassembles. */
static void test_real_large_extension(void **state)
{
    struct bytes b = real_hello("docs.x.test", NULL, 0, 20000);
    struct relay_hello h;

    assert_true(b.n > 20000);
    ASSERT_I64_EQ(relay_sni_parse(b.p, b.n, scratch, sizeof(scratch), &h), (int64_t) b.n);
    ASSERT_STR_EQ(h.sni, "docs.x.test");
    ASSERT_I64_EQ(h.records, 2);
    for (size_t n = 1; n < b.n; n += 997)
        ASSERT_RET(relay_sni_parse(b.p, n, scratch, sizeof(scratch), &h), -EAGAIN);
    free(b.p);
}

static void test_real_many_records(void **state)
{
    struct bytes b = real_hello("docs.x.test", "\x08http/1.1", 9, 1200);
    struct bytes f = refragment(b, 7);
    struct relay_hello h;

    ASSERT_I64_EQ(relay_sni_parse(f.p, f.n, scratch, sizeof(scratch), &h), (int64_t) f.n);
    ASSERT_STR_EQ(h.sni, "docs.x.test");
    ASSERT_STR_EQ(h.alpn, "http/1.1");
    assert_true(h.records > 100);
    for (size_t n = 0; n < f.n; n += 13)
        ASSERT_RET(relay_sni_parse(f.p, n, scratch, sizeof(scratch), &h), -EAGAIN);
    free(f.p);
    free(b.p);
}

/* ---- hand-built hellos ---- */

struct hb {
    uint8_t b[70000];
    size_t n;
};

static void put(struct hb *x, const void *p, size_t n)
{
    assert_true(x->n + n <= sizeof(x->b));
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static void put16(struct hb *x, size_t v)
{
    uint8_t b[2] = { (uint8_t) (v >> 8), (uint8_t) v };
    put(x, b, 2);
}

/* A record-wrapped ClientHello whose extensions block is exts (raw). */
static void build(struct hb *out, const uint8_t *exts, size_t extlen, bool with_ext_block)
{
    struct hb body = { .n = 0 };
    uint8_t rnd[32] = { 0 };
    put(&body, "\x03\x03", 2);
    put(&body, rnd, 32);
    put(&body, "\x00", 1);                       /* session id */
    put(&body, "\x00\x02\x13\x01", 4);           /* one cipher suite */
    put(&body, "\x01\x00", 2);                   /* null compression */
    if (with_ext_block) {
        put16(&body, extlen);
        put(&body, exts, extlen);
    }
    out->n = 0;
    uint8_t rh[5] = { 22, 3, 1, (uint8_t) ((body.n + 4) >> 8), (uint8_t) (body.n + 4) };
    put(out, rh, 5);
    uint8_t hh[4] = { 1, (uint8_t) (body.n >> 16), (uint8_t) (body.n >> 8), (uint8_t) body.n };
    put(out, hh, 4);
    put(out, body.b, body.n);
}

static size_t sni_ext(uint8_t *o, const char *name)
{
    size_t nl = strlen(name);
    uint8_t *p = o;
    *p++ = 0, *p++ = 0;                                         /* type server_name */
    *p++ = (uint8_t) ((nl + 5) >> 8), *p++ = (uint8_t) (nl + 5);
    *p++ = (uint8_t) ((nl + 3) >> 8), *p++ = (uint8_t) (nl + 3);
    *p++ = 0;
    *p++ = (uint8_t) (nl >> 8), *p++ = (uint8_t) nl;
    memcpy(p, name, nl);
    return (size_t) (p - o) + nl;
}

static int64_t parse_built(const uint8_t *exts, size_t n, struct relay_hello *h)
{
    static struct hb x;
    build(&x, exts, n, true);
    return relay_sni_parse(x.b, x.n, scratch, sizeof(scratch), h);
}

static void test_built_ok_and_minimal(void **state)
{
    uint8_t e[300];
    struct relay_hello h;
    static struct hb x;

    size_t n = sni_ext(e, "Route.ABC.example");
    assert_true(parse_built(e, n, &h) > 0);
    ASSERT_STR_EQ(h.sni, "route.abc.example");
    build(&x, NULL, 0, false);                    /* no extensions block at all */
    ASSERT_I64_EQ(relay_sni_parse(x.b, x.n, scratch, sizeof(scratch), &h), (int64_t) x.n);
    ASSERT_STR_EQ(h.sni, "");
}

static void test_built_bad_names(void **state)
{
    static const char *const bad[] = { "a..b", ".a.b", "a.b.", "a b.c", "a\x01.b", "a/b.c", "a.b:443" };
    uint8_t e[600];
    struct relay_hello h;

    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        size_t n = sni_ext(e, bad[i]);
        ASSERT_RET(parse_built(e, n, &h), -EBADMSG);
    }
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ASSERT_RET(parse_built(e, sni_ext(e, longname), &h), -EBADMSG);
}

static void test_built_duplicates_and_lengths(void **state)
{
    uint8_t e[600];
    struct relay_hello h;
    size_t n = sni_ext(e, "a.example");

    memcpy(e + n, e, n);                                 /* server_name twice */
    ASSERT_RET(parse_built(e, 2 * n, &h), -EBADMSG);
    n = sni_ext(e, "a.example");
    e[3]++;                                              /* extension longer than its list */
    ASSERT_RET(parse_built(e, n, &h), -EBADMSG);
    n = sni_ext(e, "a.example");
    e[8] = 200;                                          /* name length beyond the list */
    ASSERT_RET(parse_built(e, n, &h), -EBADMSG);
    n = sni_ext(e, "a.example");
    ASSERT_RET(parse_built(e, n - 1, &h), -EBADMSG);     /* extension cut short */
    /* ALPN with an empty protocol name */
    const uint8_t alpn[] = { 0, 16, 0, 4, 0, 2, 0, 'x' };
    ASSERT_RET(parse_built(alpn, sizeof(alpn), &h), -EBADMSG);
}

static void test_built_record_layer(void **state)
{
    static struct hb x;
    uint8_t e[300];
    struct relay_hello h;
    size_t n = sni_ext(e, "a.example");

    build(&x, e, n, true);
    x.b[0] = 23;                                          /* application data, not handshake */
    ASSERT_RET(relay_sni_parse(x.b, x.n, scratch, sizeof(scratch), &h), -EBADMSG);
    ASSERT_RET(relay_sni_parse(x.b, 1, scratch, sizeof(scratch), &h), -EBADMSG);
    build(&x, e, n, true);
    x.b[5] = 2;                                           /* ServerHello */
    ASSERT_RET(relay_sni_parse(x.b, x.n, scratch, sizeof(scratch), &h), -EBADMSG);
    build(&x, e, n, true);
    x.b[3] = 0, x.b[4] = 0;                               /* empty record */
    ASSERT_RET(relay_sni_parse(x.b, x.n, scratch, sizeof(scratch), &h), -EBADMSG);
    build(&x, e, n, true);
    x.b[3] = 0x48;                                        /* record above 2^14 */
    ASSERT_RET(relay_sni_parse(x.b, x.n, scratch, sizeof(scratch), &h), -EBADMSG);
    const uint8_t sslv2[] = { 0x80, 0x2e, 0x01, 0x00, 0x02 };
    ASSERT_RET(relay_sni_parse(sslv2, sizeof(sslv2), scratch, sizeof(scratch), &h), -EBADMSG);
    const uint8_t http[] = "GET / HTTP/1.1\r\n";
    ASSERT_RET(relay_sni_parse(http, sizeof(http) - 1, scratch, sizeof(scratch), &h), -EBADMSG);
    /* A handshake length beyond the cap is refused before it all arrives. */
    const uint8_t huge[] = { 22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00 };
    ASSERT_RET(relay_sni_parse(huge, sizeof(huge), scratch, sizeof(scratch), &h), -EMSGSIZE);
    /* An alert in between two records of one hello. */
    struct bytes b = real_hello("docs.x.test", NULL, 0, 0);
    struct bytes f = refragment(b, 50);
    f.p[5 + 50] = 21;
    ASSERT_RET(relay_sni_parse(f.p, f.n, scratch, sizeof(scratch), &h), -EBADMSG);
    free(f.p);
    free(b.p);
}

static void test_built_hello_body_truncated(void **state)
{
    static struct hb x;
    struct relay_hello h;

    build(&x, NULL, 0, false);
    /* claim a longer session id than the body holds */
    x.b[9 + 34] = 32;
    ASSERT_RET(relay_sni_parse(x.b, x.n, scratch, sizeof(scratch), &h), -EBADMSG);
    build(&x, NULL, 0, false);
    x.b[9 + 35 + 1] = 3;                                  /* odd cipher suite length */
    ASSERT_RET(relay_sni_parse(x.b, x.n, scratch, sizeof(scratch), &h), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_sni_alpn),
        cmocka_unit_test(test_real_no_sni),
        cmocka_unit_test(test_real_byte_by_byte),
        cmocka_unit_test(test_real_large_extension),
        cmocka_unit_test(test_real_many_records),
        cmocka_unit_test(test_built_ok_and_minimal),
        cmocka_unit_test(test_built_bad_names),
        cmocka_unit_test(test_built_duplicates_and_lengths),
        cmocka_unit_test(test_built_record_layer),
        cmocka_unit_test(test_built_hello_body_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
