/* SPDX-License-Identifier: Apache-2.0 */
/* Admin verbs of the airlock binary (env, agent, session, work, skill). They
 * talk to the hub's HTTP API through the blocking client like any other
 * client; nothing here knows the hub's internals. A verb table per command
 * drives argument parsing, --help, the request and the output. Single
 * threaded; the process exits after one verb. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/base/log.h"
#include "../lib/base/opt.h"
#include "../lib/base/util.h"
#include "../lib/http/client.h"
#include "cli-internal.h"
#include "cli.h"

#define ADMIN_MAX_INPUT        (64u << 20)    /* skill archive or message read from a file/stdin */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static void print_row(json_t *obj, const char *const *fields)
{
    cli_put_fields(obj, fields, SIZE_MAX);
    putchar('\n');
}

static void print_json(json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    putchar('\n');
}

int cli_print_result(struct admin *a, json_t *res)
{
    const struct verb *v = a->verb;
    size_t i;
    json_t *e;

    if (a->cfg.json) {
        print_json(res);
        return 0;
    }
    switch (v->out) {
    case OUT_ROW:
        print_row(res, v->fields);
        break;
    case OUT_ID:
        cli_put_value(json_object_get(res, "id"), SIZE_MAX);
        putchar('\n');
        break;
    case OUT_LIST:
        json_array_foreach(json_object_get(res, "data"), i, e) {
            print_row(e, v->fields);
        }
        break;
    case OUT_SECRET:
        cli_put_value(json_object_get(res, "key"), SIZE_MAX);
        putchar('\n');
        fputs("created ", stderr);
        cli_put_str(stderr, cli_json_str(res, "id") ?: "?");
        fputs(" (the key above is shown only once)\n", stderr);
        break;
    case OUT_TOKEN:
        cli_put_value(json_object_get(res, "token"), SIZE_MAX);
        putchar('\n');
        break;
    }
    return 0;
}

/* Expands each "{}" of tmpl with the next positional argument, escaped. */
static char *fill_path(const char *tmpl, char **args, int nargs)
{
    _cleanup_free_ char *out = al_xstrdup(tmpl);
    int i = 0;

    for (char *hole; (hole = strstr(out, "{}")) && i < nargs;) {
        _cleanup_free_ char *esc = al_client_escape(args[i++]);
        char *next = al_xasprintf("%.*s%s%s", (int) (hole - out), out, esc, hole + 2);
        free(out);
        out = next;
    }
    return TAKE_PTR(out);
}

static int run_generic(struct admin *a)
{
    const struct verb *v = a->verb;
    _cleanup_free_ char *path = fill_path(v->path, a->args, a->nargs);
    _cleanup_json_ json_t *body = NULL, *res = NULL;
    int r;

    if (a->cfg.include_archived) {
        char *q = al_xasprintf("%s%cinclude_archived=true", path, strchr(path, '?') ? '&' : '?');
        free(path);
        path = q;
    }

    if (v->body && (r = v->body(a, &body)) < 0)
        return r;
    if (v->out == OUT_LIST && strcmp(v->method, "GET") == 0)
        r = cli_api_list_all(&a->client, path, &res);
    else
        r = cli_api_call(&a->client, v->method, path, body, &res);
    return r < 0 ? r : cli_print_result(a, res);
}

static int run_session_tail(struct admin *a)
{
    return cli_tail_session(&a->client, a->args[0], a->cfg.json, a->cfg.follow_until_idle);
}

/* ---- input ------------------------------------------------------------- */

