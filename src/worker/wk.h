/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's internals: one process, one libevent loop, many work items.
 *
 *   worker.c   options, the poll loop, signals, --on-work, `worker run`
 *   api.c      one API call with the SDK client's retry policy (spec §1.3)
 *   secret.c   the work item secret (spec §1.5)
 *   item.c     one claimed item: lease heartbeats, session fetch, skills,
 *              teardown and force-stop (spec §8.2, §8.3)
 *   session.c  the session's event stream, reconcile, confirmation gating,
 *              the idle clock and tool-result posting (spec §5.4)
 *   runner.c   the per-session runner process and its socketpair
 *
 * Every callback runs on the loop thread. Nothing here blocks and nothing
 * here touches session files: the runner does. Credentials live in the
 * item and the worker only; they are never logged and never reach a
 * runner's environment. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <jansson.h>

#include "../lib/base/macro.h"
#include "../sandbox/sandbox.h"

struct event_base;
struct event;
struct al_curl;
struct al_curl_xfer;
struct al_map;
struct al_http_server;

/* --- configuration ------------------------------------------------------ */

struct wk_config {
    char *environment_id;
    char *environment_key;       /* secret; from ANTHROPIC_ENVIRONMENT_KEY or a file */
    char *environment_key_file;
    char *base_url;              /* no trailing slash */
    char *root;                  /* session directories live under it */
    char *worker_id;
    char *on_work;
    bool on_work_key;            /* hand the environment key to --on-work children */
    char *cacert;
    char *log_level;
    char *work_secret_file;      /* `worker run` */
    char *runner_exe;            /* the airlock binary for runners; default /proc/self/exe */
    int64_t max_sessions;
    int64_t max_idle_us;
    int64_t ready_fd;
    int64_t drain_us;
    bool honor_api_base_url;
    bool runner_zygote;          /* fork runners from one zygote (src/sandbox/zygote.h) */
    /* the sandbox */
    char *min_isolation;
    bool check;
    char *network;
    struct al_sandbox_limits lim;  /* per session; 0 = the default */
    char *admin_listen;          /* opt-in local /healthz and /metrics */
};

/* --- API calls ---------------------------------------------------------- */

struct worker;

/* The outcome of one API call after its retries. err is 0 when an HTTP
 * response arrived (status is then set), else a negative errno. json is
 * the parsed body (NULL for an empty or non-JSON body); both it and body
 * are borrowed for the duration of the callback. */
struct wk_resp {
    int err;
    long status;
    json_t *json;
    const char *body;
    size_t len;
};

typedef void (*wk_done_cb)(const struct wk_resp *r, void *ud);

struct wk_call_opts {
    const char *method;          /* GET or POST */
    const char *url;             /* absolute */
    const char *bearer;          /* borrowed; copied */
    const json_t *body;          /* POST body, or NULL for none */
    const char *helper;          /* x-stainless-helper value (telemetry, as the SDK) */
    const char *const *headers;  /* extra "Name: value" lines */
    long timeout_ms;             /* per attempt; 0 = the SDK's 10 minutes */
    int max_retries;             /* -1 = the SDK's 2 */
    const char *accept;          /* Accept header; NULL = application/json */
    bool no_beta;                /* skills calls: the SDK sends no anthropic-beta */
    bool no_parse;               /* only the status matters: leave the body unparsed */
    size_t max_response;
};

struct wk_call;

/* Starts a call; done fires exactly once, from the loop, unless the call is
 * cancelled first. Returns NULL only when the request cannot be built
 * (logged). */
struct wk_call *wk_call(struct worker *w, const struct wk_call_opts *o, wk_done_cb done, void *ud);
/* Cancels a call: done never fires. NULL-safe. */
void wk_call_cancel(struct wk_call *c);

/* True for the SDK's "permanent" 4xx: any 4xx but 408, 409 and 429. */
bool wk_fatal_4xx(long status);
/* A short description of a failed call for logs: "HTTP 404 not_found_error:
 * <message>" or the errno name. Never includes a credential. Owned. */
char *wk_resp_describe(const struct wk_resp *r);
/* Jittered exponential backoff as the SDK computes it: min(base*2^n, cap)
 * minus up to 25 %. */
int64_t wk_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms);
int64_t wk_jitter_ms(int64_t lo, int64_t hi);

/* --- the secret --------------------------------------------------------- */

/* The sessions token inside a work item's secret (base64url or base64 JSON,
 * padding optional), or NULL when there is none to use. Owned. */
char *wk_secret_sessions_token(const char *secret);
/* The same, and *api_base (owned, no trailing slash) when the payload has a
 * plausible http(s) api_base_url and a token; NULL otherwise. */
char *wk_secret_decode(const char *secret, char **api_base);

/* --- runner processes --------------------------------------------------- */

struct wk_runner;

/* Answer to one runner request. For tools: is_error and text; for skill
 * ops: is_error means failure and text is the reason. err < 0 when the
 * runner died or the request could not be sent (text then NULL). */
struct wk_runner_reply {
    int err;
    bool is_error;
    const char *text;
    size_t len;
};
typedef void (*wk_runner_cb)(const struct wk_runner_reply *r, void *ud);

/* Starts the runner for a session; ready/exit are reported through the
 * request callbacks. workdir/outputs are created by the runner's caller. */
struct wk_runner *wk_runner_start(struct worker *w, const char *session_id, const char *workdir,
                                  const char *outputs, const char *tmpdir);
/* Queues one request; cb fires exactly once (possibly with err < 0) unless
 * the runner is freed first, in which case it fires with -ECANCELED. */
