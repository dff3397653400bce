/* SPDX-License-Identifier: Apache-2.0 */
/* worker: the work item secret (spec §1.5), the SDK's retry classes and
 * backoff, and the UTF-8 repair every tool result goes through. */
#include "al_test.h"

#include <string.h>

#include "lib/base/utf8.h"
#include "lib/base/util.h"
#include "worker/wk.h"

static char *b64url(const char *s)
{
    return al_b64url_encode(s, strlen(s));
}

static void test_secret_token(void **state)
{
    _cleanup_free_ char *s1 = b64url("{\"sessions_token\":\"sk-ant-req-test\",\"extra\":[1]}");
    _cleanup_free_ char *t1 = wk_secret_sessions_token(s1);
    ASSERT_STR_EQ(t1, "sk-ant-req-test");

    /* The standard alphabet with padding decodes too. */
    _cleanup_free_ char *t2 = wk_secret_sessions_token("eyJzZXNzaW9uc190b2tlbiI6InRvayJ9");
    ASSERT_STR_EQ(t2, "tok");
    _cleanup_free_ char *t3 = wk_secret_sessions_token("eyJzZXNzaW9uc190b2tlbiI6InRvayJ9==");
    ASSERT_STR_EQ(t3, "tok");
}

static void test_secret_unusable(void **state)
{
    const char *bad_json[] = { "[1]", "\"x\"", "{}", "{\"sessions_token\":\"\"}", "{\"sessions_token\":7}",
                               "{\"sessions_token\":\"a\\nb\"}", "not json", "null" };

    assert_null(wk_secret_sessions_token(NULL));
    assert_null(wk_secret_sessions_token(""));
    assert_null(wk_secret_sessions_token("!!!*"));
    for (size_t i = 0; i < AL_ELEMENTSOF(bad_json); i++) {
        _cleanup_free_ char *s = b64url(bad_json[i]);
        char *t = wk_secret_sessions_token(s);
        if (t) {
            print_error("secret %s gave a token\n", bad_json[i]);
            free(t);
            fail();
        }
    }
}

static void test_secret_api_base(void **state)
{
    _cleanup_free_ char *s = b64url("{\"sessions_token\":\"t\",\"api_base_url\":\"https://api.example/\"}");
    _cleanup_free_ char *base = NULL;
    _cleanup_free_ char *t = wk_secret_decode(s, &base);
    ASSERT_STR_EQ(t, "t");
    ASSERT_STR_EQ(base, "https://api.example");

    _cleanup_free_ char *s2 = b64url("{\"sessions_token\":\"t\",\"api_base_url\":\"file:///etc\"}");
    _cleanup_free_ char *base2 = NULL;
    _cleanup_free_ char *t2 = wk_secret_decode(s2, &base2);
    ASSERT_STR_EQ(t2, "t");
    assert_null(base2);
}

static void test_fatal_4xx(void **state)
{
    assert_true(wk_fatal_4xx(400));
    assert_true(wk_fatal_4xx(401));
    assert_true(wk_fatal_4xx(404));
    assert_true(wk_fatal_4xx(412));
    assert_false(wk_fatal_4xx(408));
    assert_false(wk_fatal_4xx(409));
    assert_false(wk_fatal_4xx(429));
    assert_false(wk_fatal_4xx(500));
    assert_false(wk_fatal_4xx(200));
}

static void test_backoff(void **state)
{
    for (int i = 0; i < 200; i++) {
        int64_t d0 = wk_backoff_ms(0, 1000, 60000);
        int64_t d3 = wk_backoff_ms(3, 1000, 60000);
        int64_t d9 = wk_backoff_ms(9, 1000, 60000);
        assert_true(d0 > 750 && d0 <= 1000);
        assert_true(d3 > 6000 && d3 <= 8000);
        assert_true(d9 > 45000 && d9 <= 60000);
        int64_t j = wk_jitter_ms(1000, 3000);
        assert_true(j >= 1000 && j < 3000);
    }
}

static void test_utf8_repair(void **state)
{
    struct { const char *in; size_t n; const char *out; } cases[] = {
        { "abc", 3, "abc" },
        { "\xc3\xa9", 2, "\xc3\xa9" },
        { "\xff", 1, "\xef\xbf\xbd" },
        /* A truncated 3-byte sequence is one replacement (maximal subpart). */
        { "\xe2\x82", 2, "\xef\xbf\xbd" },
        { "\xe2\x82" "a", 3, "\xef\xbf\xbd" "a" },
        /* Surrogates and overlongs: each byte is its own subpart. */
        { "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xf0\x9f\x98", 3, "\xef\xbf\xbd" },
    };

    for (size_t i = 0; i < AL_ELEMENTSOF(cases); i++) {
        size_t n = 0;
        _cleanup_free_ char *o = al_utf8_repair(cases[i].in, cases[i].n, &n);
        assert_int_equal(n, strlen(cases[i].out));
        assert_memory_equal(o, cases[i].out, n);
        assert_true(al_utf8_valid(o, n));
    }
    assert_false(al_utf8_valid("\xe2\x82", 2));
    assert_true(al_utf8_valid("a\0b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_token),
        cmocka_unit_test(test_secret_unusable),
        cmocka_unit_test(test_secret_api_base),
        cmocka_unit_test(test_fatal_4xx),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_utf8_repair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
