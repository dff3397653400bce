/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the --allowed-ips parser (src/gateway/cidr.c). Any
 * input parses or is refused with a message; a parsed list allows each of
 * its own network addresses, and only in its own family. */
#include <netinet/in.h>
#include <string.h>

#include "fuzz.h"
#include "gateway/stream_internal.h"
#include "lib/base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gw_cidr_list l;
    char why[256] = "";

    if (size > 4096)
        return 0;
    char *s = al_xstrndup((const char *) data, size);
    int r = gw_cidr_parse_list(s, &l, why, sizeof(why));
    free(s);
    if (r < 0) {
        CHECK(why[0] != '\0');
        return 0;
    }
    CHECK(l.n >= 1 && l.n <= GW_CIDR_MAX);
    for (size_t i = 0; i < l.n; i++) {
        struct sockaddr_storage ss = { 0 };
        const struct gw_cidr *c = &l.v[i];
        if (c->family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *) &ss;
            CHECK(c->bits <= 32);
            in->sin_family = AF_INET;
            memcpy(&in->sin_addr, c->addr, 4);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
            CHECK(c->family == AF_INET6 && c->bits <= 128);
            in6->sin6_family = AF_INET6;
            memcpy(&in6->sin6_addr, c->addr, 16);
        }
        CHECK(gw_cidr_allows(&l, (struct sockaddr *) &ss));
    }
    struct sockaddr_storage unix_sa = { .ss_family = AF_UNIX };
    CHECK(!gw_cidr_allows(&l, (struct sockaddr *) &unix_sa));
    return 0;
}
