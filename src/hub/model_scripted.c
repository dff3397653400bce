/* SPDX-License-Identifier: Apache-2.0 */
/* The `airlock-scripted` model: carries out the directives of the newest
 * user.message, one per model turn (ARCHITECTURE.md). It never pretends to
 * be a language model; it exists for tests, demos and air-gapped checks. */
#include <string.h>

#include "../lib/base/util.h"
#include "model.h"

void model_action_done(struct model_action *a)
{
    free(a->name);
    free(a->server);
    free(a->text);
    json_decref(a->input);
    json_decref(a->usage);
    *a = (struct model_action){ 0 };
}

static int matches(const char *model_id)
{
    return !strcmp(model_id, "airlock-scripted");
}

/* The text of a user.message (its text blocks joined by newlines). */
static char *message_text(json_t *msg)
{
    json_t *content = json_object_get(msg, "content"), *b;
    size_t i, n = 0;
    char *out = al_xstrdup("");

    json_array_foreach(content, i, b) {
        const char *t = json_string_value(json_object_get(b, "text"));
        if (!t || strcmp(json_string_value(json_object_get(b, "type")) ?: "", "text"))
            continue;
        size_t tl = strlen(t);
        out = al_xrealloc(out, n + tl + 2);
        if (n)
            out[n++] = '\n';
        memcpy(out + n, t, tl + 1);
        n += tl;
    }
    return out;
}

struct directive {
    enum model_action_kind kind;
    char *name, *server, *text;
    json_t *input;
};

/* Parses one line; returns 1 for a directive, 0 for a line to ignore. */
static int parse_line(const char *line, struct directive *d)
{
    const char *p;
    json_error_t err;

    *d = (struct directive){ 0 };
    if (!strncmp(line, "say ", 4)) {
        d->kind = MODEL_MESSAGE;
        d->text = al_xstrdup(line + 4);
        return 1;
    }
    bool mcp = !strncmp(line, "mcp ", 4);
    if (strncmp(line, "tool ", 5) && !mcp)
        return 0;
    p = line + (mcp ? 4 : 5);
    p += strspn(p, " ");
    if (mcp) {
        size_t n = strcspn(p, " ");
        if (!n)
            return 0;
        d->server = al_xstrndup(p, n);
        p += n;
        p += strspn(p, " ");
    }
    size_t n = strcspn(p, " ");
    if (!n) {
        free(d->server);
        return 0;
    }
    d->name = al_xstrndup(p, n);
    p += n;
    p += strspn(p, " ");
    d->input = *p ? json_loads(p, 0, &err) : json_object();
    if (!json_is_object(d->input)) {
        /* A directive whose input is not a JSON object is not a directive. */
        json_decref(d->input);
        free(d->name);
        free(d->server);
        return 0;
    }
    d->kind = mcp ? MODEL_MCP_CALL : MODEL_TOOL_USE;
    return 1;
}

static size_t count_directives(const char *text, struct directive *want, size_t index)
{
    size_t count = 0;
    const char *s = text;
    while (*s) {
        size_t n = strcspn(s, "\n");
        _cleanup_free_ char *line = al_xstrndup(s, n);
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[l - 1] = '\0';
        struct directive d;
        if (parse_line(line + strspn(line, " \t"), &d)) {
            if (want && count == index)
                *want = d;
            else {
                free(d.name);
                free(d.server);
                free(d.text);
                json_decref(d.input);
            }
            count++;
        }
        s += n;
        if (*s == '\n')
            s++;
    }
    return count;
}

static int next(json_t *agent, json_t *turn, struct model_action *out)
{
    json_t *msg = json_array_get(turn, 0), *ev;
    _cleanup_free_ char *text = message_text(msg);
    size_t i, done = 0, calls = 0, errors = 0;

    json_array_foreach(turn, i, ev) {
        const char *t = json_string_value(json_object_get(ev, "type"));
        if (!strcmp(t, "span.model_request_end"))
            done++;
        else if (!strcmp(t, "agent.tool_use") || !strcmp(t, "agent.mcp_tool_use"))
            calls++;
        else if ((!strcmp(t, "user.tool_result") || !strcmp(t, "agent.tool_result") ||
                  !strcmp(t, "agent.mcp_tool_result")) && json_is_true(json_object_get(ev, "is_error")))
            errors++;
    }
    *out = (struct model_action){ 0 };
    out->usage = json_pack("{s:i, s:i, s:i, s:i, s:s}", "input_tokens", 0, "output_tokens", 0,
                           "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0, "speed", "standard");
    struct directive d = { 0 };
    size_t total = count_directives(text, NULL, 0);
    if (total == 0) {
        out->kind = MODEL_END_TURN;
        out->text = TAKE_PTR(text);
        return 0;
    }
    if (done >= total) {
        out->kind = MODEL_END_TURN;
        out->text = al_xasprintf("done: %zu calls, %zu errors", calls, errors);
        return 0;
    }
    (void) count_directives(text, &d, done);
    out->kind = d.kind;
    out->name = d.name;
    out->server = d.server;
    out->text = d.text;
    out->input = d.input;
    return 0;
}

const struct model_provider model_scripted = {
    .name = "airlock-scripted",
    .matches = matches,
    .next = next,
};
