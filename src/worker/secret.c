/* SPDX-License-Identifier: Apache-2.0 */
/* The work item secret (spec §1.5): base64url (or base64) of a JSON object
 * whose sessions_token is the preferred per-item credential. Anything else
 * (bad base64, bad JSON, not an object, no or empty token) yields NULL and
 * the caller falls back to the environment key. Nothing is logged here:
 * the payload is a credential. */
#include <string.h>

#include <jansson.h>

#include "../lib/base/util.h"
#include "wk.h"

char *wk_secret_sessions_token(const char *secret)
{
    _cleanup_free_ unsigned char *raw = NULL;
    size_t n = 0;
    json_t *j;
    char *tok = NULL;

    if (!secret || !*secret || strlen(secret) > (1u << 16))
        return NULL;
    if (al_b64_decode(secret, strlen(secret), &raw, &n) < 0)
        return NULL;
    j = json_loadb((const char *) raw, n, JSON_REJECT_DUPLICATES, NULL);
    explicit_bzero(raw, n);
    if (json_is_object(j)) {
        const char *t = json_string_value(json_object_get(j, "sessions_token"));
        if (t && *t && !strpbrk(t, "\r\n"))
            tok = al_xstrdup(t);
    }
    json_decref(j);
    return tok;
}
