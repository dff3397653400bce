/* SPDX-License-Identifier: Apache-2.0 */
/* Decoding of JSON request bodies with the rules every daemon applies: one
 * value, duplicate keys refused, a size cap. Pure (jansson); fuzzed. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "macro.h"

/* Returns 0 (*ret is NULL for an empty body), -EMSGSIZE, or -EBADMSG; why
 * receives a message fit for the client. */
_must_check_ int al_json_decode(const void *data, size_t n, size_t max, json_t **ret, char *why, size_t whylen);
