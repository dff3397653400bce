/* SPDX-License-Identifier: Apache-2.0 */
/* The relay's ClientHello peek: a pure, bounds-checked parser of the first
 * TLS handshake message a client sends, reassembled across records (and so
 * across TCP segments, by calling again with more bytes). It reads the
 * server_name (lower-cased) and the first ALPN protocol; nothing is
 * decrypted and nothing is allocated. Fuzzed by fuzz/fuzz_sni.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/base/macro.h"

#define RELAY_SNI_MAX 253            /* DNS name length limit */
#define RELAY_ALPN_MAX 32
#define RELAY_HELLO_MAX (32u << 10)  /* ClientHello message body cap (bytes) */
/* Most bytes a caller buffers before giving up (records add 5 bytes each). */
#define RELAY_HELLO_BUF_MAX (48u << 10)

struct relay_hello {
    char sni[RELAY_SNI_MAX + 1];     /* "" when the hello has no server_name */
    char alpn[RELAY_ALPN_MAX + 1];   /* first ALPN protocol offered, "" when none/too long */
    bool has_alpn;
    unsigned records;                /* TLS records the hello spanned */
};

/* Parses buf[0..len) (the first bytes a client sent) with scratch (at least
 * RELAY_HELLO_MAX + 4 bytes) to reassemble the handshake message. Returns:
 *   > 0        the number of bytes up to the end of the record that
 *              completes the ClientHello; *ret is filled;
 *   -EAGAIN    a well-formed prefix: call again with more bytes;
 *   -EBADMSG   not a TLS ClientHello, or malformed (bad lengths, a bad or
 *              duplicated server_name, non-handshake records in between);
 *   -EMSGSIZE  the ClientHello is larger than RELAY_HELLO_MAX.
 * ret is written only on success. */
_must_check_ ssize_t relay_sni_parse(const uint8_t *buf, size_t len, uint8_t *scratch, size_t scratchlen,
                                     struct relay_hello *ret);
