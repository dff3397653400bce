/* SPDX-License-Identifier: Apache-2.0 */
/* gateway/cidr and gateway/route: the --allowed-ips list (parsing, the
 * default list, v4-mapped addresses) and --route matching by SNI. */
#include "al_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "gateway/stream_internal.h"

static bool allows(const struct gw_cidr_list *l, const char *ip)
{
    struct sockaddr_storage ss = { 0 };
    struct sockaddr_in *in = (struct sockaddr_in *) &ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1)
        in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    else
        fail_msg("bad test address %s", ip);
    return gw_cidr_allows(l, (struct sockaddr *) &ss);
}

static void test_default(void **state)
{
    static struct gw_cidr_list l;
    char why[256];
    ASSERT_OK(gw_cidr_parse_list(NULL, &l, why, sizeof(why)));
    ASSERT_I64_EQ(l.n, 6);
    const char *yes[] = { "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255",
                          "192.168.1.1", "::1", "fc00::1", "fdff:1::2", "::ffff:10.0.0.1", "::ffff:127.0.0.1" };
    const char *no[] = { "8.8.8.8", "172.32.0.1", "172.15.255.255", "192.169.0.1", "11.0.0.1", "::2",
                         "fe80::1", "2001:db8::1", "::ffff:8.8.8.8", "169.254.169.254", "0.0.0.0" };
    for (size_t i = 0; i < AL_ELEMENTSOF(yes); i++)
        if (!allows(&l, yes[i]))
            fail_msg("%s should be allowed", yes[i]);
    for (size_t i = 0; i < AL_ELEMENTSOF(no); i++)
        if (allows(&l, no[i]))
            fail_msg("%s should not be allowed", no[i]);
}

static void test_parse(void **state)
{
    static struct gw_cidr_list l;
    char why[256];
    ASSERT_OK(gw_cidr_parse_list(" 10.0.0.0/8 , 192.0.2.7,2001:db8::/32,0.0.0.0/0", &l, why, sizeof(why)));
    ASSERT_I64_EQ(l.n, 4);
    ASSERT_OK(gw_cidr_parse_list("10.0.0.0/8", &l, why, sizeof(why)));
    assert_false(allows(&l, "127.0.0.1"));
    assert_true(allows(&l, "10.200.0.1"));
    ASSERT_OK(gw_cidr_parse_list("192.0.2.7", &l, why, sizeof(why)));
    assert_true(allows(&l, "192.0.2.7"));
    assert_false(allows(&l, "192.0.2.8"));
    ASSERT_OK(gw_cidr_parse_list("0.0.0.0/0", &l, why, sizeof(why)));
    assert_true(allows(&l, "8.8.8.8"));
    assert_false(allows(&l, "::1"));
    ASSERT_OK(gw_cidr_parse_list("10.0.0.0/9", &l, why, sizeof(why)));
    assert_true(allows(&l, "10.127.0.1"));
    assert_false(allows(&l, "10.128.0.1"));

    const char *bad[] = { "", ",", "10.0.0.0/33", "10.0.0.1/8", "::1/129", "10.0.0.0/", "10.0.0.0/-1",
                          "10.0.0.0/8/8", "example.com", "10.0.0.0/08a", "1.2.3", "10.0.0.0/8,", "fc00::1/7" };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        why[0] = '\0';
        if (gw_cidr_parse_list(bad[i], &l, why, sizeof(why)) != -EINVAL)
            fail_msg("\"%s\" should be refused", bad[i]);
        assert_true(strstr(why, "--allowed-ips") != NULL);
    }
}

static void test_routes(void **state)
{
    struct gw_routes r;
    char why[256];
    char *one[] = { "docs=http://127.0.0.1:3001/mcp", NULL };
    char *two[] = { "docs=http://10.0.3.7:3001", "Wiki=http://wiki.internal", "v6=http://[::1]:9", NULL };

    ASSERT_OK(gw_routes_parse(one, &r, why, sizeof(why)));
    ASSERT_STR_EQ(r.v[0].host, "127.0.0.1");
    ASSERT_I64_EQ(r.v[0].port, 3001);
    assert_ptr_equal(gw_route_match(&r, NULL, "t.example", false), &r.v[0]);   /* single route: no SNI */
    assert_ptr_equal(gw_route_match(&r, "docs.t.example", "t.example", false), &r.v[0]);
    assert_null(gw_route_match(&r, "docs.other.example", "t.example", false));
    assert_ptr_equal(gw_route_match(&r, "docs.anything", NULL, true), &r.v[0]);
    gw_routes_clear(&r);

    ASSERT_OK(gw_routes_parse(two, &r, why, sizeof(why)));
    ASSERT_I64_EQ(r.n, 3);
    ASSERT_STR_EQ(r.v[1].name, "wiki");
    ASSERT_I64_EQ(r.v[1].port, 80);
    ASSERT_STR_EQ(r.v[2].host, "::1");
    assert_null(gw_route_match(&r, NULL, "t.example", false));
    assert_ptr_equal(gw_route_match(&r, "wiki", NULL, false), &r.v[1]);
    assert_ptr_equal(gw_route_match(&r, "wiki.t.example", "t.example", false), &r.v[1]);
    assert_null(gw_route_match(&r, "wikix.t.example", "t.example", false));
    assert_null(gw_route_match(&r, "nope.t.example", "t.example", false));
    gw_routes_clear(&r);

    char *https[] = { "docs=https://10.0.0.1", NULL };
    ASSERT_RET(gw_routes_parse(https, &r, why, sizeof(why)), -EINVAL);
    assert_true(strstr(why, "https") != NULL);
    char *bad[][2] = { { "docs", NULL }, { "=http://a", NULL }, { "a=ftp://x", NULL }, { "a=http://x:0", NULL },
                       { "a=http://x:70000", NULL }, { "a=http://", NULL }, { "a.b=http://x", NULL } };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++)
        ASSERT_RET(gw_routes_parse(bad[i], &r, why, sizeof(why)), -EINVAL);
    char *dup[] = { "a=http://x", "A=http://y", NULL };
    ASSERT_RET(gw_routes_parse(dup, &r, why, sizeof(why)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
