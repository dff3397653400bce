/* SPDX-License-Identifier: Apache-2.0 */
/* The model-provider seam of the agent loop. A provider looks at the
 * session's agent and the history of the current turn (the newest
 * user.message and every event after it) and decides the next action. It
 * holds no state of its own: everything it needs is in the history, which
 * is what makes the loop restart-safe. */
#pragma once

#include <jansson.h>

enum model_action_kind {
    MODEL_TOOL_USE,   /* call a built-in tool: name, input */
    MODEL_MCP_CALL,   /* call an MCP tool: server, name, input */
    MODEL_MESSAGE,    /* say text, then continue */
    MODEL_END_TURN,   /* say text (if any) and end the turn */
};

struct model_action {
    enum model_action_kind kind;
    char *name, *server, *text;
    json_t *input;
    json_t *usage;    /* model_usage for span.model_request_end */
};

struct model_provider {
    const char *name;
    /* Returns 1 if this provider serves model_id. */
    int (*matches)(const char *model_id);
    /* Decides the next action. turn is the JSON array of events from the
     * newest user.message on. Returns 0 or -errno. */
    int (*next)(json_t *agent, json_t *turn, struct model_action *out);
};

void model_action_done(struct model_action *a);
extern const struct model_provider model_scripted;
