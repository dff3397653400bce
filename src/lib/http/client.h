/* SPDX-License-Identifier: Apache-2.0 */
/* A blocking HTTP client on libcurl's easy interface, for the CLI's admin
 * verbs (one request at a time, no event loop). The daemons' non-blocking
 * client (curl multi on libevent) is a separate module. Honours
 * HTTPS_PROXY/NO_PROXY through libcurl. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "../base/macro.h"

struct al_client {
    char *base_url;          /* "http://127.0.0.1:8080" */
    char *credential;        /* sent as Authorization: Bearer; never printed */
    long timeout_ms;         /* 0 = none */
};

struct al_response {
    long status;
    char *body;              /* NUL-terminated */
    size_t len;
    json_t *json;            /* parsed body, or NULL */
};

/* Sends method path (with query) and an optional JSON body (borrowed).
 * Returns 0 when an HTTP response arrived (any status), -errno otherwise. */
_must_check_ int al_client_request(const struct al_client *c, const char *method, const char *path,
                                   json_t *body, struct al_response *resp);
/* Same with a raw body and content type (uploads). */
_must_check_ int al_client_request_raw(const struct al_client *c, const char *method, const char *path,
                                       const char *content_type, const void *data, size_t n,
                                       struct al_response *resp);
void al_response_done(struct al_response *resp);

/* Streams an SSE response, calling cb for each event until the stream ends,
 * cb returns < 0, or an error. Returns 0 on a clean end. */
typedef int (*al_client_sse_cb)(const char *event, const char *data, size_t len, void *ud);
_must_check_ int al_client_sse(const struct al_client *c, const char *path, al_client_sse_cb cb, void *ud);

/* Like al_client_sse, with two additions. on_open (may be NULL) runs once,
 * when a 2xx response's headers have arrived and before any event is read:
 * the place to list history so that nothing falls between the list and the
 * stream (a blocking request on another handle is fine there); its negative
 * value stops the stream and is returned. resp (may be NULL) receives the
 * status; on a non-2xx answer also the error body (capped at 1 MiB), and
 * -EPROTO is returned. The caller calls al_response_done(resp) either way. */
_must_check_ int al_client_sse_ex(const struct al_client *c, const char *path,
                                  int (*on_open)(void *ud), al_client_sse_cb cb, void *ud,
                                  struct al_response *resp);

/* Percent-encodes s for a path segment or a query value (RFC 3986
 * unreserved characters pass through). Caller frees. */
char *al_client_escape(const char *s);
