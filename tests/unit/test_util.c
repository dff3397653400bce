/* SPDX-License-Identifier: Apache-2.0 */
/* base/util: RFC 3339 timestamps, ids and secrets, base64url, hex, and the
 * integer and duration parsers behind the config table. */
#include "al_test.h"

#include "lib/base/util.h"

#define SEC INT64_C(1000000)

static int64_t parse_ok(const char *s)
{
    int64_t us = INT64_MIN;
    int r = al_rfc3339_parse(s, &us);
    if (r != 0) {
        print_error("al_rfc3339_parse(\"%s\") = %d\n", s, r);
        fail();
    }
    return us;
}

static void test_rfc3339_format(void **state)
{
    char buf[AL_RFC3339_MAX];

    ASSERT_STR_EQ(al_rfc3339(0, buf), "1970-01-01T00:00:00.000000Z");
    ASSERT_STR_EQ(al_rfc3339(1700000000 * SEC + 123456, buf), "2023-11-14T22:13:20.123456Z");
    ASSERT_STR_EQ(al_rfc3339(-1, buf), "1969-12-31T23:59:59.999999Z");
    ASSERT_STR_EQ(al_rfc3339(951782400 * SEC, buf), "2000-02-29T00:00:00.000000Z");
    ASSERT_STR_EQ(al_rfc3339(253402300799 * SEC + 999999, buf), "9999-12-31T23:59:59.999999Z");
    /* RFC 3339 years have four digits; strftime's %Y does not pad. */
    ASSERT_STR_EQ(al_rfc3339(-62167219200 * SEC, buf), "0000-01-01T00:00:00.000000Z");
    ASSERT_STR_EQ(al_rfc3339(-59042995200 * SEC + 5, buf), "0099-01-01T00:00:00.000005Z");
}

static void test_rfc3339_parse(void **state)
{
    ASSERT_I64_EQ(parse_ok("1970-01-01T00:00:00Z"), 0);
    ASSERT_I64_EQ(parse_ok("2023-11-14T22:13:20.123456Z"), 1700000000 * SEC + 123456);
    ASSERT_I64_EQ(parse_ok("2023-11-14t22:13:20.123456z"), 1700000000 * SEC + 123456);
    ASSERT_I64_EQ(parse_ok("2023-11-14 22:13:20Z"), 1700000000 * SEC);
    /* Fractions: shorter ones scale up, digits beyond µs are cut. */
    ASSERT_I64_EQ(parse_ok("1970-01-01T00:00:01.5Z"), SEC + 500000);
    ASSERT_I64_EQ(parse_ok("1970-01-01T00:00:00.000001Z"), 1);
    ASSERT_I64_EQ(parse_ok("1970-01-01T00:00:00.1234569Z"), 123456);
    ASSERT_I64_EQ(parse_ok("1969-12-31T23:59:59.999999Z"), -1);
    /* Leap years. */
    ASSERT_I64_EQ(parse_ok("2000-02-29T00:00:00Z"), 951782400 * SEC);
    ASSERT_I64_EQ(parse_ok("2024-02-29T12:00:00Z"), 1709208000 * SEC);
    /* A leap second reads as the first second of the next minute. */
    ASSERT_I64_EQ(parse_ok("2016-12-31T23:59:60Z"), parse_ok("2017-01-01T00:00:00Z"));
}

static void test_rfc3339_offsets(void **state)
{
    int64_t z = parse_ok("2023-11-14T22:13:20.5Z");

    ASSERT_I64_EQ(parse_ok("2023-11-14T23:13:20.5+01:00"), z);
    ASSERT_I64_EQ(parse_ok("2023-11-14T16:43:20.5-05:30"), z);
    ASSERT_I64_EQ(parse_ok("2023-11-15T08:13:20.5+10:00"), z);
    ASSERT_I64_EQ(parse_ok("2023-11-14T22:13:20.5+00:00"), z);
    ASSERT_I64_EQ(parse_ok("2023-11-14T22:13:20.5-00:00"), z);
    /* Crossing a year boundary backwards. */
    ASSERT_I64_EQ(parse_ok("1970-01-01T00:30:00+01:00"), -1800 * SEC);
}

