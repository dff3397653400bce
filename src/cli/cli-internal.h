/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the CLI's admin verbs (admin.c, tunnel.c) and
 * `airlock up` (up*.c): the verb tables the admin commands are made of
 * (admin.c), safe terminal output of API data (output.c), blocking API calls
 * that print their errors (api.c) and the session timeline (tail.c). All of
 * it is single threaded and blocking; nothing here is used by the daemons. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "../lib/base/opt.h"
#include "../lib/http/client.h"

#define _cleanup_json_ _cleanup_(json_decrefp)     /* json_decrefp comes with jansson */

#define CLI_SUMMARY_MAX 120                        /* bytes of a tool input or result in the timeline */

/* ---- admin.c: verb tables ---------------------------------------------- */

#define ADMIN_DEFAULT_KEY_FILE "./var/hub/api.key"

/* Every admin verb's options land here; each verb's table picks its own. */
struct admin_cfg {
    char *url, *api_key, *api_key_file;
    int64_t timeout_us;
    bool json;
    char *description, *model, *tool_policy, *agent, *env, *message, *title, *name;
    char **skills, **metadata;
    bool cloud, follow_until_idle, force, include_archived;
};

enum verb_out {
    OUT_ROW,      /* one line: the object's fields */
    OUT_ID,       /* the new object's id */
    OUT_LIST,     /* one line per element of "data" (GET lists follow next_page) */
    OUT_SECRET,   /* "key" on stdout, the id on stderr */
    OUT_TOKEN,    /* "token" on stdout, nothing else */
};

struct admin;

struct verb {
    const char *name;                 /* "create", "key create" */
    const char *synopsis;             /* positional arguments for --help */
    int min_args, max_args;
    const struct al_opt *opts;
    const char *desc;
    const char *method, *path;        /* each "{}" in path takes the next positional */
    int (*body)(struct admin *a, json_t **ret);
    enum verb_out out;
    const char *const *fields;        /* first printed bare, the rest as name=value */
    int (*run)(struct admin *a);      /* replaces the generic request when set */
};

struct command {
    const char *name, *desc;
    const struct verb *verbs;         /* terminated by { 0 } */
};

struct admin {
    struct admin_cfg cfg;
    struct al_client client;
    const struct verb *verb;
    char **args;
    int nargs;
};

#define CLI_OPT(n, t, f, def, meta, help) AL_OPT(n, t, struct admin_cfg, f, def, meta, help)
/* The options every admin verb takes. With --include-archived set, a verb's
 * GET gets ?include_archived=true. */
#define OPTS_COMMON                                                                                         \
    CLI_OPT("url", AL_OPT_STR, url, "http://127.0.0.1:8080", "URL", "the hub's base URL"),                \
    CLI_OPT("api-key", AL_OPT_STR, api_key, NULL, "KEY", "API key; set it in the environment, not here"), \
    CLI_OPT("api-key-file", AL_OPT_STR, api_key_file, NULL, "FILE",                                       \
            "read the API key from FILE instead (default " ADMIN_DEFAULT_KEY_FILE " when it exists)"),     \
    CLI_OPT("timeout", AL_OPT_DURATION, timeout_us, "60s", "DURATION", "give up on a request after this"), \
    CLI_OPT("json", AL_OPT_BOOL, json, NULL, NULL, "print the API's JSON instead of a summary")

/* Runs `airlock <cmd> VERB ...`: finds the verb, parses its options, sends
 * its request and prints the answer. Returns the process exit code. */
int cli_command_run(const struct command *cmd, int argc, char **argv);
/* Prints a verb's answer the way its table says (or as JSON with --json). */
int cli_print_result(struct admin *a, json_t *res);
/* Reads a whole file ("-" = stdin) of at most 64 MiB, NUL-terminated;
 * prints the error and returns < 0 on failure. */
_must_check_ int cli_read_input(const char *path, char **ret, size_t *ret_len);

/* ---- output.c ---------------------------------------------------------- */

/* Writes s[0..n) with control characters replaced, so that text from the
 * hub or the model cannot drive the terminal; stops at max bytes (on a UTF-8
 * boundary) and marks the cut. */
void cli_put_clean(FILE *f, const char *s, size_t n, size_t max);
void cli_put_str(FILE *f, const char *s);
/* A string as text, anything else as compact JSON, on stdout. */
void cli_put_value(json_t *v, size_t max);
/* Looks up a dotted path ("config.type") in an object; NULL if absent. The
 * result is borrowed. */
json_t *cli_json_path(json_t *j, const char *path);
const char *cli_json_str(json_t *j, const char *path);
/* The first field bare, the rest as name=value; absent and null ones skipped. */
void cli_put_fields(json_t *obj, const char *const *fields, size_t max);

/* ---- api.c ------------------------------------------------------------- */

/* Prints an API error body (or the status and first line) on stderr. */
void cli_print_api_error(const struct al_response *resp);
/* Finishes a request: on a 2xx answer *ret gets the body (a new reference;
 * JSON null for an empty body). Otherwise the error is printed and < 0
 * returned. resp is consumed either way. */
_must_check_ int cli_api_finish(const struct al_client *c, const char *method, const char *path, int r,
                                struct al_response *resp, json_t **ret);
/* A JSON request (body borrowed, may be NULL) through cli_api_finish. */
_must_check_ int cli_api_call(const struct al_client *c, const char *method, const char *path, json_t *body,
                              json_t **ret);
/* GETs every page of a list into {"data":[...],"next_page":null}. */
_must_check_ int cli_api_list_all(const struct al_client *c, const char *path, json_t **ret);

/* ---- tail.c ------------------------------------------------------------ */

/* One readable timeline line for an event on stdout: local time, type, and
 * a summary (tool name and short input, short result, message text). */
void cli_timeline_print(json_t *ev);
/* Prints a session's events, its history then live ones, each once (as
 * JSON lines when json), reconnecting with backoff when the stream drops.
 * With until_idle it returns once the session idles: 0 on end_turn, -EPROTO
 * on another stop reason; without, when the session ends (0). -EPROTO also
 * when the hub refuses the stream for good (the error is printed). */
_must_check_ int cli_tail_session(const struct al_client *c, const char *session_id, bool json, bool until_idle);
