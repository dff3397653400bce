/* SPDX-License-Identifier: Apache-2.0 */
/* The gateway's inner TLS: a server context with the operator's certificate
 * chain and key (TLS 1.2+, ALPN http/1.1, SNI reported to a callback), and a
 * session object over memory BIOs, so the bytes can come from any transport
 * (an HTTP/2 CONNECT stream or a socket). No I/O and no event loop here; the
 * caller moves ciphertext in and out. Not thread-safe: one loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../base/macro.h"

struct al_inner_ctx;
struct al_inner_sess;

/* Decides on the SNI of a ClientHello (name is NULL when none was sent).
 * Returns 0 to go on, or -ENOENT to fail the handshake with the
 * unrecognized_name alert. Runs inside al_inner_handshake(). */
typedef int (*al_inner_sni_fn)(void *arg, const char *name);

/* Loads cert_file (PEM chain) and key_file (PEM) into a new context. On
 * failure returns -EINVAL/-ENOMEM with a message fit for an operator in why
 * and leaves *ret untouched. */
_must_check_ int al_inner_ctx_new(const char *cert_file, const char *key_file,
                                  struct al_inner_ctx **ret, char *why, size_t whylen);
/* NULL-safe; sessions made from ctx keep it alive until they are freed. */
struct al_inner_ctx *al_inner_ctx_unref(struct al_inner_ctx *ctx);

/* A new server session on ctx; sni_fn(arg, name) is consulted during the
 * handshake. Returns NULL on allocation failure. */
struct al_inner_sess *al_inner_sess_new(struct al_inner_ctx *ctx, al_inner_sni_fn sni_fn, void *arg);
void al_inner_sess_free(struct al_inner_sess *s);   /* NULL-safe */

/* Ciphertext from the peer. Memory BIOs take everything; the caller bounds
 * what it feeds by the transport's flow control. */
void al_inner_feed(struct al_inner_sess *s, const void *data, size_t len);
/* The peer's byte stream ended (TCP EOF / END_STREAM). */
void al_inner_feed_eof(struct al_inner_sess *s);
/* Ciphertext fed and not yet processed by OpenSSL. */
size_t al_inner_pending_in(const struct al_inner_sess *s);

/* Drives the handshake: 1 done, 0 needs more input, -ENOENT the SNI was
 * refused (alert queued), -EPROTO any other failure (alert queued). */
int al_inner_handshake(struct al_inner_sess *s);
bool al_inner_handshake_done(const struct al_inner_sess *s);
/* Decrypts into buf: > 0 bytes, 0 the peer sent close_notify, -EAGAIN needs
 * more input, -EPROTO a TLS error or EOF without close_notify. */
ssize_t al_inner_read(struct al_inner_sess *s, void *buf, size_t cap);
/* Encrypts len bytes (all of them, into the output). 0 or -EPROTO. */
int al_inner_write(struct al_inner_sess *s, const void *data, size_t len);
/* Queues close_notify. */
void al_inner_shutdown(struct al_inner_sess *s);
/* Moves up to cap bytes of ciphertext for the peer into buf; returns the
 * count (0 when none is waiting). */
size_t al_inner_take_out(struct al_inner_sess *s, void *buf, size_t cap);
size_t al_inner_pending_out(const struct al_inner_sess *s);

/* The SNI the client sent (lower-cased), or NULL. Borrowed from s. */
const char *al_inner_sni(const struct al_inner_sess *s);
/* The negotiated protocol version ("TLSv1.3"), or NULL before the handshake. */
const char *al_inner_version(const struct al_inner_sess *s);
