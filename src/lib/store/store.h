/* SPDX-License-Identifier: Apache-2.0 */
/* The hub's durable state behind one interface. Objects are JSON documents
 * (jansson) with a few columns derived from them for lookups; fields whose
 * name starts with "_" are internal and never leave the hub (see
 * hub/api.c:api_public). Every write that the API acknowledges is
 * committed before the reply, so it survives kill -9 of the hub.
 *
 * sqlite.c is the only user of sqlite3.h. The interface is synchronous: a
 * second backend (PostgreSQL) will need a callback form of the same calls.
 * Loop thread only. Returned json_t values are new references. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../base/macro.h"

struct al_store;

enum al_kind {
    AL_KIND_ENVIRONMENT,
    AL_KIND_AGENT,          /* id + version; "latest" rows are the max version */
    AL_KIND_SESSION,
    AL_KIND_WORK,
    AL_KIND_SKILL,
    AL_KIND_SKILL_VERSION,  /* id = "<skill_id>/<version>" */
    AL_KIND_CREDENTIAL,     /* environment keys and sessions tokens, by id */
    AL_KIND_TUNNEL,         /* hash = hostname (never reused: the hub looks before it inserts) */
    AL_KIND_TUNNEL_CERT,    /* parent = tunnel id; status "active" or "archived" */
    _AL_KIND_MAX,
};

struct al_store_stats {
    int64_t schema_version;
};

/* Opens (creating) the database at path in WAL mode and migrates its
 * schema. The store holds the database exclusively while open: a second
 * opener gets -EBUSY. sync_full selects synchronous=FULL (durable against power loss)
 * instead of NORMAL (durable against process death). */
_must_check_ int al_store_open(const char *path, bool sync_full, struct al_store **ret);
struct al_store *al_store_close(struct al_store *st);
int64_t al_store_schema_version(struct al_store *st);

/* Transactions nest: the outermost is a transaction, inner ones are
 * savepoints (an inner rollback undoes only its own writes; only the
 * outermost commit makes anything durable). A rollback after a failed begin
 * does nothing, so callers may pair every begin, failed or not, with one
 * commit-or-rollback. */
_must_check_ int al_store_begin(struct al_store *st);
_must_check_ int al_store_commit(struct al_store *st);
void al_store_rollback(struct al_store *st);
bool al_store_in_transaction(const struct al_store *st);

/* Objects. put inserts or replaces; the derived columns are taken from
 * body. get returns -ENOENT when absent. For AL_KIND_AGENT, get with
 * version 0 returns the newest version. */
_must_check_ int al_store_put(struct al_store *st, enum al_kind k, const char *id, int64_t version,
                              json_t *body);
_must_check_ int al_store_get(struct al_store *st, enum al_kind k, const char *id, int64_t version,
                              json_t **ret);
_must_check_ int al_store_delete(struct al_store *st, enum al_kind k, const char *id);

/* A list query. Objects are ordered by insertion sequence; cursor is the
 * sequence to continue after (exclusive), 0 to start. */
struct al_list_query {
    enum al_kind kind;
    bool desc;
    int64_t after_seq;           /* 0 = from the start */
    int limit;
    bool include_archived;
    const char *parent;          /* environment_id for work/sessions/keys, skill_id for versions */
    const char *agent_id;        /* sessions */
    int64_t agent_version;       /* sessions; 0 = any */
    const char *const *statuses; /* sessions (NULL-terminated) / work states */
    int64_t created_gt, created_gte, created_lt, created_lte;  /* µs; 0 = unset */
    bool latest_only;            /* agents: only the newest version of each */
};

/* Appends up to q->limit objects to the array out; *ret_next_seq is the
 * cursor for the next page or 0 when there is none. */
_must_check_ int al_store_list(struct al_store *st, const struct al_list_query *q, json_t *out,
                               int64_t *ret_next_seq);
int64_t al_store_count(struct al_store *st, enum al_kind k, const char *parent, const char *state);

/* Blobs (skill archives), keyed by the owning object's id. */
_must_check_ int al_store_blob_put(struct al_store *st, const char *id, const void *data, size_t n);
_must_check_ int al_store_blob_get(struct al_store *st, const char *id, void **ret, size_t *ret_n);

/* Credentials by SHA-256 hex of the secret. *ret is the credential object. */
_must_check_ int al_store_credential_by_hash(struct al_store *st, const char *hash_hex, json_t **ret);
/* An object of kind k whose hash column is hash (a tunnel by its
 * hostname, archived ones included), or -ENOENT. Indexed. */
_must_check_ int al_store_get_by_hash(struct al_store *st, enum al_kind k, const char *hash, json_t **ret);

/* Events: append assigns the sequence; body must carry "id", "type" and
 * "processed_at". */
_must_check_ int al_store_event_append(struct al_store *st, const char *session_id, json_t *event,
                                       int64_t *ret_seq);
struct al_event_query {
    const char *session_id;
    int64_t after_seq;           /* exclusive cursor for asc; for desc, before_seq */
    bool desc;
    int limit;
    const char *const *types;    /* NULL-terminated or NULL */
    int64_t created_gt, created_gte, created_lt, created_lte;
};
_must_check_ int al_store_event_list(struct al_store *st, const struct al_event_query *q, json_t *out,
                                     int64_t *ret_next_seq);
/* The newest event of session that answers tool_use_id (user.tool_result,
 * user.custom_tool_result, agent.tool_result) or -ENOENT. */
_must_check_ int al_store_event_by_tool_use(struct al_store *st, const char *session_id, const char *type,
                                            const char *tool_use_id, json_t **ret);
/* The event event_id of session_id, or -ENOENT. */
_must_check_ int al_store_event_by_id(struct al_store *st, const char *session_id, const char *event_id,
                                      json_t **ret);
/* The current turn of a session: its newest user.message and every event
 * after it, ascending. Empty when the session has no user.message. */
_must_check_ int al_store_event_turn(struct al_store *st, const char *session_id, json_t *out);
_must_check_ int al_store_event_delete_session(struct al_store *st, const char *session_id);

/* Work queue helpers: the oldest item of env in state "queued" whose
 * "_delivered_us" is 0 or older than reclaim_before_us. */
_must_check_ int al_store_work_next(struct al_store *st, const char *env_id, int64_t reclaim_before_us,
                                    json_t **ret);
/* Items in starting/active/stopping whose lease expired before now_us. */
_must_check_ int al_store_work_expired(struct al_store *st, int64_t now_us, json_t *out);
/* Counts an environment's queued items: pending = handed out by a poll at
 * or after pending_since_us and not acked; depth = the others. oldest_us
 * is the earliest created_at among them (0 when there are none). */
struct al_work_stats {
    int64_t depth, pending, oldest_us;
};
_must_check_ int al_store_work_stats(struct al_store *st, const char *env_id, int64_t pending_since_us,
                                     struct al_work_stats *ret);
/* The live (not stopped) work item of a session, or -ENOENT. */
_must_check_ int al_store_work_for_session(struct al_store *st, const char *session_id, json_t **ret);
/* Sessions whose status is "running" (for restart recovery). */
_must_check_ int al_store_sessions_running(struct al_store *st, json_t *out);
