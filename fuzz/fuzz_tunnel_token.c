/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for tunnel_token_parse (src/hub/tunnel_token.c), the
 * parser the hub runs on every token the relay sends to
 * /v1/tunnels/connect/verify. Besides the sanitizers it checks the
 * contract: only -EBADMSG on error with the output untouched, and, since the
 * encoding is canonical, that an accepted token printed back from its parts
 * is the input byte for byte; a token the hub would issue for those parts
 * parses back to them and verifies. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "hub/tunnel_token.c"   /* the parser is not in a library the targets link */

static const unsigned char key[TUNNEL_KEY_LEN] = "0123456789abcdef0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tunnel_token t, none, again;
    memset(&t, 0xa5, sizeof(t));
    memcpy(&none, &t, sizeof(t));

    int r = tunnel_token_parse((const char *) data, size, &t);
    if (r < 0) {
        CHECK(r == -EBADMSG);
        CHECK(memcmp(&t, &none, sizeof(t)) == 0);
        return 0;
    }
    CHECK(r == 0);
    CHECK(t.generation >= 1 && t.generation <= TUNNEL_GEN_MAX);
    CHECK(strlen(t.id) >= 5 && strlen(t.id) <= TUNNEL_ID_MAX && memcmp(t.id, "tnl_", 4) == 0);
    CHECK(strlen(t.mac) == TUNNEL_MAC_LEN);

    char buf[TUNNEL_TOKEN_MAX + 1];
    int n = snprintf(buf, sizeof(buf), "tnltok.%s.%lld.%s", t.id, (long long) t.generation, t.mac);
    CHECK(n > 0 && (size_t) n == size && memcmp(buf, data, size) == 0);

    (void) tunnel_token_mac_ok(key, &t);
    char *tok = tunnel_token_format(key, t.id, t.generation);
    CHECK(tunnel_token_parse(tok, strlen(tok), &again) == 0);
    CHECK(strcmp(again.id, t.id) == 0 && again.generation == t.generation);
    CHECK(tunnel_token_mac_ok(key, &again));
    free(tok);
    return 0;
}
