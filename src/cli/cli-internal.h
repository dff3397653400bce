/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the CLI's admin verbs (admin.c) and `airlock up`
 * (up*.c): safe terminal output of API data (output.c), blocking API calls
 * that print their errors (api.c) and the session timeline (tail.c). All of
 * it is single threaded and blocking; nothing here is used by the daemons. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "../lib/http/client.h"

#define _cleanup_json_ _cleanup_(json_decrefp)     /* json_decrefp comes with jansson */

#define CLI_SUMMARY_MAX 120                        /* bytes of a tool input or result in the timeline */

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