static void test_rfc3339_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "2023",
        "2023-02-29T00:00:00Z",     /* not a leap year */
        "1900-02-29T00:00:00Z",     /* century, not a leap year */
        "2023-04-31T00:00:00Z",
        "2023-13-01T00:00:00Z",
        "2023-00-10T00:00:00Z",
        "2023-01-00T00:00:00Z",
        "2023-01-32T00:00:00Z",
        "2023-01-01T24:00:00Z",
        "2023-01-01T23:60:00Z",
        "2023-01-01T23:59:61Z",
        "2023-01-01T00:00:00",      /* no offset */
        "2023-01-01T00:00:00+0100", /* offset without colon */
        "2023-01-01T00:00:00+24:00",
        "2023-01-01T00:00:00+01:60",
        "2023-01-01T00:00:00.Z",    /* fraction without digits */
        "2023-01-01T00:00:00Z ",
        "2023-01-01T00:00:00ZZ",
        "2023-01-01X00:00:00Z",
        "2023-1-01T00:00:00Z",
        "23-01-01T00:00:00Z",
        "2023-01-01T0:00:00Z",
        "+2023-01-01T00:00:00Z",
        "2023/01/01T00:00:00Z",
        "2023-01-01T00:00:00.-1Z",
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        int64_t us = 42;
        int r = al_rfc3339_parse(bad[i], &us);
        if (r != -EINVAL)
            print_error("accepted \"%s\"\n", bad[i]);
        ASSERT_RET(r, -EINVAL);
        ASSERT_I64_EQ(us, 42); /* untouched on failure */
    }
}

static void test_rfc3339_round_trip(void **state)
{
    static const int64_t samples[] = {
        0, 1, -1, 999999, 1000000, 1700000000 * SEC + 123456, 951782400 * SEC,
        -62167219200 * SEC, 253402300799 * SEC + 999999, 4102444800 * SEC - 1, -2208988800 * SEC + 7,
    };
    char buf[AL_RFC3339_MAX];

    for (size_t i = 0; i < AL_ELEMENTSOF(samples); i++)
        ASSERT_I64_EQ(parse_ok(al_rfc3339(samples[i], buf)), samples[i]);

    /* A pseudo-random walk over the representable range, deterministic. */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t us = -62167219200 * SEC + (int64_t) (x % (uint64_t) (315537897600 * SEC));
        ASSERT_I64_EQ(parse_ok(al_rfc3339(us, buf)), us);
    }

    /* Current time formats and parses back. */
    int64_t now = al_now_us();
    ASSERT_I64_EQ(parse_ok(al_rfc3339(now, buf)), now);
    ASSERT_I64_EQ(strlen(buf), 27);
}

static void test_b64url(void **state)
{
    static const struct {
        const char *in, *out;
    } vec[] = {
        /* RFC 4648 section 10, without padding. */
        { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
        /* The url alphabet: 0xfb 0xff -> "-_8" (standard: "+/8"). */
        { "\xfb\xff", "-_8" }, { "\xfb\xef\xbe", "----" }, { "\xff\xff\xff", "____" },
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(vec); i++) {
        size_t n = strlen(vec[i].in);
        _cleanup_free_ char *enc = al_b64url_encode(vec[i].in, n);
        ASSERT_STR_EQ(enc, vec[i].out);

        _cleanup_free_ unsigned char *dec = NULL;
        size_t dn = 99;
        ASSERT_OK(al_b64_decode(enc, strlen(enc), &dec, &dn));
        ASSERT_MEM_EQ(dec, dn, vec[i].in, n);
        ASSERT_I64_EQ(dec[dn], 0); /* NUL-terminated */
    }
}

static void b64_dec_is(const char *s, const void *want, size_t wn)
{
    _cleanup_free_ unsigned char *dec = NULL;
    size_t n = 0;
    int r = al_b64_decode(s, strlen(s), &dec, &n);
    if (r != 0)
        print_error("decoding \"%s\"\n", s);
    ASSERT_OK(r);
    ASSERT_MEM_EQ(dec, n, want, wn);
}

static void test_b64_decode(void **state)
{
    /* Both alphabets, padded and not. */
    b64_dec_is("Zm9vYg==", "foob", 4);
    b64_dec_is("Zm9vYg", "foob", 4);
    b64_dec_is("Zm9vYmE=", "fooba", 5);
    b64_dec_is("+/8=", "\xfb\xff", 2);
    b64_dec_is("+/8", "\xfb\xff", 2);
    b64_dec_is("-_8=", "\xfb\xff", 2);
    b64_dec_is("-_8", "\xfb\xff", 2);
    b64_dec_is("++++", "\xfb\xef\xbe", 3);
    b64_dec_is("AAEC", "\x00\x01\x02", 3);

    /* A decoder takes len, not the NUL: only the first 4 characters. */
    _cleanup_free_ unsigned char *dec = NULL;
    size_t n = 0;
    ASSERT_OK(al_b64_decode("Zm9vYmFy", 4, &dec, &n));
    ASSERT_MEM_EQ(dec, n, "foo", 3);

    static const char *const bad[] = { "Z", "Zm9vY", "Zm9v!", "Zm 9v", "Zm=9v", "Zm9v\n", "Z===" };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        unsigned char *out = (unsigned char *) "untouched";
        size_t on = 7;
        int r = al_b64_decode(bad[i], strlen(bad[i]), &out, &on);
        if (r != -EINVAL)
            print_error("accepted \"%s\"\n", bad[i]);
        ASSERT_RET(r, -EINVAL);
        ASSERT_STR_EQ((char *) out, "untouched");
        ASSERT_I64_EQ(on, 7);
    }
}

