/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the JSON-RPC audit extractor (src/gateway/audit.c)
 * and the JCS serializer (src/gateway/jcs.c). Input: two bytes of request
 * length, the client's bytes, then the upstream's, fed through the HTTP/1.1
 * observer into the extractor. Every line written must be a JSON object
 * with a known status and only the documented fields (so no header, token
 * or body can slip in under another name). Separately,
 * the input read as JSON must canonicalise to a fixed point:
 * jcs(parse(jcs(x))) == jcs(x). */
#include <string.h>

#include "fuzz.h"
#include "gateway/stream_internal.h"
#include "lib/base/util.h"

static const char key[] = "fuzz-audit-key-0123456789";

static void sink(void *arg, const char *line)
{
    size_t *n = arg;
    json_t *j = json_loads(line, 0, NULL);
    CHECK(json_is_object(j));
    const char *st = json_string_value(json_object_get(j, "status"));
    CHECK(st && (strcmp(st, "ok") == 0 || strcmp(st, "error") == 0 || strcmp(st, "aborted") == 0 ||
                 strcmp(st, "notification") == 0));
    static const char *const top[] = { "ts", "tunnel", "route", "upstream", "conn", "stream", "client_ip", "sni",
                                       "proto_ver", "session", "rpc_id", "method", "tool", "uri", "args_hmac",
                                       "args_bytes", "truncated", "mcp_name_mismatch", "agent", "status", "is_error",
                                       "jsonrpc_error", "http_status", "sse", "latency_ms", "ttfb_ms", "bytes_in",
                                       "bytes_out" };
    static const char *const agent[] = { "iss", "sub", "client_id", "azp", "client_info", "user_agent" };
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        bool known = false;
        for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
            known |= strcmp(k, top[i]) == 0;
        CHECK(known);
    }
    CHECK(json_is_object(json_object_get(j, "agent")));
    json_object_foreach(json_object_get(j, "agent"), k, v) {
        bool known = false;
        for (size_t i = 0; i < sizeof(agent) / sizeof(agent[0]); i++)
            known |= strcmp(k, agent[i]) == 0;
        CHECK(known && (json_is_string(v) || json_is_null(v)));
    }
    const char *h = json_string_value(json_object_get(j, "args_hmac"));
    CHECK(!h || strncmp(h, "hmac-sha256:kf:", 15) == 0);
    json_decref(j);
    (*n)++;
}

static void check_jcs(const uint8_t *data, size_t size)
{
    json_t *v = json_loadb((const char *) data, size, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    if (!v)
        return;
    struct al_buf a = { .max = 1 << 20 }, b = { .max = 1 << 20 };
    if (gw_jcs_append(v, &a) == 0) {
        json_t *w = json_loadb(a.data, a.len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
        CHECK(w);
        CHECK(gw_jcs_append(w, &b) == 0);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        json_decref(w);
    }
    al_buf_clear(&a);
    al_buf_clear(&b);
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    check_jcs(data + 2, size - 2);
    size_t rn = ((size_t) data[0] << 8 | data[1]), lines = 0;
    data += 2;
    size -= 2;
    if (rn > size)
        rn = size;
    struct gw_audit *a = gw_audit_new_sink(key, sizeof(key) - 1, "kf", sink, &lines);
    struct gw_audit_stream_info info = { .route = "docs", .stream = 1 };
    struct gw_audit_stream *s = gw_audit_stream_new(a, &info, NULL, NULL);
    struct gw_h1 *h = gw_h1_new(&gw_audit_h1_cb, s);
    gw_audit_stream_set_h1(s, h);
    (void) gw_h1_feed(h, 0, data, rn);
    (void) gw_h1_feed(h, 1, data + rn, size - rn);
    gw_h1_eof(h, 1);
    s = gw_audit_stream_free(s);
    gw_h1_free(h);
    CHECK(gw_audit_records(a) == lines);
    gw_audit_free(a);
    return 0;
}
