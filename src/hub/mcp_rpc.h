/* SPDX-License-Identifier: Apache-2.0 */
/* The pure parts of the hub's MCP client (mcp_client.c): picking the
 * JSON-RPC response to one request out of the messages a Streamable HTTP
 * server sends, turning it into a tool result, and reading the few response
 * headers the client cares about. No I/O; fuzzed by fuzz/fuzz_mcp_rpc.c. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/base/macro.h"

#define MCP_PROTOCOL_VERSION "2025-11-25"  /* what initialize asks for */
#define MCP_SESSION_ID_MAX   256           /* longest Mcp-Session-Id kept */
#define MCP_ERROR_TEXT_MAX   512           /* bytes of a server's error message kept */

/* Looks at one JSON-RPC message (a JSON object, or a batch array of them)
 * for the response to request id: an object with that integer id and a
 * "result" or an "error" member. Returns 1 with *ret a new reference to it;
 * 0 when the message is something else (a notification, a request from the
 * server, a response to another id), *ret untouched; -EBADMSG when buf is
 * not a JSON object or array. */
_must_check_ int mcp_rpc_pick(const char *buf, size_t len, int64_t id, json_t **ret);

/* The outcome of a tools/call response (borrowed). Returns 0 for a result:
 * *ret_content is a new reference to its "content" array (an empty array
 * when there is none) and *ret_is_error its "isError". Returns -EPROTO for
 * a JSON-RPC error, -EBADMSG for a response that is neither; then *ret_msg
 * is a short, valid UTF-8 description (caller frees) and the other outputs
 * are untouched. */
_must_check_ int mcp_rpc_tool_result(json_t *resp, json_t **ret_content, bool *ret_is_error, char **ret_msg);

/* The protocol version an initialize response (borrowed) settled on. Returns
 * 0 with *ret_version (caller frees) when it is one this client speaks
 * (2025-03-26, 2025-06-18, 2025-11-25); otherwise -EPROTO, -EBADMSG or the
 * JSON-RPC error, described in *ret_msg (caller frees). */
_must_check_ int mcp_rpc_init_version(json_t *resp, char **ret_version, char **ret_msg);

/* When line ("Name: value", no CR LF) is header name (case-insensitive),
 * returns true with the value, trimmed of spaces and tabs, in *ret_val
 * (borrowed from line) and *ret_len. */
bool mcp_header_value(const char *line, size_t len, const char *name, const char **ret_val, size_t *ret_len);

/* True for a usable Mcp-Session-Id: 1..MCP_SESSION_ID_MAX visible ASCII
 * characters (0x21-0x7E). */
bool mcp_session_id_ok(const char *v, size_t n);

enum mcp_body_kind { MCP_BODY_OTHER, MCP_BODY_JSON, MCP_BODY_SSE };
/* Classifies a Content-Type value by its media type. */
enum mcp_body_kind mcp_body_kind(const char *v, size_t n);

/* When host (lower-case) is "[<route>.]<label>.<domain>", writes the
 * tunnel hostname "<label>.<domain>" to out (NUL-terminated) and returns 1;
 * returns 0 for a host outside domain or the domain itself, and
 * -ENAMETOOLONG when out is too small. */
int mcp_tunnel_hostname(const char *host, const char *domain, char *out, size_t outsz);
