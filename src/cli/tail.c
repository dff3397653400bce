/* SPDX-License-Identifier: Apache-2.0 */
/* The session timeline of `airlock session tail` and `airlock up`: one line
 * per event from the session's history and then its SSE stream, each event
 * once. Blocking (the CLI's client); single threaded. */
#include <string.h>
#include <time.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "cli-internal.h"

#define TAIL_BACKOFF_MIN_MS    500
#define TAIL_BACKOFF_MAX_MS    10000

enum tail_state { TAIL_RUNNING, TAIL_IDLE_DONE, TAIL_IDLE_STOPPED, TAIL_ENDED };

struct tail {
    const struct al_client *client;
    bool json, until_idle;
    const char *events_path;
    json_t *seen;                 /* event id -> true: history and stream overlap */
    enum tail_state state;
    bool got_event;               /* since the last connect: resets the backoff */
};

/* Joins the text blocks of a content array with "\n" (caller frees). */
static char *content_text(json_t *content)
{
    char *out = al_xstrdup("");
    size_t i;
    json_t *b;

    json_array_foreach(content, i, b) {
        const char *t = cli_json_str(b, "text");
        if (!t)
            continue;
        char *next = al_xasprintf("%s%s%s", out, *out ? "\n" : "", t);
        free(out);
        out = next;
    }
    return out;
}

static void sum_tool_use(json_t *ev)
{
    const char *server = cli_json_str(ev, "mcp_server_name"), *perm = cli_json_str(ev, "evaluated_permission");

    if (server)
        printf("%s/", server);
    cli_put_str(stdout, cli_json_str(ev, "name") ?: "?");
    putchar(' ');
    cli_put_value(json_object_get(ev, "input"), CLI_SUMMARY_MAX);
    if (perm && strcmp(perm, "allow") != 0)
        printf("  permission=%s", perm);
    printf("  id=%s", cli_json_str(ev, "id") ?: "?");
}

/* Appends s[0..n) to out (of len bytes, at most cap), each line break as
 * " ⏎ " and leading or trailing ones dropped. */
static void line_append(char *out, size_t *len, size_t cap, const char *s, size_t n)
{
    static const char mark[] = " \u23ce ";

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    while (n > 0 && (*s == '\n' || *s == '\r'))
        s++, n--;
    for (size_t i = 0; i < n && *len < cap; i++) {
        if (s[i] == '\r')
            continue;
        if (s[i] != '\n') {
            out[(*len)++] = s[i];
            continue;
        }
        for (size_t k = 0; mark[k] && *len < cap; k++)
            out[(*len)++] = mark[k];
    }
}

/* A tool result on one line: its text blocks joined, line breaks shown as
 * a mark, other blocks (an MCP server's images, resources) as [type]; cut
 * at CLI_SUMMARY_MAX. */
static void sum_tool_result(json_t *ev)
{
    char out[CLI_SUMMARY_MAX + 64];
    size_t len = 0, i;
    json_t *b;

    fputs(json_is_true(json_object_get(ev, "is_error")) ? "error" : "ok", stdout);
    json_array_foreach(json_object_get(ev, "content"), i, b) {
        const char *t = cli_json_str(b, "text"), *type = cli_json_str(b, "type") ?: "?";
        if (len > 0)
            line_append(out, &len, sizeof(out), " \u23ce ", strlen(" \u23ce "));
        if (t)
            line_append(out, &len, sizeof(out), t, strlen(t));
        else {
            line_append(out, &len, sizeof(out), "[", 1);
            line_append(out, &len, sizeof(out), type, strlen(type));
            line_append(out, &len, sizeof(out), "]", 1);
        }
    }
    if (len > 0) {
        fputs(": ", stdout);
        cli_put_clean(stdout, out, len, CLI_SUMMARY_MAX);
    }
}

/* Messages are printed whole; continuation lines are indented under the text. */
static void sum_message(json_t *ev)
{
    _cleanup_free_ char *text = content_text(json_object_get(ev, "content"));

    for (const char *s = text;;) {
        size_t n = strcspn(s, "\n");
        cli_put_clean(stdout, s, n, SIZE_MAX);
        if (!s[n])
            break;
        s += n + 1;
        printf("\n%*s", 36, "");
    }
}

static const char *const f_idle[] = { "stop_reason.type", "stop_reason.event_ids", NULL };
static const char *const f_error[] = { "error.type", "error.message", "error.retry_status.type", NULL };
static const char *const f_confirm[] = { "result", "tool_use_id", "deny_message", NULL };

/* Per event type: a function, or else the fields to show. */
static const struct {
    const char *type;
    void (*fn)(json_t *ev);
    const char *const *fields;
} summaries[] = {
    { "agent.tool_use", sum_tool_use, NULL },           { "agent.custom_tool_use", sum_tool_use, NULL },
    { "agent.mcp_tool_use", sum_tool_use, NULL },       { "agent.tool_result", sum_tool_result, NULL },
    { "agent.mcp_tool_result", sum_tool_result, NULL }, { "user.tool_result", sum_tool_result, NULL },
    { "user.custom_tool_result", sum_tool_result, NULL },
    { "agent.message", sum_message, NULL },             { "user.message", sum_message, NULL },
    { "system.message", sum_message, NULL },            { "session.status_idle", NULL, f_idle },
    { "session.error", NULL, f_error },                 { "user.tool_confirmation", NULL, f_confirm },
};

