/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "json.h"

int al_json_decode(const void *data, size_t n, size_t max, json_t **ret, char *why, size_t whylen)
{
    json_error_t err;

    *ret = NULL;
    if (n > max) {
        snprintf(why, whylen, "request body is %zu bytes; the limit is %zu", n, max);
        return -EMSGSIZE;
    }
    if (n == 0)
        return 0;
    json_t *j = json_loadb(data, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!j) {
        snprintf(why, whylen, "request body is not valid JSON: %s", err.text);
        return -EBADMSG;
    }
    *ret = j;
    return 0;
}

