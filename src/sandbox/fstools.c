/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder file tools until the real ones land. */
#include "toolset.h"

static int todo(struct al_tool_result *r, const char *name)
{
    al_tool_result_set(r, true, "%s: not implemented yet", name);
    return 0;
}

int al_tool_read(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r) { return todo(r, "read"); }
int al_tool_write(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r) { return todo(r, "write"); }
int al_tool_edit(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r) { return todo(r, "edit"); }
int al_tool_glob(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r) { return todo(r, "glob"); }
int al_tool_grep(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r) { return todo(r, "grep"); }
