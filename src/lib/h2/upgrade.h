/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP/1.1 upgrade that opens a gateway→relay connection
 * (docs/internals/TUNNEL.md §2): pure parsers of the gateway's request head
 * (relay side) and of the relay's answer head (gateway side). No I/O, no
 * allocation; both fuzzed by fuzz/fuzz_upgrade.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../base/macro.h"

#define AL_UPGRADE_HEAD_MAX 8192
#define AL_UPGRADE_PROTO "airlock-tunnel/1"
#define AL_UPGRADE_PATH "/v1/tunnel/connect"
#define AL_TOKEN_MAX 512
#define AL_CONNECTOR_ID_MAX 64
#define AL_TUNNEL_ID_MAX 80
#define AL_HOSTNAME_MAX 253

struct al_upgrade_req {
    char token[AL_TOKEN_MAX + 1];           /* "" when no Bearer token was sent */
    char connector_id[AL_CONNECTOR_ID_MAX + 1];
    char host[AL_HOSTNAME_MAX + 8];         /* Host header, "" when absent */
    int slot;                               /* -1 when absent */
};

struct al_upgrade_resp {
    int status;                             /* 101 on success */
    char tunnel_id[AL_TUNNEL_ID_MAX + 1];   /* 101 only */
    char hostname[AL_HOSTNAME_MAX + 1];     /* 101 only, lower-case */
    long retry_after_s;                     /* -1 when absent */
    long content_length;                    /* -1 when absent */
};

/* Parses the request head at buf[0..len). Returns the head's length
 * (through the blank line) with *ret filled; -EAGAIN when incomplete;
 * -EMSGSIZE when no head end within AL_UPGRADE_HEAD_MAX; -EBADMSG for a
 * malformed head or a request that is not this upgrade (method, path,
 * version, Upgrade/Connection headers, a duplicated or malformed
 * Authorization, connector id or slot). *ret is written only on success. */
_must_check_ ssize_t al_upgrade_parse_request(const char *buf, size_t len, struct al_upgrade_req *ret);

/* Parses the answer head. Returns its length with *ret filled, -EAGAIN,
 * -EMSGSIZE, or -EBADMSG (malformed; a 101 without the right Upgrade, a
 * valid tunnel id and a valid hostname). */
_must_check_ ssize_t al_upgrade_parse_response(const char *buf, size_t len, struct al_upgrade_resp *ret);

/* True for a lower-case DNS name of LDH labels (1..253 bytes, no empty
 * label, no trailing dot). */
bool al_is_dns_name(const char *s, size_t n);
