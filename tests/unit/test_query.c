/* SPDX-License-Identifier: Apache-2.0 */
/* http/query: percent-decoding, the "name[]" and repeated forms of list
 * parameters, and the limits that keep a hostile query string bounded. */
#include "al_test.h"

#include "lib/base/util.h"
#include "lib/http/query.h"

static int parse(const char *s, struct al_query *q)
{
    return al_query_parse(s, strlen(s), q);
}

static void test_percent_decode(void **state)
{
    static const struct {
        const char *in;
        bool plus;
        const char *out;
    } vec[] = {
        { "", true, "" },
        { "abc", true, "abc" },
        { "a%20b", true, "a b" },
        { "a+b", true, "a b" },
        { "a+b", false, "a+b" },
        { "%2B", true, "+" },
        { "%2b%2F%3a", true, "+/:" },
        { "%41%42%43", false, "ABC" },
        { "%e2%82%ac", true, "\xe2\x82\xac" },
        { "100%25", true, "100%" },
        { "%25%32%30", true, "%20" }, /* decoded once, not twice */
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(vec); i++) {
        _cleanup_free_ char *d = al_percent_decode(vec[i].in, strlen(vec[i].in), vec[i].plus);
        ASSERT_STR_EQ(d, vec[i].out);
    }

    /* Only len bytes are read: "%41" cut after "%4" is a bad escape. */
    assert_null(al_percent_decode("%41", 2, true));
    _cleanup_free_ char *a = al_percent_decode("%41xyz", 3, true);
    ASSERT_STR_EQ(a, "A");

    static const char *const bad[] = { "%", "%4", "a%", "%zz", "%4g", "%g4", "%%", "% 1", "%00", "a%00b" };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        char *d = al_percent_decode(bad[i], strlen(bad[i]), true);
        if (d)
            print_error("accepted \"%s\" as \"%s\"\n", bad[i], d);
        assert_null(d);
    }
    /* A raw NUL inside the span is rejected too. */
    assert_null(al_percent_decode("a\0b", 3, true));
}

static void test_parse_basic(void **state)
{
    struct al_query q;

    ASSERT_OK(parse("limit=10&order=desc&page=abc%3D%3D", &q));
    ASSERT_I64_EQ(q.n, 3);
    ASSERT_STR_EQ(q.pairs[0].key, "limit");
    ASSERT_STR_EQ(q.pairs[0].value, "10");
    ASSERT_STR_EQ(al_query_get(&q, "order"), "desc");
    ASSERT_STR_EQ(al_query_get(&q, "page"), "abc==");
    assert_null(al_query_get(&q, "missing"));
    assert_null(al_query_get(&q, "limi"));
    al_query_clear(&q);
    ASSERT_I64_EQ(q.n, 0);

    /* Empty input, empty segments, keys without '=' and empty values. */
    ASSERT_OK(parse("", &q));
    ASSERT_I64_EQ(q.n, 0);
    ASSERT_OK(parse("&&a=1&&b&c=&=d&", &q));
    ASSERT_I64_EQ(q.n, 4);
    ASSERT_STR_EQ(al_query_get(&q, "a"), "1");
    ASSERT_STR_EQ(al_query_get(&q, "b"), "");
    ASSERT_STR_EQ(al_query_get(&q, "c"), "");
    ASSERT_STR_EQ(al_query_get(&q, ""), "d");
    al_query_clear(&q);

    /* Only the first '=' splits; later ones belong to the value. */
    ASSERT_OK(parse("x=a=b", &q));
    ASSERT_STR_EQ(al_query_get(&q, "x"), "a=b");
    al_query_clear(&q);

    /* '+' is a space in keys and values; an encoded '&' does not split. */
    ASSERT_OK(parse("q+1=hello+world%26more", &q));
    ASSERT_I64_EQ(q.n, 1);
    ASSERT_STR_EQ(al_query_get(&q, "q 1"), "hello world&more");
    al_query_clear(&q);

    /* The length is honoured: nothing after len is read. */
    ASSERT_OK(al_query_parse("a=1&b=2", 3, &q));
    ASSERT_I64_EQ(q.n, 1);
    ASSERT_STR_EQ(al_query_get(&q, "a"), "1");
    al_query_clear(&q);
}

