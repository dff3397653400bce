/* SPDX-License-Identifier: Apache-2.0 */
/* Request-body decoding and validation that does not need the store: JSON
 * event params, metadata. Pure (jansson and
 * libc only), so it is fuzzed as it stands (fuzz/fuzz_json_body.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../lib/base/macro.h"

/* Metadata: an object of ≤ 16 string values (null allowed: a deletion),
 * keys 1–64 characters, values ≤ 512. */
bool json_metadata_valid(json_t *md, char *why, size_t whylen);
/* One event param of a send (initial: of a session create's initial_events). */
bool event_param_valid(json_t *ev, bool initial, char *why, size_t n);
/* The body of POST /v1/sessions/{id}/events: {"events":[1..50 valid params]}. */
bool events_body_valid(json_t *body, char *why, size_t n);
