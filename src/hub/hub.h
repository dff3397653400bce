/* SPDX-License-Identifier: Apache-2.0 */
/* The hub: the managed-agents control plane. One process, one libevent
 * loop; every handler runs on it and keeps its store work short. This
 * header is internal to src/hub/. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/base/macro.h"
#include "../lib/base/opt.h"
#include "../lib/http/server.h"
#include "../lib/store/store.h"
#include "validate.h"

struct event_base;
struct event;
struct al_map;

struct hub_config {
    char *listen;             /* "127.0.0.1:8080" */
    char *data_dir;           /* holds airlock.db and api.key */
    char *api_key_file;
    int64_t ready_fd;
    char *log_level;
    bool sync_full;
    int64_t lease_ttl_us;     /* work lease TTL reported to workers */
    int64_t ping_interval_us; /* SSE keep-alive */
    int64_t idle_timeout_us;  /* idle keep-alive connections and stalled writes */
    int64_t max_body;         /* JSON body cap, bytes */
    int64_t max_poll_waiters; /* parked long-polls */
    int64_t max_streams;      /* open SSE streams */
    char *tunnel_domain;      /* tunnel hostnames are <16 hex>.<this> */
    char *tunnel_relay;       /* HOST:PORT of the relay's client listener, for MCP servers in tunnels */
    char *mcp_cacert;         /* CA bundle for https MCP servers outside tunnels; NULL = system store */
    int64_t mcp_timeout_us;   /* one MCP tool call, all its requests */
    int64_t mcp_max_response; /* one MCP response body, bytes */
};

#define AL_HUB_VERSION "0.1.0"   /* clientInfo.version of the hub's MCP client */

/* Who made a request. Credentials are looked up by the SHA-256 of their
 * value, never stored or logged in clear. */
enum principal_kind { PRINCIPAL_NONE, PRINCIPAL_API_KEY, PRINCIPAL_ENV_KEY, PRINCIPAL_SESSION_TOKEN };

struct principal {
    enum principal_kind kind;
    char *environment_id;     /* env key: its environment; token: its session's */
    char *session_id;         /* sessions token only */
    char *work_id;            /* sessions token only */
};

struct poll_waiter;
struct stream_sub;
struct agent_loop;
struct mcp_client;

struct hub_metrics {
    uint64_t polls, polls_empty, polls_woken, acks, heartbeats, heartbeat_412, stops;
    uint64_t events_appended, sse_frames, sse_dropped, leases_expired, auth_failures, passes;
    uint64_t tunnel_verify_ok, tunnel_verify_rejected;
    uint64_t mcp_calls_ok, mcp_calls_tool_error, mcp_calls_failed, mcp_sessions_initialized;
};

struct hub {
    struct event_base *base;
    struct hub_config cfg;
    struct al_store *store;
    struct al_http_server *http;
    char *url;
    unsigned char api_key_hash[32];
    struct event *tick;           /* lease expiry and poll-waiter sweep */
    struct event *sigterm, *sigint;
    struct al_map *creds;         /* verified credentials by digest (auth.c) */
    struct al_map *queues;        /* environment id -> struct env_queue (api_work.c) */
    size_t nwaiters;              /* parked long-polls in all queues */
    int64_t last_sweep_us;        /* when idle queues and stale worker ids were last dropped */
    struct stream_sub *subs;      /* open SSE streams (dead ones until reaped) */
    struct event *reap_ev;        /* frees ended streams on the next loop pass */
    size_t nsubs;
    struct agent_loop *loop;
    struct mcp_client *mcp;       /* mcp_client.c */
    json_t *pending;              /* [[session_id, event], ...] appended, not yet published */
    struct event *pass_ev;        /* ends the loop pass's transaction (tx.c) */
    bool pass_open;
    int tx_depth;                 /* hub_tx_begin levels inside the pass */
    size_t tx_marks[16];          /* pending's length at each level's begin */
    struct hub_metrics m;
    unsigned char tunnel_key[32]; /* <data dir>/tunnel.key: tunnel tokens are HMACs under it */
};

/* Handler prologue: every /v1 handler authenticates before anything else. */
#define API_BEGIN(r, ud)              \
    struct hub *h = (ud);             \
    if (!api_begin(h, (r)))           \
        return

/* --- tx.c: group commit ---------------------------------------------- */
void hub_tx_init(struct hub *h);
void hub_tx_done(struct hub *h);         /* commits an open pass */
/* Opens the loop pass's transaction if none is open; replies are held
 * until it commits at the end of the pass. */
int hub_pass_begin(struct hub *h);
/* A savepoint inside the pass; hub_tx_end commits it (e == 0) or rolls it
 * back, dropping the events it appended. Returns e or the commit's error. */