/* Reads a whole file ("-" = stdin) of at most ADMIN_MAX_INPUT bytes. */
int cli_read_input(const char *path, char **ret, size_t *ret_len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    size_t len = 0, cap = 65536;
    _cleanup_free_ char *buf = al_xmalloc(cap);

    if (!f) {
        fprintf(stderr, "error: cannot open %s: %s\n", path, al_errno_name(errno) ?: "error");
        return -EIO;      /* the message above names the cause */
    }
    for (;;) {
        if (cap - len < 4096 + 1) {
            cap *= 2;
            buf = al_xrealloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0 || len > ADMIN_MAX_INPUT)
            break;
    }
    bool bad = ferror(f) || len > ADMIN_MAX_INPUT;
    if (f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "error: %s: %s\n", path, len > ADMIN_MAX_INPUT ? "too large" : "read error");
        return len > ADMIN_MAX_INPUT ? -EFBIG : -EIO;
    }
    buf[len] = '\0';
    *ret_len = len;
    *ret = TAKE_PTR(buf);
    return 0;
}

static int load_credential(struct admin *a)
{
    const char *file = a->cfg.api_key_file;
    _cleanup_free_ char *buf = NULL;
    size_t len;

    if (!file && a->cfg.api_key && *a->cfg.api_key) {
        a->client.credential = al_xstrdup(a->cfg.api_key);
        return 0;
    }
    if (!file && access(ADMIN_DEFAULT_KEY_FILE, F_OK) == 0)
        file = ADMIN_DEFAULT_KEY_FILE;
    if (!file) {
        fprintf(stderr, "error: no API key: set AIRLOCK_API_KEY or pass --api-key-file FILE\n");
        return -ENOKEY;
    }
    int r = cli_read_input(file, &buf, &len);
    if (r < 0)
        return r;
    buf[strcspn(buf, "\r\n")] = '\0';
    a->client.credential = al_xstrdup(buf);
    explicit_bzero(buf, len);
    return 0;
}

/* ---- request bodies ---------------------------------------------------- */

/* json_pack fails only on text that is not UTF-8, the one bad input left
 * once the arguments have been checked. */
static int packed(json_t *j, json_t **ret)
{
    if (!j) {
        fprintf(stderr, "error: the arguments must be valid UTF-8\n");
        return -EILSEQ;
    }
    *ret = j;
    return 0;
}

static json_t *text_content(const char *text)
{
    return json_pack("[{s:s,s:s}]", "type", "text", "text", text);
}

static int body_env_create(struct admin *a, json_t **ret)
{
    const char *d = a->cfg.description;

    return packed(json_pack("{s:s,s:{s:s},s:s*}", "name", a->args[0], "config", "type",
                            a->cfg.cloud ? "cloud" : "self_hosted", "description", d), ret);
}

static int body_agent_create(struct admin *a, json_t **ret)
{
    const char *policy = a->cfg.tool_policy;

    if (strcmp(policy, "always_allow") != 0 && strcmp(policy, "always_ask") != 0) {
        fprintf(stderr, "error: --tool-policy must be always_allow or always_ask\n");
        return -EINVAL;
    }
    json_t *skills = json_array();
    for (char **s = a->cfg.skills; s && *s; s++) {
        json_t *ref = json_pack("{s:s,s:s,s:s}", "type", "custom", "skill_id", *s, "version", "latest");
        if (!ref) {
            json_decref(skills);
            return packed(NULL, ret);
        }
        json_array_append_new(skills, ref);
    }
    return packed(json_pack("{s:s,s:s,s:[{s:s,s:{s:{s:s}}}],s:o}", "name", a->args[0], "model",
                            a->cfg.model, "tools", "type", "agent_toolset_20260401", "default_config",
                            "permission_policy", "type", policy, "skills", skills), ret);
}

static int parse_metadata(char **pairs, json_t **ret)
{
    _cleanup_json_ json_t *m = json_object();

    for (char **p = pairs; p && *p; p++) {
        char *eq = strchr(*p, '=');
        if (!eq || eq == *p) {
            fprintf(stderr, "error: --metadata wants KEY=VALUE, got \"%s\"\n", *p);
            return -EINVAL;
        }
        _cleanup_free_ char *key = al_xstrndup(*p, (size_t) (eq - *p));
        json_t *v = json_string(eq + 1);
        if (!v || json_object_set_new(m, key, v) < 0)
            return packed(NULL, ret);
    }
    *ret = TAKE_PTR(m);
    return 0;
}

