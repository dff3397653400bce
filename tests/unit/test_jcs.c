/* SPDX-License-Identifier: Apache-2.0 */
/* gateway/jcs: RFC 8785 canonical JSON against the RFC's own examples
 * (§3.2.2 numbers and strings, §3.2.3 key order, Appendix B numbers). */
#include "al_test.h"

#include <math.h>

#include "gateway/stream_internal.h"

static char *jcs(const char *in)
{
    json_error_t err;
    json_t *v = json_loads(in, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    assert_non_null(v);
    struct al_buf b = { .max = 1 << 20 };
    int r = gw_jcs_append(v, &b);
    json_decref(v);
    if (r < 0) {
        al_buf_clear(&b);
        return NULL;
    }
    return b.data ? b.data : al_xstrdup("");
}

static void test_rfc_example(void **state)
{
    /* RFC 8785 §3.2.2. */
    _cleanup_free_ char *out = jcs(
        "{\"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],"
        " \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\","
        " \"literals\": [null, true, false]}");
    ASSERT_STR_EQ(out, "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
                       "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

static void test_key_order_utf16(void **state)
{
    /* RFC 8785 §3.2.3: sorted by UTF-16 code units, so the emoji (a
     * surrogate pair, 0xD83D...) sorts before U+FB33. */
    _cleanup_free_ char *out = jcs(
        "{\"\\u20ac\": \"Euro Sign\", \"\\r\": \"Carriage Return\", \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\","
        " \"1\": \"One\", \"\\ud83d\\ude00\": \"Emoji: Grinning Face\", \"\\u0080\": \"Control\","
        " \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"}");
    ASSERT_STR_EQ(out, "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
                       "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
                       "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\",\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

static double from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void test_numbers_appendix_b(void **state)
{
    static const struct {
        uint64_t bits;
        const char *want;
    } vec[] = {
        { 0x0000000000000000ull, "0" },
        { 0x8000000000000000ull, "0" },
        { 0x0000000000000001ull, "5e-324" },
        { 0x8000000000000001ull, "-5e-324" },
        { 0x7fefffffffffffffull, "1.7976931348623157e+308" },
        { 0xffefffffffffffffull, "-1.7976931348623157e+308" },
        { 0x4340000000000000ull, "9007199254740992" },
        { 0xc340000000000000ull, "-9007199254740992" },
        { 0x4430000000000000ull, "295147905179352830000" },
        { 0x44b52d02c7e14af5ull, "9.999999999999997e+22" },
        { 0x44b52d02c7e14af6ull, "1e+23" },
        { 0x44b52d02c7e14af7ull, "1.0000000000000001e+23" },
        { 0x444b1ae4d6e2ef4eull, "999999999999999700000" },
        { 0x444b1ae4d6e2ef4full, "999999999999999900000" },
        { 0x444b1ae4d6e2ef50ull, "1e+21" },
        { 0x3eb0c6f7a0b5ed8cull, "9.999999999999997e-7" },
        { 0x3eb0c6f7a0b5ed8dull, "0.000001" },
        { 0x41b3de4355555553ull, "333333333.3333332" },
        { 0x41b3de4355555554ull, "333333333.33333325" },
        { 0x41b3de4355555555ull, "333333333.3333333" },
        { 0x41b3de4355555556ull, "333333333.3333334" },
        { 0x41b3de4355555557ull, "333333333.33333343" },
        { 0xbecbf647612f3696ull, "-0.0000033333333333333333" },
        { 0x43143ff3c1cb0959ull, "1424953923781206.2" },
    };
    char buf[40];
    for (size_t i = 0; i < AL_ELEMENTSOF(vec); i++) {
        int n = gw_jcs_number(from_bits(vec[i].bits), buf, sizeof(buf));
        assert_true(n > 0);
        ASSERT_STR_EQ(buf, vec[i].want);
    }
    ASSERT_RET(gw_jcs_number(NAN, buf, sizeof(buf)), -EINVAL);
    ASSERT_RET(gw_jcs_number(INFINITY, buf, sizeof(buf)), -EINVAL);
}

static void test_values(void **state)
{
    static const struct {
        const char *in, *want;
    } vec[] = {
        { "[]", "[]" },
        { "{}", "{}" },
        { "{\"b\":[1,{\"d\":2,\"c\":1}],\"a\":\"x\"}", "{\"a\":\"x\",\"b\":[1,{\"c\":1,\"d\":2}]}" },
        { "[1.0, -0.0, 100, 1e2, 0.1, 1e20, 1e21, 1e-7, 0.000001, -12.5e-1]", "[1,0,100,100,0.1,100000000000000000000,1e+21,1e-7,0.000001,-1.25]" },
        { "\"\\u0000\\u001f\\b\\f\\t\\u007f\\u2028\"", "\"\\u0000\\u001f\\b\\f\\t\x7f\xe2\x80\xa8\"" },
        { "{\"a\":1,\"aa\":2,\"B\":3}", "{\"B\":3,\"a\":1,\"aa\":2}" },
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(vec); i++) {
        _cleanup_free_ char *out = jcs(vec[i].in);
        ASSERT_STR_EQ(out, vec[i].want);
    }
}

static void test_size_cap(void **state)
{
    json_t *v = json_pack("{s:s}", "k", "0123456789");
    struct al_buf b = { .max = 8 };
    ASSERT_RET(gw_jcs_append(v, &b), -EMSGSIZE);
    al_buf_clear(&b);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_example),
        cmocka_unit_test(test_key_order_utf16),
        cmocka_unit_test(test_numbers_appendix_b),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_size_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
