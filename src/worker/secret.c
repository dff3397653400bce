/* SPDX-License-Identifier: Apache-2.0 */
/* The work item secret (spec §1.5): base64url (or base64) of a JSON object
 * whose sessions_token is the preferred per-item credential. Anything else
 * (bad base64, bad JSON, not an object, no or empty token) yields NULL and
 * the caller falls back to the environment key. Nothing is logged here:
 * the payload is a credential. */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "../lib/base/util.h"
#include "wk.h"

static bool plausible_base(const char *u)
{
    size_t n = strlen(u);

    if (n > 2048 || strpbrk(u, " \t\r\n?#"))
        return false;
    return !strncmp(u, "https://", 8) || !strncmp(u, "http://", 7);
}

char *wk_secret_decode(const char *secret, char **api_base)
{
    _cleanup_free_ unsigned char *raw = NULL;
    size_t n = 0;
    json_t *j;
    char *tok = NULL;

    if (api_base)
        *api_base = NULL;
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
        const char *b = json_string_value(json_object_get(j, "api_base_url"));
        if (tok && api_base && b && plausible_base(b)) {
            *api_base = al_xstrdup(b);
            while (**api_base && (*api_base)[strlen(*api_base) - 1] == '/')
                (*api_base)[strlen(*api_base) - 1] = '\0';
        }
    }
    json_decref(j);
    return tok;
}

char *wk_secret_sessions_token(const char *secret)
{
    return wk_secret_decode(secret, NULL);
}
