/* SPDX-License-Identifier: Apache-2.0 */
/* The outer TLS link between gateway and relay (docs/internals/TUNNEL.md §2):
 * the relay's server context (its own certificate and key, TLS 1.3) and the
 * gateway's client context (a CA file or the system store, hostname
 * verification, SNI), and the OpenSSL bufferevents made from them. Nothing
 * here touches inner (end-to-end) TLS. Loop thread only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "../base/macro.h"

struct event_base;
struct bufferevent;
struct al_outer_ctx;

/* Relay: loads cert_file (PEM chain) and key_file. On failure returns
 * -EINVAL with an operator-readable message in why; *ret is untouched. */
_must_check_ int al_outer_server_new(const char *cert_file, const char *key_file,
                                     struct al_outer_ctx **ret, char *why, size_t whylen);
/* Gateway: verifies the relay against ca_file, or the system store when NULL. */
_must_check_ int al_outer_client_new(const char *ca_file, struct al_outer_ctx **ret, char *why,
                                     size_t whylen);
struct al_outer_ctx *al_outer_free(struct al_outer_ctx *o);

/* A bufferevent doing the server side of a handshake on fd (owned: closed
 * when the bufferevent is freed). NULL on failure (fd closed). */
struct bufferevent *al_outer_accept(struct al_outer_ctx *o, struct event_base *base, int fd);
/* A bufferevent doing the client side on a connected fd, with SNI and the
 * verified name set to name (a host name or an IP literal). */
struct bufferevent *al_outer_connect(struct al_outer_ctx *o, struct event_base *base, int fd,
                                     const char *name);
/* After a BEV_EVENT_ERROR on an outer bufferevent: a short description of
 * the TLS failure ("certificate verify failed: ..."), or NULL if it was not
 * a TLS error. Borrowed until the next call. */
const char *al_outer_error(struct bufferevent *bev);
/* Bytes read ahead per read() on a busy outer link. */
#define AL_OUTER_READ_AHEAD (128 * 1024)
/* After the owner consumed bev's input: if OpenSSL still holds records it
 * read ahead, run the bufferevent's read again from the loop instead of
 * waiting for the socket (which may stay quiet). NULL-safe for a bufferevent
 * that is not an OpenSSL one. */
void al_outer_kick_read(struct bufferevent *bev);
/* True once the handshake on bev verified the peer (client side). */
bool al_outer_verified(struct bufferevent *bev);