static int body_session_create(struct admin *a, json_t **ret)
{
    _cleanup_json_ json_t *meta = NULL;

    if (!a->cfg.agent || !a->cfg.env) {
        fprintf(stderr, "error: --agent AGENT_ID and --env ENV_ID are required\n");
        return -EINVAL;
    }
    if (parse_metadata(a->cfg.metadata, &meta) < 0)
        return -EINVAL;
    json_t *events = a->cfg.message ? json_pack("[{s:s,s:o}]", "type", "user.message", "content",
                                                text_content(a->cfg.message)) : NULL;
    if (a->cfg.message && !events)
        return packed(NULL, ret);
    return packed(json_pack("{s:s,s:s,s:O*,s:s*,s:o*}", "agent", a->cfg.agent, "environment_id",
                            a->cfg.env, "metadata", json_object_size(meta) ? meta : NULL, "title",
                            a->cfg.title, "initial_events", events), ret);
}

static int body_session_send(struct admin *a, json_t **ret)
{
    _cleanup_free_ char *text = NULL;
    size_t len;

    if (strcmp(a->args[1], "-") == 0) {
        if (cli_read_input("-", &text, &len) < 0)
            return -EIO;
        if (len > 0 && text[len - 1] == '\n')     /* the newline that ends a piped line */
            text[--len] = '\0';
    } else {
        text = al_xstrdup(a->args[1]);
    }
    return packed(json_pack("{s:[{s:s,s:o}]}", "events", "type", "user.message", "content",
                            text_content(text)), ret);
}

static int body_session_confirm(struct admin *a, json_t **ret)
{
    const char *verdict = a->args[2];

    if (strcmp(verdict, "allow") != 0 && strcmp(verdict, "deny") != 0) {
        fprintf(stderr, "error: the verdict must be allow or deny\n");
        return -EINVAL;
    }
    return packed(json_pack("{s:[{s:s,s:s,s:s}]}", "events", "type", "user.tool_confirmation",
                            "tool_use_id", a->args[1], "result", verdict), ret);
}

static int body_work_stop(struct admin *a, json_t **ret)
{
    *ret = json_pack("{s:b}", "force", a->cfg.force);
    return 0;
}

/* ---- skill upload ------------------------------------------------------ */

static const char *archive_type(const unsigned char *p, size_t n)
{
    if (n >= 4 && memcmp(p, "PK\x03\x04", 4) == 0)
        return "application/zip";
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return "application/gzip";
    return "application/x-tar";
}

static int run_skill_create(struct admin *a)
{
    _cleanup_free_ char *data = NULL, *esc = NULL, *path = NULL;
    _cleanup_json_ json_t *res = NULL;
    struct al_response resp;
    size_t len;
    int r;

    r = cli_read_input(a->args[0], &data, &len);
    if (r < 0)
        return r;
    esc = a->cfg.name ? al_client_escape(a->cfg.name) : NULL;
    path = esc ? al_xasprintf("/v1/skills?display_title=%s", esc) : al_xstrdup("/v1/skills");
    r = al_client_request_raw(&a->client, "POST", path, archive_type((unsigned char *) data, len), data,
                              len, &resp);
    r = cli_api_finish(&a->client, "POST", path, r, &resp, &res);
    return r < 0 ? r : cli_print_result(a, res);
}

/* ---- tables ------------------------------------------------------------ */

