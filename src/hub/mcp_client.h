/* SPDX-License-Identifier: Apache-2.0 */
/* The hub's MCP client: calls a tool on one of a session's MCP servers over
 * Streamable HTTP (initialize, notifications/initialized, tools/call) on the
 * hub's loop through curl_ev, and hands the outcome to the agent loop
 * (loop_mcp_resolve). Servers under --tunnel-domain are reached through the
 * relay at --tunnel-relay and verified against their tunnel's active CA
 * certificates only. An initialized MCP session is kept per (hub session,
 * server, URL) for later calls. Loop thread only. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "../lib/base/macro.h"

struct hub;

_must_check_ int mcp_client_init(struct hub *h);
/* Drops every call in flight without resolving it (the next hub start
 * resolves them as interrupted) and frees the client. NULL-safe. */
void mcp_client_done(struct hub *h);

/* Starts calling tool with input (borrowed) on session's MCP server named
 * server, answering the agent.mcp_tool_use event call_id. Returns 0 when the
 * call is in flight: loop_mcp_resolve gets its outcome later, from the
 * loop. Returns 1 when it cannot start (unknown server, a tunnel without an
 * active CA, ...): *ret_msg says why (caller frees) and *ret_error_type is a
 * session.error type to report, or NULL. Returns -errno on a store failure. */
_must_check_ int mcp_call_start(struct hub *h, json_t *session, const char *call_id, const char *server,
                                const char *tool, json_t *input, char **ret_msg, const char **ret_error_type);

/* Abandons call_id if it is in flight: its transfer is stopped and no
 * outcome reaches the loop. A no-op otherwise. */
void mcp_call_cancel(struct hub *h, const char *call_id);

/* True while call_id is being called by this process. */
bool mcp_call_in_flight(struct hub *h, const char *call_id);