void cli_timeline_print(json_t *ev)
{
    const char *type = cli_json_str(ev, "type") ?: "?", *ts = cli_json_str(ev, "processed_at");
    int64_t us;
    struct tm tm;

    if (!ts || al_rfc3339_parse(ts, &us) < 0)
        us = al_now_us();
    time_t sec = (time_t) (us / 1000000);
    localtime_r(&sec, &tm);
    printf("%02d:%02d:%02d  %-24s  ", tm.tm_hour, tm.tm_min, tm.tm_sec, type);
    for (size_t i = 0; i < AL_ELEMENTSOF(summaries); i++) {
        if (strcmp(type, summaries[i].type) != 0)
            continue;
        if (summaries[i].fn)
            summaries[i].fn(ev);
        else
            cli_put_fields(ev, summaries[i].fields, CLI_SUMMARY_MAX);
    }
    putchar('\n');
}

static enum tail_state next_state(enum tail_state s, json_t *ev)
{
    const char *type = cli_json_str(ev, "type") ?: "", *reason = cli_json_str(ev, "stop_reason.type") ?: "";

    if (s == TAIL_ENDED || !strcmp(type, "session.status_terminated") || !strcmp(type, "session.deleted"))
        return TAIL_ENDED;
    if (!strcmp(type, "session.status_idle"))
        return !strcmp(reason, "end_turn") ? TAIL_IDLE_DONE
             : !strcmp(reason, "requires_action") ? TAIL_RUNNING : TAIL_IDLE_STOPPED;
    if (!strncmp(type, "user.", 5) || !strcmp(type, "session.status_running") ||
        !strcmp(type, "session.status_rescheduled"))
        return TAIL_RUNNING;
    return s;
}

static bool tail_is_done(const struct tail *t)
{
    return t->state == TAIL_ENDED || (t->until_idle && t->state != TAIL_RUNNING);
}

static void tail_event(struct tail *t, json_t *ev)
{
    const char *id = cli_json_str(ev, "id");

    if (id) {
        if (json_object_get(t->seen, id))
            return;
        json_object_set_new(t->seen, id, json_true());
    }
    if (t->json) {
        json_dumpf(ev, stdout, JSON_COMPACT);
        putchar('\n');
    } else {
        cli_timeline_print(ev);
    }
    fflush(stdout);
    t->state = next_state(t->state, ev);
}

/* Lists the history once the stream is open, so that nothing is missed in
 * between; events on both are printed once. A failed list is not fatal. */
static int tail_on_open(void *ud)
{
    struct tail *t = ud;
    _cleanup_json_ json_t *res = NULL;
    size_t i;
    json_t *ev;

    if (cli_api_list_all(t->client, t->events_path, &res) < 0)
        return 0;
    json_array_foreach(json_object_get(res, "data"), i, ev) {
        tail_event(t, ev);
    }
    return tail_is_done(t) ? -ECANCELED : 0;
}

static int tail_on_sse(const char *name, const char *data, size_t len, void *ud)
{
    struct tail *t = ud;

    if (!name || strcmp(name, "ping") == 0)
        return 0;
    if (strcmp(name, "error") == 0) {
        fprintf(stderr, "error: the stream reported: ");
        cli_put_clean(stderr, data, len, 500);
        fputc('\n', stderr);
        return -ECONNRESET;
    }
    _cleanup_json_ json_t *ev = json_loadb(data, len, 0, NULL);
    if (!json_is_object(ev))
        return 0;
    t->got_event = true;
    tail_event(t, ev);
    return tail_is_done(t) ? -ECANCELED : 0;
}

/* One stream connection. Returns -ECANCELED when the tail is done, -EPROTO
 * when the hub refused it for good, -EAGAIN to reconnect. */
static int tail_connect(struct tail *t, const char *stream_path)
{
    struct al_response resp;
    int r = al_client_sse_ex(t->client, stream_path, tail_on_open, tail_on_sse, t, &resp);

    if (r == -EPROTO && resp.status) {
        cli_print_api_error(&resp);
        bool fatal = resp.status >= 400 && resp.status < 500 && resp.status != 408 && resp.status != 429;
        al_response_done(&resp);
        return fatal ? -EPROTO : -EAGAIN;
    }
    al_response_done(&resp);
    if (r == -ECANCELED)
        return r;
    if (r < 0 && r != -ECONNRESET)
        fprintf(stderr, "airlock: stream: %s; reconnecting\n", al_errno_name(-r) ?: "error");
    return -EAGAIN;
}

int cli_tail_session(const struct al_client *c, const char *session_id, bool json, bool until_idle)
{
    _cleanup_free_ char *id = al_client_escape(session_id);
    _cleanup_free_ char *stream_path = al_xasprintf("/v1/sessions/%s/events/stream", id);
    _cleanup_free_ char *events_path = al_xasprintf("/v1/sessions/%s/events?limit=1000", id);
    _cleanup_json_ json_t *seen = json_object();
    struct tail t = { .client = c, .json = json, .until_idle = until_idle, .events_path = events_path, .seen = seen };
    long backoff = TAIL_BACKOFF_MIN_MS;
    int r;

    for (;;) {
        t.got_event = false;
        r = tail_connect(&t, stream_path);
        if (r == -ECANCELED || r == -EPROTO)
            break;
        if (t.got_event)
            backoff = TAIL_BACKOFF_MIN_MS;
        struct timespec ts = { .tv_sec = backoff / 1000, .tv_nsec = (backoff % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        backoff = AL_MIN(backoff * 2, TAIL_BACKOFF_MAX_MS);
    }
    if (r == -EPROTO)
        return r;
    return t.state == TAIL_IDLE_STOPPED ? -EPROTO : 0;
}
