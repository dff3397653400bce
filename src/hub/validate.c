/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "validate.h"

bool json_metadata_valid(json_t *md, char *why, size_t whylen)
{
    const char *k;
    json_t *v;

    if (!json_is_object(md)) {
        snprintf(why, whylen, "metadata must be an object of strings");
        return false;
    }
    if (json_object_size(md) > 16) {
        snprintf(why, whylen, "metadata may have at most 16 keys");
        return false;
    }
    json_object_foreach(md, k, v) {
        if (strlen(k) == 0 || strlen(k) > 64) {
            snprintf(why, whylen, "metadata keys must be 1 to 64 characters");
            return false;
        }
        if (json_is_null(v))
            continue;
        if (!json_is_string(v) || json_string_length(v) > 512) {
            snprintf(why, whylen, "metadata value of \"%.64s\" must be a string of at most 512 characters", k);
            return false;
        }
    }
    return true;
}

static bool content_valid(json_t *content, bool required, char *why, size_t n)
{
    size_t i;
    json_t *b;
    if (!content)
        return !required || (snprintf(why, n, "content is required"), false);
    if (!json_is_array(content)) {
        snprintf(why, n, "content must be an array of content blocks");
        return false;
    }
    json_array_foreach(content, i, b) {
        const char *t = json_string_value(json_object_get(b, "type"));
        if (!t) {
            snprintf(why, n, "content[%zu].type is required", i);
            return false;
        }
        if (!strcmp(t, "text")) {
            if (!json_is_string(json_object_get(b, "text"))) {
                snprintf(why, n, "content[%zu].text must be a string", i);
                return false;
            }
        } else if (strcmp(t, "image") && strcmp(t, "document") && strcmp(t, "search_result") && strcmp(t, "redacted")) {
            snprintf(why, n, "content[%zu].type \"%.32s\" is not supported", i, t);
            return false;
        }
    }
    return true;
}

bool event_param_valid(json_t *ev, bool initial, char *why, size_t n)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!json_is_object(ev) || !type) {
        snprintf(why, n, "every event needs a type");
        return false;
    }
    if (json_object_get(ev, "id") || json_object_get(ev, "processed_at")) {
        snprintf(why, n, "id and processed_at are assigned by the server");
        return false;
    }
    if (initial && strcmp(type, "user.message") && strcmp(type, "user.define_outcome")) {
        snprintf(why, n, "only user.message and user.define_outcome may be initial events");
        return false;
    }
    if (!strcmp(type, "user.message"))
        return content_valid(json_object_get(ev, "content"), true, why, n);
    if (!strcmp(type, "user.interrupt"))
        return true;
    if (!strcmp(type, "user.tool_confirmation")) {
        const char *res = json_string_value(json_object_get(ev, "result"));
        if (!json_is_string(json_object_get(ev, "tool_use_id"))) {
            snprintf(why, n, "tool_use_id is required");
            return false;
        }
        if (!res || (strcmp(res, "allow") && strcmp(res, "deny"))) {
            snprintf(why, n, "result must be \"allow\" or \"deny\"");
            return false;
        }
        json_t *dm = json_object_get(ev, "deny_message");
        if (dm && !json_is_null(dm) && (!json_is_string(dm) || strcmp(res, "deny"))) {
            snprintf(why, n, "deny_message is a string, allowed only with result \"deny\"");
            return false;
        }
        return true;
    }
    if (!strcmp(type, "user.tool_result") || !strcmp(type, "user.custom_tool_result")) {
        const char *key = type[5] == 't' ? "tool_use_id" : "custom_tool_use_id";
        if (!json_is_string(json_object_get(ev, key))) {
            snprintf(why, n, "%s is required", key);
            return false;
        }
        json_t *ie = json_object_get(ev, "is_error");
        if (ie && !json_is_boolean(ie) && !json_is_null(ie)) {
            snprintf(why, n, "is_error must be a boolean");
            return false;
        }
        return content_valid(json_object_get(ev, "content"), false, why, n);
    }
    if (!strcmp(type, "user.define_outcome")) {
        json_t *mi = json_object_get(ev, "max_iterations");
        if (!json_is_string(json_object_get(ev, "description")) || !json_is_object(json_object_get(ev, "rubric"))) {
            snprintf(why, n, "description and rubric are required");
            return false;
        }
        if (mi && !json_is_null(mi) && (!json_is_integer(mi) || json_integer_value(mi) < 1 || json_integer_value(mi) > 20)) {
            snprintf(why, n, "max_iterations must be 1 to 20");
            return false;
        }
        return true;
    }
    if (!strcmp(type, "system.message"))
        return content_valid(json_object_get(ev, "content"), true, why, n);
    snprintf(why, n, "event type \"%.64s\" cannot be sent", type);
    return false;
}

bool events_body_valid(json_t *body, char *why, size_t n)
{
    json_t *events = json_object_get(body, "events"), *v;
    size_t i;
    char inner[200];

    if (!json_is_array(events) || json_array_size(events) == 0 || json_array_size(events) > 50) {
        snprintf(why, n, "events: must be an array of 1 to 50 events");
        return false;
    }
    json_array_foreach(events, i, v) if (!event_param_valid(v, false, inner, sizeof(inner))) {
        snprintf(why, n, "events[%zu]: %s", i, inner);
        return false;
    }
    return true;
}
