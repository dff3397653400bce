/* SPDX-License-Identifier: Apache-2.0 */
/* Non-blocking HTTP client for the daemons: libcurl's multi interface driven
 * by a libevent event_base (one event per socket, one timer). It is not the
 * CLI's blocking client (client.h). Loop thread only; not thread-safe.
 * libcurl reads HTTPS_PROXY/NO_PROXY itself; the bearer only ever goes into
 * the Authorization header and is never logged. */
#pragma once

#include <stddef.h>

#include "../base/macro.h"
#include "sse.h"

struct event_base;
struct al_curl;        /* one per event_base; owns every transfer started on it */
struct al_curl_xfer;   /* one request or stream; owned by its al_curl */

/* Response body cap when al_curl_req_opts.max_response is 0. */
#define AL_CURL_DEFAULT_MAX_RESPONSE (64u << 20)

/* Everything is borrowed for the duration of the call only: strings, body
 * and headers are copied before al_curl_request/al_curl_sse return. */
struct al_curl_req_opts {
    const char *method;        /* "GET" when NULL */
    const char *url;           /* required; http or https only */
    const char *bearer;        /* sent as "Authorization: Bearer ..."; NULL = none */
    const char *content_type;  /* of body; NULL = none */
    const void *body;          /* NULL = no request body */
    size_t body_len;
    long timeout_ms;           /* request: whole transfer; sse: connect, then idle
                                * (no byte for this long, rounded up to seconds).
                                * 0 = no limit */
    size_t max_response;       /* request body cap (0 = default); ignored by sse,
                                * whose events are capped by AL_SSE_MAX_EVENT */
    const char *const *headers;/* NULL-terminated "Name: value" lines, or NULL */
    const char *cainfo;        /* CA bundle file; NULL = libcurl's default */
    /* al_curl_sse only, optional: fires once when a 2xx response's headers
     * have arrived, before any event (the stream is then established).
     * Same calling rules as on_event; ud is the transfer's. */
    void (*on_open)(long status, void *ud);
    /* Optional, any transfer: fires for each response header line (without
     * its CR LF; the status line included), from the loop, before the body.
     * Lines of an interim (1xx) response are delivered too. */
    void (*on_header)(const char *line, size_t len, void *ud);
    /* Optional, al_curl_request only: each chunk of the response body goes
     * here, from the loop, instead of into the buffer done receives (done
     * then gets an empty body). A negative return stops the transfer and
     * becomes done's err. max_response still caps a declared length. */
    int (*on_body)(const char *p, size_t n, void *ud);
    /* Optional: dial this "HOST:PORT:CONNECT-HOST:CONNECT-PORT" instead of
     * the URL's address (CURLOPT_CONNECT_TO); the URL's host stays the TLS
     * SNI, the verified name and the Host header. */
    const char *connect_to;
    /* Optional: verify the server against exactly these PEM CA certificates
     * (copied): no CA file, CA directory or system store is consulted. */
    const void *ca_pem;
    size_t ca_pem_len;
};

/* Completion of al_curl_request. err is 0 when a response arrived, whatever
 * its status (the caller judges status); body is then the response body,
 * NUL-terminated, borrowed for the duration of the call. Otherwise err is
 * -ECANCELED (al_curl_cancel or al_curl_free), -EMSGSIZE (body over
 * max_response), -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET,
 * -EPROTO (TLS), -EINVAL or -EIO; body is NULL, len 0, and status is what
 * was received so far (0 when nothing). */
typedef void (*al_curl_done_cb)(int err, long status, const char *body, size_t len, void *ud);

/* Completion of al_curl_sse. err is 0 when a 2xx stream ended cleanly;
 * -EPROTO when the status was not 2xx (no event was delivered; the body is
 * discarded); the negative value on_event returned to stop; -EMSGSIZE when
 * one event exceeded AL_SSE_MAX_EVENT; else as for al_curl_done_cb. */
typedef void (*al_curl_sse_done_cb)(int err, long status, void *ud);

/* Returns a client attached to base (borrowed: it must outlive the client),
 * or NULL when libcurl cannot be initialised. */
struct al_curl *al_curl_new(struct event_base *base);

/* Ends every transfer whose done callback has not fired yet: each done fires
 * now, synchronously, with -ECANCELED (so it fires exactly once for every
 * accepted transfer); requests started from those callbacks fail with
 * -ESHUTDOWN. Then closes all connections and frees c. NULL-safe; returns
 * NULL. Must not be called from inside one of c's callbacks. */
struct al_curl *al_curl_free(struct al_curl *c);

/* Starts a request. On success returns 0 and, when ret is not NULL, stores
 * the transfer in *ret; it stays valid until its done callback returns and
 * is freed by the client after that. done fires exactly once, always from
 * the event loop and never from inside al_curl_request. On failure returns
 * -EINVAL (no url, CR or LF in a header or the bearer, bad option),
 * -ESHUTDOWN (inside al_curl_free) or -ENOMEM; done never fires and *ret is
 * untouched. May be called from any callback, including done and on_event. */
_must_check_ int al_curl_request(struct al_curl *c, const struct al_curl_req_opts *o,
                                 al_curl_done_cb done, void *ud, struct al_curl_xfer **ret);

/* Starts a request whose response is read as server-sent events (sse.h):
 * on_event fires for each event, in order, from the loop, with name NULL
 * when the event had no "event:" field; data is NUL-terminated and borrowed.
 * A negative return from on_event stops the stream and becomes done's err.
 * Then done fires exactly once, as for al_curl_request. Sends
 * "Accept: text/event-stream". Return codes as for al_curl_request. */
_must_check_ int al_curl_sse(struct al_curl *c, const struct al_curl_req_opts *o,
                             al_sse_event_cb on_event, al_curl_sse_done_cb done, void *ud,
                             struct al_curl_xfer **ret);

/* Stops x. Its done fires with -ECANCELED on a later loop pass (never from
 * inside al_curl_cancel), and on_event never fires again. A no-op when x
 * was already cancelled or its done callback is running; x must not be
 * used after its done callback has returned. Safe from any callback. */
void al_curl_cancel(struct al_curl_xfer *x);
