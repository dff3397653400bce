/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the hub's MCP response handling (src/hub/mcp_rpc.c):
 * the input is read twice, once as one JSON-RPC message (an
 * application/json body) and once as an event stream whose events each go
 * through the picker, as mcp_client.c does with text/event-stream answers.
 * Checks the contract: the picker returns -EBADMSG, 0 or 1 and writes *ret
 * only on 1, with an object whose integer id is the one asked for; every
 * picked response turns into either a content array or a short, valid
 * UTF-8 message; header values and tunnel hostnames stay inside their
 * input. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "hub/mcp_rpc.c"   /* the parser is not in a library the targets link */
#include "lib/base/utf8.h"
#include "lib/http/sse.h"

#define WANT_ID 1

static void check_response(json_t *resp)
{
    json_t *content = NULL;
    bool is_error = false;
    char *msg = NULL, *version = NULL;

    CHECK(json_is_object(resp));
    CHECK(json_integer_value(json_object_get(resp, "id")) == WANT_ID);
    int r = mcp_rpc_tool_result(resp, &content, &is_error, &msg);
    if (r == 0) {
        CHECK(json_is_array(content) && msg == NULL);
        json_decref(content);
    } else {
        CHECK((r == -EPROTO || r == -EBADMSG) && content == NULL && msg != NULL);
        CHECK(al_utf8_valid(msg, strlen(msg)) && strlen(msg) < MCP_ERROR_TEXT_MAX + 128);
        free(msg);
    }
    msg = NULL;
    r = mcp_rpc_init_version(resp, &version, &msg);
    CHECK((r == 0) == (version != NULL) && (r == 0) == (msg == NULL));
    free(version);
    free(msg);
}

static void pick_one(const char *data, size_t len)
{
    json_t *resp = NULL;
    int r = mcp_rpc_pick(data, len, WANT_ID, &resp);
    CHECK(r == -EBADMSG || r == 0 || r == 1);
    CHECK((r == 1) == (resp != NULL));
    if (resp) {
        check_response(resp);
        json_decref(resp);
    }
}

static int on_event(const char *name, const char *data, size_t len, void *ud)
{
    pick_one(data, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *) data;
    struct al_sse_reader rd;

    pick_one(s, size);

    al_sse_reader_init(&rd);
    int r = al_sse_reader_feed(&rd, s, size, on_event, NULL);
    CHECK(r == 0 || r == -EMSGSIZE);
    al_sse_reader_done(&rd);

    const char *v;
    size_t n;
    if (mcp_header_value(s, size, "mcp-session-id", &v, &n)) {
        CHECK(v >= s && v + n <= s + size);
        (void) mcp_session_id_ok(v, n);
        (void) mcp_body_kind(v, n);
    }

    /* A host: the input up to its first NUL, against a fixed domain. */
    char host[256], out[256];
    size_t hl = strnlen(s, size < sizeof(host) - 1 ? size : sizeof(host) - 1);
    memcpy(host, s, hl);
    host[hl] = '\0';
    int t = mcp_tunnel_hostname(host, "tunnel.test", out, sizeof(out));
    CHECK(t == 0 || t == 1);
    if (t == 1) {
        size_t ol = strlen(out);
        CHECK(ol <= hl && !strcmp(host + hl - ol, out));
        CHECK(ol > strlen(".tunnel.test") && !strcmp(out + ol - strlen(".tunnel.test"), ".tunnel.test"));
        CHECK(strchr(out, '.') == out + ol - strlen(".tunnel.test"));   /* one label, then the domain */
    }
    return 0;
}