_must_check_ int hub_tx_begin(struct hub *h);
int hub_tx_end(struct hub *h, int e);

/* --- hub.c ------------------------------------------------------------- */
int hub_main(int argc, char **argv);
extern const struct al_opt hub_opts[];   /* see lib/base/opt.h */

/* --- auth.c ------------------------------------------------------------ */
/* Authenticates r; on failure replies 401 and returns false. */
bool auth_authenticate(struct hub *h, struct al_req *r);
void principal_free(struct principal *p);
/* Drops a credential from the cache of verified ones (on revocation). */
void auth_forget(struct hub *h, const char *hash_hex);
void auth_cache_free(struct hub *h);
/* Scope checks: on failure reply (403/404 without revealing existence). */
bool auth_require_api_key(struct al_req *r);
bool auth_require_env(struct al_req *r, const char *environment_id, bool api_key_ok, bool token_ok);
bool auth_require_session(struct al_req *r, const char *session_id, const char *environment_id);
/* Issues a credential; returns the clear secret (caller frees) and stores its hash. */
char *auth_issue_env_key(struct hub *h, const char *environment_id, json_t **ret_obj);
char *auth_issue_session_token(struct hub *h, const char *environment_id, const char *session_id,
                               const char *work_id);

/* --- json.c: object helpers shared by the API handlers ----------------- */
char *now_rfc3339(void);                        /* caller frees */
json_t *api_public(json_t *obj);                /* copy without "_" fields; steals obj */
/* Applies a metadata patch (null or "" deletes) to *md. */
void json_metadata_patch(json_t *md, json_t *patch);
/* Reads limit (1..max, default def) and page (an opaque cursor) from the query.
 * Replies 400 and returns false on bad values. */
bool api_page_params(struct al_req *r, int def, int max, int *ret_limit, int64_t *ret_after);
json_t *api_page(json_t *data, int64_t next);   /* {data, next_page} */
char *page_token(int64_t seq);
bool api_bool_param(struct al_req *r, const char *name, bool def, bool *ret);
/* Replies 400 with "<field>: <why>" and the given error_code. */
void api_bad_field(struct al_req *r, const char *field, const char *why);
/* Lists q's objects as a page {data, next_page}, each object passed
 * through view (which steals it and returns the public form; NULL keeps
 * it). On a store failure replies 500 and returns NULL. */
json_t *api_list(struct hub *h, struct al_req *r, const struct al_list_query *q, json_t *(*view)(json_t *));
/* api_list, then the reply. */
void api_reply_list(struct hub *h, struct al_req *r, const struct al_list_query *q, json_t *(*view)(json_t *));
/* Checks that body is an object whose keys are all in allowed (NULL-
 * terminated); replies 400 and returns false otherwise. */
bool api_known_fields(struct al_req *r, json_t *body, const char *const *allowed);
/* Ends a request's transaction: commits when e == 0 and publishes the
 * appended events, otherwise rolls back, forgets them and replies 500.
 * Returns 0 or the error. */
int api_finish_tx(struct hub *h, struct al_req *r, int e);
/* Joins the loop pass's transaction and authenticates; on failure it has
 * replied and returns false. */
bool api_begin(struct hub *h, struct al_req *r);
/* Replies 500 for a store failure and returns. */
void api_store_error(struct al_req *r, int err);
/* Replies 404 not_found_error "<what> not found" with error_code <what>_not_found. */
void api_not_found(struct al_req *r, const char *what);

/* --- handlers (api_*.c) ------------------------------------------------ */
void h_env_create(struct al_req *r, void *ud);
void h_env_list(struct al_req *r, void *ud);
void h_env_get(struct al_req *r, void *ud);
void h_env_update(struct al_req *r, void *ud);
void h_env_archive(struct al_req *r, void *ud);
void h_env_delete(struct al_req *r, void *ud);
void h_env_key_create(struct al_req *r, void *ud);
void h_env_key_list(struct al_req *r, void *ud);
void h_env_key_revoke(struct al_req *r, void *ud);
/* Loads environment id; replies 404 and returns NULL if it does not exist. */
json_t *env_load(struct hub *h, struct al_req *r, const char *id);

void h_agent_create(struct al_req *r, void *ud);
void h_agent_list(struct al_req *r, void *ud);
void h_agent_get(struct al_req *r, void *ud);
void h_agent_update(struct al_req *r, void *ud);
void h_agent_archive(struct al_req *r, void *ud);
void h_agent_versions(struct al_req *r, void *ud);

