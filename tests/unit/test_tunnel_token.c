/* SPDX-License-Identifier: Apache-2.0 */
/* hub/tunnel_token: the connector token of docs/internals/TUNNEL.md §1.
 * The MAC is checked against a vector made with the openssl CLI:
 *   printf 'airlock-tunnel-token\0tnl_abc\0007' |
 *     openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f -binary | basenc --base64url
 * and the parser against every malformed shape we could think of. */
#include "al_test.h"

#include "hub/tunnel_token.c"   /* pure; not linked into the unit tests otherwise */

static const unsigned char key[TUNNEL_KEY_LEN] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
#define VECTOR_MAC "wlUg9dYKDP3WRKlDY6e_fWvaCEtG18a_rhx7dtFJFUQ"

static int parse(const char *s, struct tunnel_token *t)
{
    return tunnel_token_parse(s, strlen(s), t);
}

static void test_vector(void **state)
{
    char mac[TUNNEL_MAC_LEN + 1];
    tunnel_token_mac(key, "tnl_abc", 7, mac);
    ASSERT_STR_EQ(mac, VECTOR_MAC);

    _cleanup_free_ char *tok = tunnel_token_format(key, "tnl_abc", 7);
    ASSERT_STR_EQ(tok, "tnltok.tnl_abc.7." VECTOR_MAC);
}

static void test_round_trip(void **state)
{
    static const int64_t gens[] = { 1, 2, 9, 10, 12345, TUNNEL_GEN_MAX };
    unsigned char other[TUNNEL_KEY_LEN];
    memcpy(other, key, sizeof(other));
    other[31] ^= 1;

    for (size_t i = 0; i < AL_ELEMENTSOF(gens); i++) {
        struct tunnel_token t;
        _cleanup_free_ char *tok = tunnel_token_format(key, "tnl_Abc123XYZ", gens[i]);
        ASSERT_OK(parse(tok, &t));
        ASSERT_STR_EQ(t.id, "tnl_Abc123XYZ");
        ASSERT_I64_EQ(t.generation, gens[i]);
        assert_true(tunnel_token_mac_ok(key, &t));
        assert_false(tunnel_token_mac_ok(other, &t));

        /* The MAC binds the generation and the id. */
        t.generation = gens[i] == 1 ? 2 : gens[i] - 1;
        assert_false(tunnel_token_mac_ok(key, &t));
        t.generation = gens[i];
        t.id[4] = 'a';
        assert_false(tunnel_token_mac_ok(key, &t));
    }

    /* Each generation gives another token; the same one gives the same. */
    _cleanup_free_ char *a = tunnel_token_format(key, "tnl_x", 1), *b = tunnel_token_format(key, "tnl_x", 2),
                        *c = tunnel_token_format(key, "tnl_x", 1);
    assert_true(strcmp(a, b) != 0);
    ASSERT_STR_EQ(a, c);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "tnltok.",
        "tnltok",
        "TNLTOK.tnl_abc.7." VECTOR_MAC,
        "tnltok.tnl_abc.7." VECTOR_MAC "A",                  /* MAC too long */
        "tnltok.tnl_abc.7.wlUg9dYKDP3WRKlDY6e_fWvaCEtG18a_rhx7dtFJFU",  /* too short */
        "tnltok.tnl_abc.7.wlUg9dYKDP3WRKlDY6e_fWvaCEtG18a_rhx7dtFJFUR", /* spare bits set */
        "tnltok.tnl_abc.7.wlUg9dYKDP3WRKlDY6e/fWvaCEtG18a_rhx7dtFJFUQ", /* '/' is not base64url */
        "tnltok.tnl_abc.7." VECTOR_MAC "=",
        "tnltok.tnl_abc.07." VECTOR_MAC,                     /* leading zero */
        "tnltok.tnl_abc.0." VECTOR_MAC,
        "tnltok.tnl_abc.-7." VECTOR_MAC,
        "tnltok.tnl_abc.+7." VECTOR_MAC,
        "tnltok.tnl_abc.." VECTOR_MAC,
        "tnltok.tnl_abc.7a." VECTOR_MAC,
        "tnltok.tnl_abc.9007199254740993." VECTOR_MAC,       /* 2^53 + 1 */
        "tnltok.tnl_abc.99999999999999999999." VECTOR_MAC,
        "tnltok.tnl_.7." VECTOR_MAC,
        "tnltok.tnl_a-c.7." VECTOR_MAC,
        "tnltok.tnl_a_c.7." VECTOR_MAC,
        "tnltok.env_abc.7." VECTOR_MAC,
        "tnltok..7." VECTOR_MAC,
        "tnltok.tnl_abc.7",
        "tnltok.tnl_abc.7.",
        "tnltok.tnl_abc",
        " tnltok.tnl_abc.7." VECTOR_MAC,
        "tnltok.tnl_abc.7." VECTOR_MAC " ",
        "tnltok.tnl_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.7." VECTOR_MAC,  /* 65 */
    };
    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        struct tunnel_token t = { .generation = -1 };
        int r = parse(bad[i], &t);
        if (r != -EBADMSG)
            print_error("accepted \"%s\"\n", bad[i]);
        ASSERT_RET(r, -EBADMSG);
        ASSERT_I64_EQ(t.generation, -1);    /* untouched */
    }

    /* A NUL inside the span is not part of a token. */
    static const char nul[] = "tnltok.tnl_a\0c.7." VECTOR_MAC;
    struct tunnel_token t;
    ASSERT_RET(tunnel_token_parse(nul, sizeof(nul) - 1, &t), -EBADMSG);

    /* The longest id and generation still parse. */
    ASSERT_OK(parse("tnltok.tnl_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.9007199254740992." VECTOR_MAC,
                    &t));
    ASSERT_I64_EQ(t.generation, TUNNEL_GEN_MAX);
    ASSERT_I64_EQ(strlen(t.id), TUNNEL_ID_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
