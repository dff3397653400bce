/* SPDX-License-Identifier: Apache-2.0 */
/* Request-body decoding: the JSON decoder every handler uses, then the
 * hub's store-free validators on what it produced. The first byte picks the
 * validator; the rest is the body. Invariants: a body the decoder accepts
 * re-encodes and decodes to an equal value, and whatever a validator
 * accepts has the shape the handlers rely on. */
#include <string.h>

#include "fuzz.h"
#include "lib/base/json.h"
#include "hub/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = NULL;
    char why[256];

    if (size < 1)
        return 0;
    uint8_t which = data[0] % 3;
    int r = al_json_decode(data + 1, size - 1, 1u << 20, &j, why, sizeof(why));
    CHECK(r == 0 || r == -EBADMSG || r == -EMSGSIZE);
    if (r < 0 || !j)
        return 0;

    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    CHECK(text);
    json_t *again = NULL;
    CHECK(al_json_decode(text, strlen(text), 1u << 20, &again, why, sizeof(why)) == 0);
    CHECK(json_equal(j, again));
    json_decref(again);
    free(text);

    switch (which) {
    case 0:
        if (events_body_valid(j, why, sizeof(why))) {
            json_t *events = json_object_get(j, "events"), *ev;
            size_t i;
            CHECK(json_array_size(events) >= 1 && json_array_size(events) <= 50);
            json_array_foreach(events, i, ev) {
                const char *t = json_string_value(json_object_get(ev, "type"));
                CHECK(t);
                CHECK(!json_object_get(ev, "id"));
                if (!strcmp(t, "user.tool_result"))
                    CHECK(json_is_string(json_object_get(ev, "tool_use_id")));
                if (!strcmp(t, "user.message"))
                    CHECK(json_is_array(json_object_get(ev, "content")));
            }
        }
        break;
    case 1:
        if (event_param_valid(j, true, why, sizeof(why))) {
            const char *t = json_string_value(json_object_get(j, "type"));
            CHECK(t && (!strcmp(t, "user.message") || !strcmp(t, "user.define_outcome")));
        }
        break;
    default:
        if (json_metadata_valid(j, why, sizeof(why)))
            CHECK(json_is_object(j) && json_object_size(j) <= 16);
        break;
    }
    json_decref(j);
    return 0;
}
