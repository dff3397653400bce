/* SPDX-License-Identifier: Apache-2.0 */
/* relay: the tunnel registry. An SNI "<route>.<hostname>" finds its tunnel
 * by hostname suffix (and nothing else does); a tunnel's least-loaded pick
 * skips connections that are not open; the last detach takes the tunnel
 * offline. */
#include "al_test.h"

#include "lib/base/map.h"
#include "relay/relay_internal.h"

static void test_sni_routing(void **state)
{
    struct relay r = { .tunnels = al_map_new(), .hostnames = al_map_new() };
    struct relay_gw g1 = { .r = &r, .state = RGW_OPEN }, g2 = { .r = &r, .state = RGW_OPEN };
    struct relay_tunnel *a = relay_tunnel_get(&r, "tnl_a", "0123456789abcdef.tunnel.test");
    struct relay_tunnel *b = relay_tunnel_get(&r, "tnl_b", "fedcba9876543210.tunnel.test");

    assert_ptr_equal(relay_tunnel_get(&r, "tnl_a", "ignored.example"), a);
    relay_tunnel_attach(a, &g1);
    relay_tunnel_attach(b, &g2);
    assert_ptr_equal(relay_tunnel_by_sni(&r, "docs.0123456789abcdef.tunnel.test"), a);
    assert_ptr_equal(relay_tunnel_by_sni(&r, "a.b.fedcba9876543210.tunnel.test"), b);
    assert_null(relay_tunnel_by_sni(&r, "0123456789abcdef.tunnel.test"));   /* no route label */
    assert_null(relay_tunnel_by_sni(&r, "docs.x0123456789abcdef.tunnel.test"));
    assert_null(relay_tunnel_by_sni(&r, "docs.tunnel.test"));
    assert_null(relay_tunnel_by_sni(&r, "docs.0123456789abcdef.tunnel.test.evil"));
    assert_null(relay_tunnel_by_sni(&r, ""));

    /* No h2 connection on these test entries: none is ready to pick. */
    assert_null(relay_tunnel_pick(a));
    g1.state = RGW_VERIFY;
    assert_null(relay_tunnel_pick(a));

    ASSERT_I64_EQ(al_map_size(r.tunnels), 2);
    relay_tunnel_detach(&g1);
    ASSERT_I64_EQ(al_map_size(r.tunnels), 1);
    assert_null(relay_tunnel_by_sni(&r, "docs.0123456789abcdef.tunnel.test"));
    relay_tunnel_detach(&g2);
    ASSERT_I64_EQ(al_map_size(r.tunnels), 0);
    ASSERT_I64_EQ(al_map_size(r.hostnames), 0);
    al_map_free(r.tunnels);
    al_map_free(r.hostnames);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sni_routing),
    };
    al_log_setup("test", AL_WARN, 2);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