static const struct al_opt opts_common[] = { OPTS_COMMON, { 0 } };
#define O CLI_OPT
static const struct al_opt opts_env_create[] = {
    OPTS_COMMON,
    O("description", AL_OPT_STR, description, NULL, "TEXT", "a description of the environment"),
    O("cloud", AL_OPT_BOOL, cloud, NULL, NULL, "a cloud environment instead of a self-hosted one"),
    { 0 },
};
static const struct al_opt opts_agent_create[] = {
    OPTS_COMMON,
    O("model", AL_OPT_STR, model, "airlock-scripted", "MODEL", "the model id"),
    O("tool-policy", AL_OPT_STR, tool_policy, "always_allow", "POLICY",
      "permission policy of the built-in tools: always_allow or always_ask"),
    O("skill", AL_OPT_LIST, skills, NULL, "SKILL_ID", "attach a custom skill (latest version)"),
    { 0 },
};
static const struct al_opt opts_session_create[] = {
    OPTS_COMMON,
    O("agent", AL_OPT_STR, agent, NULL, "AGENT_ID", "the agent to run (required)"),
    O("env", AL_OPT_STR, env, NULL, "ENV_ID", "the environment to run it in (required)"),
    O("message", AL_OPT_STR, message, NULL, "TEXT", "a first user message"),
    O("title", AL_OPT_STR, title, NULL, "TITLE", "a title for the session"),
    O("metadata", AL_OPT_LIST, metadata, NULL, "KEY=VALUE", "a metadata pair (copied onto its work items)"),
    { 0 },
};
static const struct al_opt opts_session_tail[] = {
    OPTS_COMMON,
    O("follow-until-idle", AL_OPT_BOOL, follow_until_idle, NULL, NULL,
      "exit once the session idles: 0 on end_turn, 1 on another stop reason"),
    { 0 },
};
static const struct al_opt opts_work_stop[] = {
    OPTS_COMMON,
    O("force", AL_OPT_BOOL, force, NULL, NULL, "stop now instead of asking the worker to wind down"),
    { 0 },
};
static const struct al_opt opts_skill_create[] = {
    OPTS_COMMON,
    O("name", AL_OPT_STR, name, NULL, "NAME", "the display title (default: the name in its SKILL.md)"),
    { 0 },
};

static const char *const f_env[] = { "id", "name", "config.type", "description", "archived_at", NULL };
static const char *const f_key[] = { "id", "environment_id", "created_at", "revoked_at", NULL };
static const char *const f_agent[] = { "id", "name", "model", "version", NULL };
static const char *const f_session[] = { "id", "status", "title", "agent", "environment_id", NULL };
static const char *const f_event[] = { "id", "type", NULL };
static const char *const f_work[] = { "id", "state", "data.type", "data.id", "created_at", NULL };
static const char *const f_stats[] = { "type", "depth", "pending", "oldest_queued_at", "workers_polling", NULL };
static const char *const f_deleted[] = { "id", "type", NULL };
static const char *const f_skill[] = { "id", "name", "display_title", "latest_version", NULL };

static const struct verb env_verbs[] = {
    { "create", "NAME", 1, 1, opts_env_create, "create an environment (self-hosted unless --cloud); prints its id",
      "POST", "/v1/environments", body_env_create, OUT_ID, f_env, NULL },
    { "list", "", 0, 0, opts_common, "list environments", "GET", "/v1/environments", NULL, OUT_LIST, f_env, NULL },
    { "get", "ENV_ID", 1, 1, opts_common, "show an environment", "GET", "/v1/environments/{}", NULL, OUT_ROW,
      f_env, NULL },
    { "archive", "ENV_ID", 1, 1, opts_common, "archive an environment (no new sessions)", "POST",
      "/v1/environments/{}/archive", NULL, OUT_ROW, f_env, NULL },
    { "delete", "ENV_ID", 1, 1, opts_common, "delete an environment", "DELETE", "/v1/environments/{}", NULL,
      OUT_ROW, f_deleted, NULL },
    { "key create", "ENV_ID", 1, 1, opts_common,
      "create an environment key for a worker; prints the key (shown once) on stdout, its id on stderr",
      "POST", "/v1/environments/{}/keys", NULL, OUT_SECRET, f_key, NULL },
    { "key list", "ENV_ID", 1, 1, opts_common, "list an environment's keys (without secrets)", "GET",
      "/v1/environments/{}/keys", NULL, OUT_LIST, f_key, NULL },
    { "key revoke", "ENV_ID KEY_ID", 2, 2, opts_common, "revoke an environment key", "POST",
      "/v1/environments/{}/keys/{}/revoke", NULL, OUT_ROW, f_key, NULL },
    { 0 },
};