static void test_b64_round_trip_binary(void **state)
{
    unsigned char in[300];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char) (i * 7 + 3);
    for (size_t n = 0; n <= sizeof(in); n++) {
        _cleanup_free_ char *enc = al_b64url_encode(in, n);
        ASSERT_I64_EQ(strlen(enc), (n * 4 + 2) / 3);
        ASSERT_I64_EQ(strcspn(enc, "+/="), strlen(enc));
        _cleanup_free_ unsigned char *dec = NULL;
        size_t dn = 0;
        ASSERT_OK(al_b64_decode(enc, strlen(enc), &dec, &dn));
        ASSERT_MEM_EQ(dec, dn, in, n);
    }
}

static void test_hex(void **state)
{
    char out[9];
    al_hex("\x00\x9f\xa0\xff", 4, out);
    ASSERT_STR_EQ(out, "009fa0ff");
    al_hex("", 0, out);
    ASSERT_STR_EQ(out, "");
}

static void test_parse_i64(void **state)
{
    int64_t v = 0;

    ASSERT_OK(al_parse_i64("0", 0, 10, &v));
    ASSERT_I64_EQ(v, 0);
    ASSERT_OK(al_parse_i64("10", 0, 10, &v));
    ASSERT_I64_EQ(v, 10);
    ASSERT_OK(al_parse_i64("007", 0, 10, &v));
    ASSERT_I64_EQ(v, 7);
    ASSERT_OK(al_parse_i64("9223372036854775807", 0, INT64_MAX, &v));
    ASSERT_I64_EQ(v, INT64_MAX);
    ASSERT_OK(al_parse_i64("-5", -10, 10, &v));
    ASSERT_I64_EQ(v, -5);
    ASSERT_OK(al_parse_i64("-9223372036854775807", INT64_MIN + 1, 0, &v));
    ASSERT_I64_EQ(v, INT64_MIN + 1);

    v = 42;
    ASSERT_RET(al_parse_i64("11", 0, 10, &v), -ERANGE);
    ASSERT_RET(al_parse_i64("-1", 0, 10, &v), -ERANGE);
    ASSERT_RET(al_parse_i64("9223372036854775808", 0, INT64_MAX, &v), -ERANGE);
    ASSERT_RET(al_parse_i64("99999999999999999999999", 0, INT64_MAX, &v), -ERANGE);
    ASSERT_I64_EQ(v, 42);

    static const char *const bad[] = { "", "-", "+1", " 1", "1 ", "1x", "0x10", "1.0", "--1", "1e3" };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        int r = al_parse_i64(bad[i], INT64_MIN + 1, INT64_MAX, &v);
        if (r != -EINVAL)
            print_error("accepted \"%s\"\n", bad[i]);
        ASSERT_RET(r, -EINVAL);
    }
    ASSERT_RET(al_parse_i64(NULL, 0, 1, &v), -EINVAL);
    ASSERT_I64_EQ(v, 42);
}