void wk_runner_tool(struct wk_runner *r, const char *name, const json_t *input, wk_runner_cb cb, void *ud);
void wk_runner_skill_install(struct wk_runner *r, const char *dir, const void *data, size_t len,
                             wk_runner_cb cb, void *ud);
void wk_runner_skill_remove(struct wk_runner *r, const char *dir, wk_runner_cb cb, void *ud);
/* Asks the runner to abort the request in flight, if any. */
void wk_runner_cancel_current(struct wk_runner *r);
/* Closes the socket (the runner kills its tools and exits), kills it after
 * a grace period, reaps it. Pending callbacks fire with -ECANCELED. */
void wk_runner_close(struct wk_runner *r);
bool wk_runner_busy(const struct wk_runner *r);
/* The SIGCHLD handler's hook: true when pid was a runner (now reaped). */
bool wk_runner_reap(struct worker *w, pid_t pid, int status);
/* Prefers the small airlock-sandbox-runner beside this binary (fewer
 * libraries to load per session) over `airlock sandbox-runner`. */
void wk_runner_find(struct worker *w);
/* At exit: SIGKILL every runner still alive and wait for it. */
void wk_runner_kill_all(void);
/* Starts the runner zygote if --runner-zygote and it is not running; a
 * failure only means runners are exec'd. */
void wk_zygote_start(struct worker *w);
/* Stops it (worker exit). */
void wk_zygote_stop(struct worker *w);
pid_t wk_runner_pid(const struct wk_runner *r);

/* --- items and sessions ------------------------------------------------- */

enum wk_lease_end {
    LEASE_HELD = 0,
    LEASE_RUNNER_DONE,
    LEASE_HEARTBEAT_STOP,
    LEASE_LOST,
    LEASE_REJECTED,
    LEASE_ASSUMED_LOST,
};

struct wk_session;

struct wk_item {
    TAILQ_ENTRY(wk_item) link;
    struct worker *w;
    char *work_id, *env_id, *session_id, *data_type;
    char *cred;                  /* sessions token or environment key; secret */
    bool has_token;
    char *api_base;              /* base URL for per-item calls */

    /* lease */
    struct event *hb_timer;
    struct wk_call *hb_call;
    struct event *hb_cutoff;
    char *last_heartbeat;
    int64_t hb_interval_ms, ttl_ms, last_success_us;
    enum wk_lease_end lease;

    /* lifecycle */
    int phase;
    struct wk_call *call;        /* session GET, skill download, or stop */
    json_t *session;
    json_t *skills;              /* array of agent skills to fetch */
    size_t skill_i;
    json_t *installed;           /* array of skill dir names installed */
    char *skill_dir;             /* the one being fetched */
    char *workdir, *outputs, *tmpdir;
    struct wk_runner *runner;
    struct wk_session *sess;
    struct event *defer;
    bool failed;                 /* `worker run` exits 1 */
};

TAILQ_HEAD(wk_items, wk_item);

struct worker {
    struct wk_config cfg;
    struct event_base *base;
    struct al_curl *curl;
    struct wk_items items;
    size_t n_items;

    struct wk_call *poll_call;
    struct event *poll_timer;
    int poll_attempt;
    int64_t idle_since_us, idle_report_us;
    bool draining;               /* SIGTERM: no more claims */
    struct event *drain_timer;
    struct event *sig_term, *sig_int, *sig_chld;
    int exit_code;
    bool one_shot;               /* `worker run`: exit after the item */
    bool ready_sent;

    /* metrics */
    uint64_t items_claimed, tools_run, results_posted;
    uint64_t runners_zygote, runners_exec;   /* runners started each way */

    int isolation;               /* enum al_isolation the runners get; 0 = none */
    char *runner_path;           /* airlock-sandbox-runner beside us, if there */
    bool runner_standalone;
    int zygote_fd;               /* the zygote's socket, or -1 */
    pid_t zygote_pid;
    int zygote_failures;         /* in a row; after ZYGOTE_MAX_FAILURES runners are exec'd */
    struct al_http_server *admin;
};

/* admin.c: starts the --admin-listen server, if asked for. 0 or -errno. */
int wk_admin_start(struct worker *w);

/* The host uid a session's sandbox runs as: its own (from the session id)
 * when the worker is root, else the worker's. */
uid_t wk_session_uid(const char *session_id);

/* item.c */
void wk_item_start(struct worker *w, json_t *work);
/* Ends the item's session runner and stops or releases the item. */
void wk_item_finish(struct wk_item *it, enum wk_lease_end why);
/* Force-ends every item at once (exit): cancels their calls. */
void wk_item_free(struct wk_item *it);
/* session.c tells the item it has ended. */
void wk_item_session_ended(struct wk_item *it);
/* The lease TTL changed (send retry window). */
void wk_session_set_retry_window(struct wk_session *s, int64_t ms);

/* session.c */
struct wk_session *wk_session_start(struct wk_item *it);
/* Stops following the stream; a tool in flight is drained (bounded by the
 * drain time when draining, else aborted now). ended fires via the item. */
void wk_session_stop(struct wk_session *s, bool drain);
void wk_session_free(struct wk_session *s);
bool wk_session_busy(const struct wk_session *s);
bool wk_session_ended(const struct wk_session *s);

/* worker.c */
void wk_worker_item_done(struct worker *w, struct wk_item *it);
/* An URL under base for the formatted path; owned. */
_printf_(2, 3) char *wk_url(const char *base, const char *fmt, ...);