static const struct verb agent_verbs[] = {
    { "create", "NAME", 1, 1, opts_agent_create, "create an agent with the built-in toolset; prints its id",
      "POST", "/v1/agents", body_agent_create, OUT_ID, f_agent, NULL },
    { "list", "", 0, 0, opts_common, "list agents", "GET", "/v1/agents", NULL, OUT_LIST, f_agent, NULL },
    { "get", "AGENT_ID", 1, 1, opts_common, "show an agent", "GET", "/v1/agents/{}", NULL, OUT_ROW, f_agent, NULL },
    { 0 },
};

static const struct verb session_verbs[] = {
    { "create", "", 0, 0, opts_session_create, "start a session of an agent in an environment; prints its id",
      "POST", "/v1/sessions", body_session_create, OUT_ID, f_session, NULL },
    { "list", "", 0, 0, opts_common, "list sessions", "GET", "/v1/sessions", NULL, OUT_LIST, f_session, NULL },
    { "get", "SESSION_ID", 1, 1, opts_common, "show a session", "GET", "/v1/sessions/{}", NULL, OUT_ROW,
      f_session, NULL },
    { "send", "SESSION_ID TEXT", 2, 2, opts_common, "send a user message (TEXT \"-\" reads stdin)", "POST",
      "/v1/sessions/{}/events", body_session_send, OUT_LIST, f_event, NULL },
    { "confirm", "SESSION_ID TOOL_USE_ID allow|deny", 3, 3, opts_common,
      "answer a tool call that waits for confirmation", "POST", "/v1/sessions/{}/events",
      body_session_confirm, OUT_LIST, f_event, NULL },
    { "tail", "SESSION_ID", 1, 1, opts_session_tail,
      "print the session's events as a timeline: its history, then live events", NULL, NULL, NULL, OUT_ROW,
      NULL, run_session_tail },
    { 0 },
};

static const struct verb work_verbs[] = {
    { "list", "ENV_ID", 1, 1, opts_common,
      "list an environment's work items (the hub wants an environment key in AIRLOCK_API_KEY)", "GET",
      "/v1/environments/{}/work", NULL, OUT_LIST, f_work, NULL },
    { "stats", "ENV_ID", 1, 1, opts_common, "show the work queue's depth and workers", "GET",
      "/v1/environments/{}/work/stats", NULL, OUT_ROW, f_stats, NULL },
    { "stop", "ENV_ID WORK_ID", 2, 2, opts_work_stop, "stop a work item", "POST",
      "/v1/environments/{}/work/{}/stop", body_work_stop, OUT_ROW, f_work, NULL },
    { "healthcheck", "ENV_ID", 1, 1, opts_common, "enqueue a health-check work item", "POST",
      "/v1/environments/{}/work/healthcheck", NULL, OUT_ROW, f_work, NULL },
    { 0 },
};

static const struct verb skill_verbs[] = {
    { "create", "FILE", 1, 1, opts_skill_create,
      "upload a skill archive (zip, tar or tar.gz; FILE \"-\" reads stdin); prints its id", "POST",
      "/v1/skills", NULL, OUT_ID, f_skill, run_skill_create },
    { "list", "", 0, 0, opts_common, "list skills", "GET", "/v1/skills", NULL, OUT_LIST, f_skill, NULL },
    { 0 },
};

/* ---- dispatch ---------------------------------------------------------- */

static bool is_help(const char *s)
{
    return !strcmp(s, "--help") || !strcmp(s, "-h") || !strcmp(s, "help");
}