static void test_parse_duration(void **state)
{
    static const struct {
        const char *s;
        int64_t us;
    } ok[] = {
        { "0", 0 }, { "5", 5 * SEC }, { "5s", 5 * SEC }, { "250ms", 250000 }, { "7us", 7 },
        { "2m", 120 * SEC }, { "1h", 3600 * SEC }, { "60s", 60 * SEC }, { "0ms", 0 },
        { "999999999999999us", 999999999999999 },
        { "2562047788h", INT64_C(2562047788) * 3600 * SEC },
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(ok); i++) {
        int64_t us = -1;
        int r = al_parse_duration_us(ok[i].s, &us);
        if (r != 0)
            print_error("rejected \"%s\"\n", ok[i].s);
        ASSERT_OK(r);
        ASSERT_I64_EQ(us, ok[i].us);
    }

    static const char *const bad[] = {
        "", "s", "ms", "-1s", "+1s", "1.5s", "1 s", "5S", "5sec", "1d", "1h1m", " 5", "5 ",
        "1000000000000000", /* more than 15 digits */
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        int64_t us = 42;
        int r = al_parse_duration_us(bad[i], &us);
        if (r != -EINVAL)
            print_error("accepted \"%s\"\n", bad[i]);
        ASSERT_RET(r, -EINVAL);
        ASSERT_I64_EQ(us, 42);
    }
    /* Overflowing the µs range is a range error, not a wrap. */
    int64_t us = 42;
    ASSERT_RET(al_parse_duration_us("2562047789h", &us), -ERANGE);
    ASSERT_I64_EQ(us, 42);
}

static void test_id_new(void **state)
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    _cleanup_free_ char *a = al_id_new("sesn");
    _cleanup_free_ char *b = al_id_new("sesn");

    ASSERT_I64_EQ(strlen(a), 4 + 1 + 24);
    ASSERT_I64_EQ(strncmp(a, "sesn_", 5), 0);
    ASSERT_I64_EQ(strspn(a + 5, b62), 24);
    assert_string_not_equal(a, b);

    /* Over many ids every base62 character shows up: the mapping is not
     * stuck on a subset of the alphabet. */
    int seen[128] = { 0 };
    for (int i = 0; i < 200; i++) {
        _cleanup_free_ char *id = al_id_new("x");
        ASSERT_I64_EQ(strlen(id), 26);
        ASSERT_I64_EQ(strspn(id + 2, b62), 24);
        for (const char *p = id + 2; *p; p++)
            seen[(unsigned char) *p]++;
    }
    for (const char *p = b62; *p; p++)
        if (!seen[(unsigned char) *p]) {
            print_error("'%c' never drawn\n", *p);
            fail();
        }
}

static void test_secret_new(void **state)
{
    _cleanup_free_ char *s = al_secret_new("ak-");
    _cleanup_free_ char *t = al_secret_new("ak-");

    ASSERT_I64_EQ(strlen(s), 3 + 43);
    ASSERT_I64_EQ(strncmp(s, "ak-", 3), 0);
    ASSERT_I64_EQ(strspn(s + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
    assert_string_not_equal(s, t);

    _cleanup_free_ unsigned char *raw = NULL;
    size_t n = 0;
    ASSERT_OK(al_b64_decode(s + 3, 43, &raw, &n));
    ASSERT_I64_EQ(n, 32);
}

static void test_clocks(void **state)
{
    int64_t a = al_mono_us(), b = al_mono_us();
    assert_true(b >= a);
    /* The wall clock is after 2020 and before 2200 on any sane test host. */
    int64_t now = al_now_us();
    assert_true(now > 1577836800 * SEC && now < 7258118400 * SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339_format),
        cmocka_unit_test(test_rfc3339_parse),
        cmocka_unit_test(test_rfc3339_offsets),
        cmocka_unit_test(test_rfc3339_invalid),
        cmocka_unit_test(test_rfc3339_round_trip),
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_b64_decode),
        cmocka_unit_test(test_b64_round_trip_binary),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_id_new),
        cmocka_unit_test(test_secret_new),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
