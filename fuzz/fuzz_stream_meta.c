/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the gateway's stream-metadata parser
 * (src/gateway/conn_meta.c). The input is a header list: lines
 * "name\tvalue" separated by '\n' (at most 24). A success means exactly the
 * §3 header set: the SNI is a DNS name, :authority is "<sni>:443", and the
 * tunnel id and client address are bounded. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "gateway/conn.h"
#include "lib/base/util.h"
#include "lib/h2/h2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct al_h2_header h[24];
    size_t n = 0;
    char *buf = al_xmalloc(size + 1);

    memcpy(buf, data, size);
    buf[size] = '\0';
    for (char *line = buf; line && n < AL_ELEMENTSOF(h);) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = '\0';
            h[n++] = (struct al_h2_header){ line, tab + 1, strlen(line), strlen(tab + 1) };
        }
        line = next;
    }
    struct gw_meta m;
    int r = gw_meta_parse(h, n, &m);
    CHECK(r == 0 || r == -EBADMSG);
    if (r == 0) {
        CHECK(al_is_dns_name(m.sni, strlen(m.sni)));
        CHECK(strncmp(m.tunnel_id, "tnl_", 4) == 0);
        CHECK(strlen(m.client_addr) < GW_CLIENT_ADDR_MAX);
        CHECK(m.stream_id <= (1ull << 53));
    }
    free(buf);
    return 0;
}
