/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock up`'s API objects and demo: the environment and agent (found by
 * name, so a second run reuses them; the agent's MCP server is the
 * tunnel's), a fresh environment key per run (revoked when up stops), and a
 * demo session whose scripted agent calls the private MCP tool through the
 * tunnel, works in its workspace and leaves a report in its outputs
 * directory. Blocking
 * calls through the CLI's client; the parent process only, except
 * up_demo_follow, which runs in the forked timeline child. */
#include <stdio.h>
#include <string.h>

#include "../lib/base/util.h"
#include "cli-internal.h"
#include "up-internal.h"

#define UP_ENV_NAME   "airlock-up"
#define UP_AGENT_NAME "airlock-up-demo"
#define UP_MODEL      "airlock-scripted"
#define UP_TOOLSET    "agent_toolset_20260401"

int up_find_named(struct up *u, const char *path, const char *name, bool (*match)(json_t *o),
                      json_t **ret)
{
    _cleanup_json_ json_t *all = NULL;
    size_t i;
    json_t *o;

    int r = cli_api_list_all(&u->client, path, &all);
    if (r < 0)
        return r;
    *ret = NULL;
    json_array_foreach(json_object_get(all, "data"), i, o) {
        const char *n = cli_json_str(o, "name");
        json_t *archived = json_object_get(o, "archived_at");
        if (n && !strcmp(n, name) && (!archived || json_is_null(archived)) && (!match || match(o))) {
            *ret = json_incref(o);
            break;
        }
    }
    return 0;
}

static bool is_self_hosted(json_t *env)
{
    const char *type = cli_json_str(env, "config.type");
    return type && !strcmp(type, "self_hosted");
}

static bool is_scripted(json_t *agent)
{
    json_t *m = json_object_get(agent, "model");
    const char *id = json_is_string(m) ? json_string_value(m) : cli_json_str(m, "id");
    return id && !strcmp(id, UP_MODEL);
}

/* Finds the object, or POSTs body to create it; *ret_id gets its id. */
static int ensure(struct up *u, const char *path, const char *name, bool (*match)(json_t *o), json_t *body,
                  char **ret_id)
{
    _cleanup_json_ json_t *found = NULL, *made = NULL;
    int r = up_find_named(u, path, name, match, &found);

    if (r < 0)
        return r;
    if (!found) {
        if (!body)
            return -ENOMEM;
        r = cli_api_call(&u->client, "POST", path, body, &made);
        if (r < 0)
            return r;
    }
    const char *id = cli_json_str(found ? found : made, "id");
    if (!id) {
        fprintf(stderr, "airlock up: the hub's answer to %s has no id\n", path);
        return -EBADMSG;
    }
    *ret_id = al_xstrdup(id);
    return 0;
}

static int make_key(struct up *u)
{
    _cleanup_free_ char *esc = al_client_escape(u->env_id);
    _cleanup_free_ char *path = al_xasprintf("/v1/environments/%s/keys", esc);
    _cleanup_json_ json_t *res = NULL;
    int r = cli_api_call(&u->client, "POST", path, NULL, &res);

    if (r < 0)
        return r;
    const char *key = cli_json_str(res, "key"), *id = cli_json_str(res, "id");
    if (!key || !id) {
        fprintf(stderr, "airlock up: the hub's answer to POST %s has no key\n", path);
        return -EBADMSG;
    }
    u->env_key = al_xstrdup(key);
    u->key_id = al_xstrdup(id);
    explicit_bzero((char *) key, strlen(key));
    return 0;
}

/* The agent's tools and MCP servers, on creation and as an update of an
 * agent found from an earlier run (an update that changes nothing makes no
 * new version). */
static json_t *agent_tools(const struct up *u)
{
    return json_pack("{s:[{s:s,s:{s:{s:s}}},{s:s,s:s,s:{s:{s:s}}}],s:[{s:s,s:s,s:s}]}", "tools", "type", UP_TOOLSET,
                     "default_config", "permission_policy", "type", "always_allow", "type", "mcp_toolset",
                     "mcp_server_name", UP_MCP_SERVER, "default_config", "permission_policy", "type", "always_allow",
                     "mcp_servers", "type", "url", "name", UP_MCP_SERVER, "url", u->mcp_server_url);
}

int up_demo_objects(struct up *u)
{
    _cleanup_json_ json_t *env = json_pack("{s:s,s:{s:s},s:s,s:{s:s}}", "name", UP_ENV_NAME, "config", "type",
                                           "self_hosted", "description", "created by airlock up",
                                           "metadata", "created_by", "airlock up");
    _cleanup_json_ json_t *agent = json_pack("{s:s,s:s,s:s,s:{s:s}}", "name", UP_AGENT_NAME, "model", UP_MODEL,
                                             "description", "the airlock up demo agent (scripted)", "metadata",
                                             "created_by", "airlock up");
    _cleanup_json_ json_t *tools = agent_tools(u), *updated = NULL;
    int r = ensure(u, "/v1/environments", UP_ENV_NAME, is_self_hosted, env, &u->env_id);

    if (!agent || !tools)
        return -ENOMEM;
    json_object_update(agent, tools);
    if (r >= 0)
        r = ensure(u, "/v1/agents", UP_AGENT_NAME, is_scripted, agent, &u->agent_id);
    if (r >= 0) {
        _cleanup_free_ char *esc = al_client_escape(u->agent_id);
        _cleanup_free_ char *path = al_xasprintf("/v1/agents/%s", esc);
        r = cli_api_call(&u->client, "POST", path, tools, &updated);
    }
    return r < 0 ? r : make_key(u);
}

void up_demo_key_revoke(struct up *u)
{
    if (!u->key_id || !u->env_id)
        return;
    _cleanup_free_ char *e = al_client_escape(u->env_id), *k = al_client_escape(u->key_id);
    _cleanup_free_ char *path = al_xasprintf("/v1/environments/%s/keys/%s/revoke", e, k);
    _cleanup_json_ json_t *res = NULL;
    if (cli_api_call(&u->client, "POST", path, NULL, &res) < 0)
        fprintf(stderr, "airlock up: could not revoke this run's environment key %s\n", u->key_id);
}

/* 'text' for sh, with each ' written as '\''. Caller frees. */
static char *sh_quote(const char *s)
{
    size_t n = 3;

    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    char *out = al_xmalloc(n), *o = out;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

/* Appends "tool NAME {input}\n" to *msg. */
static void add_tool(char **msg, const char *name, json_t *input)
{
    _cleanup_free_ char *in = input ? json_dumps(input, JSON_COMPACT) : NULL;
    char *next = al_xasprintf("%stool %s %s\n", *msg, name, in ? in : "{}");

    json_decref(input);
    free(*msg);
    *msg = next;
}

/* The demo's directives for the scripted model: look a ticket up with the
 * private MCP server's tool (the hub calls it through the relay and the
 * gateway), write a file, count its lines, edit it, grep it, read it back, then write a report with bash into
 * the outputs directory (the file tools are confined to the workspace): in
 * the sandbox that is /mnt/session/outputs, without namespaces the host's. */
static char *demo_message(const struct up *u)
{
    _cleanup_free_ char *out_dir = al_xasprintf("%s/worker/sessions/%s/outputs", u->dir, u->session_id);
    _cleanup_free_ char *q_out = sh_quote(out_dir), *q_sid = sh_quote(u->session_id);
    _cleanup_free_ char *report = al_xasprintf(
        "out=/mnt/session/outputs; [ -d \"$out\" ] || out=%s; "
        "mkdir -p \"$out\" && { echo '# airlock demo report'; echo; echo session: %s; "
        "echo \"notes.txt: $(wc -l < notes.txt) lines\"; echo 'the edited line:'; grep -n edited notes.txt; } "
        "> \"$out/report.md\" && echo \"wrote $out/report.md\"", q_out, q_sid);
    char *msg = al_xasprintf("say Hello! I am the airlock demo agent (the scripted model). First I look up a "
                             "ticket in the private tracker, through the MCP tunnel; then I work in this "
                             "session's workspace.\n"
                             "mcp %s lookup_ticket {\"id\":\"TCK-1042\"}\n", UP_MCP_SERVER);

    add_tool(&msg, "write", json_pack("{s:s,s:s}", "file_path", "notes.txt", "content",
                                      "airlock demo notes\nthe hub keeps the session's event log\n"
                                      "the worker runs the agent's tools\nthis line will be edited\n"));
    add_tool(&msg, "bash", json_pack("{s:s}", "command", "wc -l notes.txt"));
    add_tool(&msg, "edit", json_pack("{s:s,s:s,s:s}", "file_path", "notes.txt", "old_string",
                                     "this line will be edited", "new_string", "this line was edited by the agent"));
    add_tool(&msg, "grep", json_pack("{s:s}", "pattern", "edited"));
    add_tool(&msg, "read", json_pack("{s:s}", "file_path", "notes.txt"));
    add_tool(&msg, "bash", json_pack("{s:s}", "command", report));
    char *next = al_xasprintf("%ssay All done: the report is in the session's outputs directory, %s/report.md "
                              "on this host\n", msg, out_dir);
    free(msg);
    return next;
}

int up_demo_session(struct up *u)
{
    _cleanup_json_ json_t *body = json_pack("{s:s,s:s,s:s,s:{s:s}}", "agent", u->agent_id, "environment_id",
                                            u->env_id, "title", "airlock up demo", "metadata", "created_by",
                                            "airlock up");
    _cleanup_json_ json_t *sess = NULL, *sent = NULL, *events = NULL;
    int r;

    if (!body)
        return -ENOMEM;
    r = cli_api_call(&u->client, "POST", "/v1/sessions", body, &sess);
    if (r < 0)
        return r;
    const char *id = cli_json_str(sess, "id");
    if (!id) {
        fprintf(stderr, "airlock up: the hub's answer to POST /v1/sessions has no id\n");
        return -EBADMSG;
    }
    u->session_id = al_xstrdup(id);
    u->workspace = al_xasprintf("%s/worker/sessions/%s/workspace", u->dir, id);
    u->report_path = al_xasprintf("%s/worker/sessions/%s/outputs/report.md", u->dir, id);
    _cleanup_free_ char *msg = demo_message(u);
    _cleanup_free_ char *esc = al_client_escape(id);
    _cleanup_free_ char *path = al_xasprintf("/v1/sessions/%s/events", esc);
    events = json_pack("{s:[{s:s,s:[{s:s,s:s}]}]}", "events", "type", "user.message", "content", "type", "text",
                       "text", msg);
    if (!events)
        return -EILSEQ;       /* a data dir path that is not UTF-8 */
    return cli_api_call(&u->client, "POST", path, events, &sent);
}

int up_demo_follow(struct up *u)
{
    return cli_tail_session(&u->client, u->session_id, false, true) < 0 ? 1 : 0;
}