static void test_brackets_and_repeats(void **state)
{
    struct al_query q;
    const char *v[8];

    /* qs "brackets" form, encoded as the SDK sends it. */
    ASSERT_OK(parse("types%5B%5D=a&types%5B%5D=b", &q));
    ASSERT_I64_EQ(q.n, 2);
    ASSERT_STR_EQ(q.pairs[0].key, "types");
    ASSERT_STR_EQ(q.pairs[1].key, "types");
    ASSERT_I64_EQ(al_query_get_all(&q, "types", v, 8), 2);
    ASSERT_STR_EQ(v[0], "a");
    ASSERT_STR_EQ(v[1], "b");
    ASSERT_I64_EQ(al_query_get_all(&q, "types[]", v, 8), 0);
    ASSERT_STR_EQ(al_query_get(&q, "types"), "b"); /* the last one */
    al_query_clear(&q);

    /* Unencoded brackets and the plain repeated form read the same. */
    ASSERT_OK(parse("types[]=a&types=b&other=x&types=c", &q));
    ASSERT_I64_EQ(al_query_get_all(&q, "types", v, 8), 3);
    ASSERT_STR_EQ(v[0], "a");
    ASSERT_STR_EQ(v[1], "b");
    ASSERT_STR_EQ(v[2], "c");
    /* max caps the output. */
    ASSERT_I64_EQ(al_query_get_all(&q, "types", v, 2), 2);
    ASSERT_STR_EQ(v[1], "b");
    al_query_clear(&q);

    /* Other bracket keys are kept whole: created_at[gt] is its own key. */
    ASSERT_OK(parse("created_at%5Bgt%5D=2026-01-01T00%3A00%3A00Z&created_at[lte]=x", &q));
    ASSERT_I64_EQ(q.n, 2);
    ASSERT_STR_EQ(al_query_get(&q, "created_at[gt]"), "2026-01-01T00:00:00Z");
    ASSERT_STR_EQ(al_query_get(&q, "created_at[lte]"), "x");
    assert_null(al_query_get(&q, "created_at"));
    al_query_clear(&q);

    /* Only one trailing "[]" is removed, and only a trailing one. */
    ASSERT_OK(parse("a[][]=1&b[]c=2&[]=3", &q));
    ASSERT_STR_EQ(q.pairs[0].key, "a[]");
    ASSERT_STR_EQ(q.pairs[1].key, "b[]c");
    ASSERT_STR_EQ(q.pairs[2].key, "");
    al_query_clear(&q);
}

static void test_bad_escapes(void **state)
{
    static const char *const bad[] = {
        "a=%", "a=%2", "a=%zz", "%=1", "a%2=1", "ok=1&bad=%G0", "a=1%", "a=%00", "a%00b=1",
        "a=x%00", "types%5B%5D=a&types%5B%5D=%0",
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        struct al_query q;
        int r = parse(bad[i], &q);
        if (r != -EBADMSG)
            print_error("\"%s\" gave %d\n", bad[i], r);
        ASSERT_RET(r, -EBADMSG);
        ASSERT_I64_EQ(q.n, 0); /* left empty; nothing to clear */
    }

    /* A raw NUL byte inside the string is rejected like %00. */
    struct al_query q;
    ASSERT_RET(al_query_parse("a=1&b=x\0y", 9, &q), -EBADMSG);
    ASSERT_I64_EQ(q.n, 0);
}

static void test_limits(void **state)
{
    struct al_query q;
    char buf[AL_QUERY_MAX_LEN + 64];
    size_t o = 0;

    /* Exactly AL_QUERY_MAX_PAIRS pairs are fine... */
    for (int i = 0; i < AL_QUERY_MAX_PAIRS; i++)
        o += (size_t) snprintf(buf + o, sizeof(buf) - o, "%sk%d=%d", i ? "&" : "", i, i);
    ASSERT_OK(al_query_parse(buf, o, &q));
    ASSERT_I64_EQ(q.n, AL_QUERY_MAX_PAIRS);
    ASSERT_STR_EQ(al_query_get(&q, "k63"), "63");
    al_query_clear(&q);

    /* ...one more is -E2BIG, and q is left empty (ASan checks the frees). */
    o += (size_t) snprintf(buf + o, sizeof(buf) - o, "&k%d=x", AL_QUERY_MAX_PAIRS);
    ASSERT_RET(al_query_parse(buf, o, &q), -E2BIG);
    ASSERT_I64_EQ(q.n, 0);

    /* Empty segments do not count as pairs. */
    o = 0;
    for (int i = 0; i < AL_QUERY_MAX_PAIRS; i++)
        o += (size_t) snprintf(buf + o, sizeof(buf) - o, "&&a=%d", i);
    ASSERT_OK(al_query_parse(buf, o, &q));
    ASSERT_I64_EQ(q.n, AL_QUERY_MAX_PAIRS);
    al_query_clear(&q);

    /* Length: AL_QUERY_MAX_LEN is accepted, one byte more is -E2BIG. */
    memset(buf, 'v', sizeof(buf));
    buf[0] = 'k';
    buf[1] = '=';
    ASSERT_OK(al_query_parse(buf, AL_QUERY_MAX_LEN, &q));
    ASSERT_I64_EQ(q.n, 1);
    ASSERT_I64_EQ(strlen(al_query_get(&q, "k")), AL_QUERY_MAX_LEN - 2);
    al_query_clear(&q);
    ASSERT_RET(al_query_parse(buf, AL_QUERY_MAX_LEN + 1, &q), -E2BIG);
    ASSERT_I64_EQ(q.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_brackets_and_repeats),
        cmocka_unit_test(test_bad_escapes),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