static void command_help(const struct command *cmd, FILE *f)
{
    char head[64];

    fprintf(f, "usage: airlock %s VERB [ARGS] [OPTIONS]\n\n%s\n\nverbs:\n", cmd->name, cmd->desc);
    for (const struct verb *v = cmd->verbs; v->name; v++) {
        snprintf(head, sizeof(head), "%s %s", v->name, v->synopsis);
        fprintf(f, "  %-44s %s\n", head, v->desc);
    }
    fprintf(f, "\n\"airlock %s VERB --help\" lists a verb's options.\n", cmd->name);
}

/* Matches the verb's words ("key create") against argv; *ret_words = count. */
static const struct verb *verb_find(const struct verb *verbs, int argc, char **argv, int *ret_words)
{
    for (const struct verb *v = verbs; v->name; v++) {
        const char *s = v->name;
        int w = 0;
        for (; w < argc; w++) {
            size_t n = strcspn(s, " ");
            if (strlen(argv[w]) != n || strncmp(argv[w], s, n) != 0)
                break;
            s += n;
            if (!*s)
                break;
            s++;
        }
        if (w < argc && !*s) {
            *ret_words = w + 1;
            return v;
        }
    }
    return NULL;
}

static int verb_run(struct admin *a)
{
    a->client.base_url = a->cfg.url;
    a->client.timeout_ms = (long) (a->cfg.timeout_us / 1000);
    int r = load_credential(a);
    if (r >= 0)
        r = a->verb->run ? a->verb->run(a) : run_generic(a);
    if (a->client.credential)
        explicit_bzero(a->client.credential, strlen(a->client.credential));
    free(a->client.credential);
    return r < 0 ? EXIT_FAIL : EXIT_OK;
}

int cli_command_run(const struct command *cmd, int argc, char **argv)
{
    struct admin a = { 0 };
    struct al_opts_result res = { 0 };
    int words = 0, rc;

    if (argc < 2 || is_help(argv[1])) {
        command_help(cmd, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    a.verb = verb_find(cmd->verbs, argc - 1, argv + 1, &words);
    if (!a.verb) {
        fprintf(stderr, "airlock %s: unknown verb \"%s\" (see airlock %s --help)\n", cmd->name, argv[1], cmd->name);
        return EXIT_USAGE;
    }
    _cleanup_free_ char *usage = al_xasprintf("airlock %s %s %s%s[OPTIONS]", cmd->name, a.verb->name,
                                              a.verb->synopsis, *a.verb->synopsis ? " " : "");
    if (al_opts_load(a.verb->opts, &a.cfg, argc - words, argv + words, &res) < 0) {
        rc = EXIT_USAGE;
    } else if (res.help) {
        al_opts_help(a.verb->opts, usage, a.verb->desc);
        rc = EXIT_OK;
    } else if (res.nargs < a.verb->min_args || res.nargs > a.verb->max_args) {
        fprintf(stderr, "usage: %s\n", usage);
        rc = EXIT_USAGE;
    } else {
        a.args = res.args;
        a.nargs = res.nargs;
        rc = verb_run(&a);
    }
    free(res.args);
    al_opts_free(a.verb->opts, &a.cfg);
    return rc;
}

int cmd_env(int argc, char **argv)
{
    static const struct command c = { "env", "Manage environments and their worker keys.", env_verbs };
    return cli_command_run(&c, argc, argv);
}

int cmd_agent(int argc, char **argv)
{
    static const struct command c = { "agent", "Manage agents.", agent_verbs };
    return cli_command_run(&c, argc, argv);
}

int cmd_session(int argc, char **argv)
{
    static const struct command c = { "session", "Start, drive and follow sessions.", session_verbs };
    return cli_command_run(&c, argc, argv);
}

int cmd_work(int argc, char **argv)
{
    static const struct command c = { "work", "Inspect and steer an environment's work queue.", work_verbs };
    return cli_command_run(&c, argc, argv);
}

int cmd_skill(int argc, char **argv)
{
    static const struct command c = { "skill", "Upload and list skills.", skill_verbs };
    return cli_command_run(&c, argc, argv);
}
