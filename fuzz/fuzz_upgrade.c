/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the tunnel upgrade heads (src/lib/h2/upgrade.c):
 * the relay's request parser and the gateway's answer parser both read the
 * input. A success consumes a head ending in CR LF CR LF within the input
 * and the 8 KiB cap, and what it extracted is bounded and well-formed. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "lib/h2/upgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *) data;
    struct al_upgrade_req q;
    struct al_upgrade_resp p;

    ssize_t r = al_upgrade_parse_request(s, size, &q);
    CHECK(r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE || r > 0);
    if (r > 0) {
        CHECK((size_t) r <= size && r <= AL_UPGRADE_HEAD_MAX);
        CHECK(memcmp(s + r - 4, "\r\n\r\n", 4) == 0);
        CHECK(strlen(q.token) <= AL_TOKEN_MAX && !strchr(q.token, ' '));
        CHECK(q.slot >= -1 && q.slot < 64);
        CHECK(strlen(q.connector_id) <= AL_CONNECTOR_ID_MAX);
    }
    r = al_upgrade_parse_response(s, size, &p);
    CHECK(r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE || r > 0);
    if (r > 0) {
        CHECK((size_t) r <= size && r <= AL_UPGRADE_HEAD_MAX);
        CHECK(p.status >= 100 && p.status <= 999);
        if (p.status == 101) {
            CHECK(strncmp(p.tunnel_id, "tnl_", 4) == 0);
            CHECK(al_is_dns_name(p.hostname, strlen(p.hostname)));
        }
    }
    return 0;
}