void h_session_create(struct al_req *r, void *ud);
void h_session_list(struct al_req *r, void *ud);
void h_session_get(struct al_req *r, void *ud);
void h_session_update(struct al_req *r, void *ud);
void h_session_archive(struct al_req *r, void *ud);
void h_session_delete(struct al_req *r, void *ud);

void h_events_list(struct al_req *r, void *ud);
void h_events_send(struct al_req *r, void *ud);
void h_events_stream(struct al_req *r, void *ud);

void h_work_poll(struct al_req *r, void *ud);
void h_work_ack(struct al_req *r, void *ud);
void h_work_heartbeat(struct al_req *r, void *ud);
void h_work_stop(struct al_req *r, void *ud);
void h_work_get(struct al_req *r, void *ud);
void h_work_update(struct al_req *r, void *ud);
void h_work_list(struct al_req *r, void *ud);
void h_work_stats(struct al_req *r, void *ud);
void h_work_healthcheck(struct al_req *r, void *ud);

void h_skill_create(struct al_req *r, void *ud);
void h_skill_list(struct al_req *r, void *ud);
void h_skill_get(struct al_req *r, void *ud);
void h_skill_version_create(struct al_req *r, void *ud);
void h_skill_version_list(struct al_req *r, void *ud);
void h_skill_version_get(struct al_req *r, void *ud);
void h_skill_version_content(struct al_req *r, void *ud);

/* --- tunnels (api_tunnels.c) ------------------------------------------ */
/* Loads <data dir>/tunnel.key (32 bytes, 0600), creating it on first start. */
_must_check_ int tunnels_init(struct hub *h);
void tunnels_done(struct hub *h);   /* wipes the key */
void h_tunnel_create(struct al_req *r, void *ud);
void h_tunnel_list(struct al_req *r, void *ud);
void h_tunnel_get(struct al_req *r, void *ud);
void h_tunnel_archive(struct al_req *r, void *ud);
void h_tunnel_reveal_token(struct al_req *r, void *ud);
void h_tunnel_rotate_token(struct al_req *r, void *ud);
void h_tunnel_verify(struct al_req *r, void *ud);
void h_tunnel_cert_create(struct al_req *r, void *ud);
void h_tunnel_cert_list(struct al_req *r, void *ud);
void h_tunnel_cert_get(struct al_req *r, void *ud);
void h_tunnel_cert_archive(struct al_req *r, void *ud);

/* --- events (api_events.c) --------------------------------------------- */
/* Appends one event (id and processed_at assigned) to session's log inside
 * the caller's transaction; publishes it to streams and the agent loop
 * after commit via events_publish. Steals ev; *ret_ev borrows the stored one. */
_must_check_ int events_append(struct hub *h, const char *session_id, json_t *ev, json_t **ret_stored);
/* Publishes the events appended in the committed pass to open streams, or
 * forgets them (the pass rolled back). Called by tx.c only. */
void events_publish_pending(struct hub *h);
void events_discard(struct hub *h);

/* Ends every stream of session (terminated, deleted). */
void events_close_streams(struct hub *h, const char *session_id);
void streams_ping(struct hub *h);
void events_init(struct hub *h);
void events_done(struct hub *h);   /* ends every stream */

/* --- work queue (api_work.c) ------------------------------------------- */
/* Enqueues a work item for a session (or a health check when session is
 * NULL) inside the caller's transaction; wakes pollers after commit. */
_must_check_ int work_enqueue(struct hub *h, const char *environment_id, json_t *session, json_t **ret_work);
void work_wake(struct hub *h, const char *environment_id);
void work_tick(struct hub *h);
void work_restart_grace(struct hub *h);   /* at start-up, before the first tick */
void work_poll_waiters_free(struct hub *h);
int64_t workers_polling(struct hub *h, const char *environment_id);

/* --- sessions ---------------------------------------------------------- */
/* Sets session status (and updated_at) in the store if it changed. */
_must_check_ int session_set_status(struct hub *h, const char *session_id, const char *status);
json_t *session_load(struct hub *h, const char *session_id);   /* NULL if absent */

/* --- agent loop (loop.c) ----------------------------------------------- */
/* Called after a committed append of a user-side event; schedules a turn. */
void loop_notify(struct hub *h, const char *session_id);
void loop_start(struct hub *h);       /* resumes running sessions after restart */
/* The outcome of an MCP call the loop started (mcp_client.c): appends the
 * agent.mcp_tool_result (content stolen), and a session.error of
 * error_type when it is not NULL, if call_id is still the open call of the
 * session's current turn; otherwise drops it. Then steps the session. */
void loop_mcp_resolve(struct hub *h, const char *session_id, const char *call_id, json_t *content, bool is_error,
                      const char *error_type, const char *msg);
void loop_stop(struct hub *h);
