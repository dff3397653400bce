/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite backend of store.h. One connection, WAL, prepared statements kept
 * for the life of the store. Objects of every kind share one table whose
 * columns are derived from the JSON body on each put; events and blobs have
 * tables of their own. Schema changes are numbered migrations applied in
 * one transaction each at open. */
#include <sqlite3.h>
#include <string.h>

#include "../base/log.h"
#include "../base/util.h"
#include "store.h"

#define STMT_CACHE 64

struct al_store {
    sqlite3 *db;
    int depth;                  /* transaction nesting */
    struct {
        const char *sql;        /* static string, compared by pointer */
        sqlite3_stmt *st;
    } cache[STMT_CACHE];
    size_t ncache;
};

static const char *const migrations[] = {
    /* 1: objects, events, blobs */
    "CREATE TABLE objects ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind INTEGER NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0,"
    "  parent TEXT, ref TEXT, ref_version INTEGER, status TEXT,"
    "  created_us INTEGER NOT NULL DEFAULT 0, archived INTEGER NOT NULL DEFAULT 0,"
    "  hash TEXT, t1 INTEGER NOT NULL DEFAULT 0, t2 INTEGER NOT NULL DEFAULT 0,"
    "  body TEXT NOT NULL, UNIQUE (kind, id, version));"
    "CREATE INDEX objects_parent ON objects (kind, parent, status, seq);"
    "CREATE INDEX objects_ref ON objects (kind, ref, status);"
    "CREATE INDEX objects_hash ON objects (kind, hash) WHERE hash IS NOT NULL;"
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, session_id TEXT NOT NULL,"
    "  type TEXT NOT NULL, processed_us INTEGER NOT NULL, tool_use_id TEXT, body TEXT NOT NULL);"
    "CREATE INDEX events_session ON events (session_id, seq);"
    "CREATE INDEX events_tool_use ON events (session_id, tool_use_id) WHERE tool_use_id IS NOT NULL;"
    "CREATE TABLE blobs (id TEXT PRIMARY KEY, data BLOB NOT NULL);",
    /* 2: the lease sweep looks up live work items by state and expiry */
    "CREATE INDEX objects_lease ON objects (kind, status, t2);",
};

static sqlite3_stmt *stmt(struct al_store *st, const char *sql)
{
    for (size_t i = 0; i < st->ncache; i++)
        if (st->cache[i].sql == sql) {
            sqlite3_reset(st->cache[i].st);
            sqlite3_clear_bindings(st->cache[i].st);
            return st->cache[i].st;
        }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        al_log(AL_ERROR, "store.prepare", AL_STR("msg", sqlite3_errmsg(st->db)));
        abort();   /* a static statement that does not compile is a programming error */
    }
    if (st->ncache < STMT_CACHE)
        st->cache[st->ncache++] = (typeof(st->cache[0])){ sql, s };
    return s;
}

static int sqlerr(struct al_store *st, int rc, const char *what)
{
    al_log(AL_ERROR, "store.error", AL_STR("op", what), AL_I64("rc", rc), AL_STR("msg", sqlite3_errmsg(st->db)));
    return rc == SQLITE_FULL ? -ENOSPC : rc == SQLITE_BUSY ? -EBUSY : -EIO;
}

static int exec(struct al_store *st, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        al_log(AL_ERROR, "store.exec", AL_STR("msg", msg ? msg : "?"));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int64_t user_version(struct al_store *st)
{
    sqlite3_stmt *s = NULL;
    int64_t v = 0;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

int al_store_open(const char *path, bool sync_full, struct al_store **ret)
{
    struct al_store *st = al_xcalloc(1, sizeof(*st));
    int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc != SQLITE_OK) {
        al_log(AL_ERROR, "store.open", AL_STR("path", path), AL_STR("msg", sqlite3_errstr(rc)));
        al_store_close(st);
        return -EIO;
    }
    /* One process owns the database: taken before the first WAL access,
     * the exclusive mode keeps the WAL index in the heap (no shared
     * mapping) and no file locks are taken per transaction. The write lock
     * is taken at once and kept, so a second hub on the same data
     * directory is refused here instead of failing later. */
    rc = sqlite3_exec(st->db, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; BEGIN IMMEDIATE; COMMIT",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        al_log(AL_ERROR, "store.locked", AL_STR("path", path), AL_STR("msg", sqlite3_errstr(rc)));
        al_store_close(st);
        return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY : -EIO;
    }
    sqlite3_busy_timeout(st->db, 5000);
    if (exec(st, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") < 0 ||
        exec(st, "PRAGMA foreign_keys=ON") < 0 ||
        /* Checkpoint every ~32 MiB of WAL instead of 4: hot pages (the work
         * queue's) are copied back once per checkpoint, not per commit. */
        exec(st, "PRAGMA wal_autocheckpoint=8000") < 0) {
        al_store_close(st);
        return -EIO;
    }
    int64_t have = user_version(st);
    if (have > (int64_t) AL_ELEMENTSOF(migrations)) {
        al_log(AL_ERROR, "store.schema_too_new", AL_I64("have", have), AL_I64("know", AL_ELEMENTSOF(migrations)));
        al_store_close(st);
        return -EPROTO;
    }
    for (int64_t v = have; v < (int64_t) AL_ELEMENTSOF(migrations); v++) {
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%lld", (long long) v + 1);
        if (exec(st, "BEGIN IMMEDIATE") < 0 || exec(st, migrations[v]) < 0 || exec(st, pragma) < 0 ||
            exec(st, "COMMIT") < 0) {
            (void) exec(st, "ROLLBACK");
            al_store_close(st);
            return -EIO;
        }
        al_log(AL_INFO, "store.migrated", AL_I64("version", v + 1));
    }
    *ret = st;
    return 0;
}

struct al_store *al_store_close(struct al_store *st)
{
    if (!st)
        return NULL;
    for (size_t i = 0; i < st->ncache; i++)
        sqlite3_finalize(st->cache[i].st);
    sqlite3_close(st->db);
    free(st);
    return NULL;
}

int64_t al_store_schema_version(struct al_store *st) { return user_version(st); }

/* The outermost level is a real transaction; inner levels are savepoints,
 * so an inner rollback undoes only its own writes. SQLite resolves the one
 * name "sp" to the innermost savepoint. */
int al_store_begin(struct al_store *st)
{
    int rc = sqlite3_step(stmt(st, st->depth == 0 ? "BEGIN IMMEDIATE" : "SAVEPOINT sp"));
    if (rc != SQLITE_DONE)
        return sqlerr(st, rc, "begin");
    st->depth++;
    return 0;
}

int al_store_commit(struct al_store *st)
{
    if (st->depth == 0)
        return -EINVAL;
    int rc = sqlite3_step(stmt(st, --st->depth == 0 ? "COMMIT" : "RELEASE sp"));
    if (rc != SQLITE_DONE) {
        int e = sqlerr(st, rc, "commit");
        if (st->depth == 0) {
            (void) sqlite3_step(stmt(st, "ROLLBACK"));
        } else {
            (void) sqlite3_step(stmt(st, "ROLLBACK TO sp"));
            (void) sqlite3_step(stmt(st, "RELEASE sp"));
        }
        return e;
    }
    return 0;
}

void al_store_rollback(struct al_store *st)
{
    if (st->depth == 0)
        return;   /* the begin failed: there is nothing to undo */
    if (--st->depth == 0) {
        (void) sqlite3_step(stmt(st, "ROLLBACK"));
        return;
    }
    (void) sqlite3_step(stmt(st, "ROLLBACK TO sp"));
    (void) sqlite3_step(stmt(st, "RELEASE sp"));
}

bool al_store_in_transaction(const struct al_store *st)
{
    return st->depth > 0;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t jtime(json_t *o, const char *k)
{
    int64_t us = 0;
    const char *s = jstr(o, k);
    if (s && al_rfc3339_parse(s, &us) < 0)
        us = 0;
    return us;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

/* The derived columns of one object. */
struct cols {
    const char *parent, *ref, *status, *hash;
    int64_t ref_version, created_us, t1, t2;
    bool archived;
};

static void derive(enum al_kind k, json_t *b, struct cols *c)
{
    *c = (struct cols){ 0 };
    c->created_us = jtime(b, "created_at");
    c->archived = json_is_string(json_object_get(b, "archived_at"));
    switch (k) {
    case AL_KIND_SESSION: {
        json_t *agent = json_object_get(b, "agent");
        c->parent = jstr(b, "environment_id");
        c->ref = jstr(agent, "id");
        c->ref_version = json_integer_value(json_object_get(agent, "version"));
        c->status = jstr(b, "status");
        break;
    }
    case AL_KIND_WORK:
        c->parent = jstr(b, "environment_id");
        c->ref = jstr(json_object_get(b, "data"), "id");
        c->status = jstr(b, "state");
        c->t1 = json_integer_value(json_object_get(b, "_delivered_us"));
        c->t2 = json_integer_value(json_object_get(b, "_lease_expires_us"));
        break;
    case AL_KIND_SKILL_VERSION:
        c->parent = jstr(b, "skill_id");
        break;
    case AL_KIND_CREDENTIAL:
        c->parent = jstr(b, "environment_id");
        c->ref = jstr(b, "session_id");
        c->hash = jstr(b, "_hash");
        c->status = jstr(b, "kind");
        c->archived = json_is_string(json_object_get(b, "revoked_at"));
        break;
    case AL_KIND_TUNNEL:
        c->hash = jstr(b, "hostname");
        break;
    case AL_KIND_TUNNEL_CERT:
        c->parent = jstr(b, "tunnel_id");
        c->status = c->archived ? "archived" : "active";
        break;
    default:
        break;
    }
}

int al_store_put(struct al_store *st, enum al_kind k, const char *id, int64_t version, json_t *body)
{
    static const char sql[] =
        "INSERT INTO objects (kind, id, version, parent, ref, ref_version, status, created_us, archived,"
        " hash, t1, t2, body) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"
        " ON CONFLICT (kind, id, version) DO UPDATE SET parent=?4, ref=?5, ref_version=?6, status=?7,"
        " created_us=?8, archived=?9, hash=?10, t1=?11, t2=?12, body=?13";
    struct cols c;
    derive(k, body, &c);
    _cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);
    sqlite3_stmt *s = stmt(st, sql);

    sqlite3_bind_int(s, 1, (int) k);
    bind_text(s, 2, id);
    sqlite3_bind_int64(s, 3, version);
    bind_text(s, 4, c.parent);
    bind_text(s, 5, c.ref);
    sqlite3_bind_int64(s, 6, c.ref_version);
    bind_text(s, 7, c.status);
    sqlite3_bind_int64(s, 8, c.created_us);
    sqlite3_bind_int(s, 9, c.archived);
    bind_text(s, 10, c.hash);
    sqlite3_bind_int64(s, 11, c.t1);
    sqlite3_bind_int64(s, 12, c.t2);
    sqlite3_bind_text(s, 13, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : sqlerr(st, rc, "put");
}

static int row_json(sqlite3_stmt *s, int col, json_t **ret)
{
    json_error_t err;
    const char *text = (const char *) sqlite3_column_text(s, col);
    json_t *j = text ? json_loads(text, 0, &err) : NULL;
    if (!j)
        return -EBADMSG;
    *ret = j;
    return 0;
}

/* Steps s once: the JSON body in column 0 of its row, or -ENOENT. */
static int one_row(struct al_store *st, sqlite3_stmt *s, json_t **ret, const char *what)
{
    int rc = sqlite3_step(s);
    int r = rc == SQLITE_ROW ? row_json(s, 0, ret) : rc == SQLITE_DONE ? -ENOENT : sqlerr(st, rc, what);
    sqlite3_reset(s);
    return r;
}

int al_store_get(struct al_store *st, enum al_kind k, const char *id, int64_t version, json_t **ret)
{
    static const char sql_v[] = "SELECT body FROM objects WHERE kind=?1 AND id=?2 AND version=?3";
    static const char sql_latest[] = "SELECT body FROM objects WHERE kind=?1 AND id=?2 ORDER BY version DESC LIMIT 1";
    sqlite3_stmt *s = stmt(st, k == AL_KIND_AGENT && version == 0 ? sql_latest : sql_v);

    sqlite3_bind_int(s, 1, (int) k);
    bind_text(s, 2, id);
    sqlite3_bind_int64(s, 3, version);
    return one_row(st, s, ret, "get");
}

int al_store_delete(struct al_store *st, enum al_kind k, const char *id)
{
    sqlite3_stmt *s = stmt(st, "DELETE FROM objects WHERE kind=?1 AND id=?2");
    sqlite3_bind_int(s, 1, (int) k);
    bind_text(s, 2, id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return sqlerr(st, rc, "delete");
    return sqlite3_changes(st->db) > 0 ? 0 : -ENOENT;
}

/* Appends rows of a (seq, body) statement to out, up to limit; sets the
 * cursor when one more row exists. */
static int collect(struct al_store *st, sqlite3_stmt *s, int limit, json_t *out, int64_t *ret_next)
{
    int n = 0, rc;
    int64_t last = 0;

    *ret_next = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == limit) {
            *ret_next = last;
            break;
        }
        json_t *j;
        last = sqlite3_column_int64(s, 0);
        if (row_json(s, 1, &j) == 0)
            json_array_append_new(out, j);
        n++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sqlerr(st, rc, "list");
    return 0;
}

/* A list query built from optional filters: the SQL text and its bound
 * values grow together, so a filter is one call. */
struct sqlq {
    char sql[1024];
    size_t len;
    struct {
        const char *text;   /* NULL: an integer */
        int64_t i;
    } binds[48];
    int n;
    bool overflow;
};

static void q_sql(struct sqlq *q, const char *text)
{
    size_t n = strlen(text);
    if (q->len + n >= sizeof(q->sql)) {
        q->overflow = true;
        return;
    }
    memcpy(q->sql + q->len, text, n + 1);
    q->len += n;
}

static void q_bind(struct sqlq *q, const char *text, int64_t i)
{
    if (q->n == (int) AL_ELEMENTSOF(q->binds)) {
        q->overflow = true;
        return;
    }
    q->binds[q->n].text = text;
    q->binds[q->n].i = i;
    q->n++;
}

/* " AND <clause>" with one integer bound, when v is set (non-zero). */
static void q_int(struct sqlq *q, const char *clause, int64_t v)
{
    if (!v)
        return;
    q_sql(q, clause);
    q_bind(q, NULL, v);
}

static void q_text(struct sqlq *q, const char *clause, const char *v)
{
    if (!v)
        return;
    q_sql(q, clause);
    q_bind(q, v, 0);
}

/* " AND col IN (?,...)" for a NULL-terminated list of at most max values,
 * when there is one. */
static void q_in(struct sqlq *q, const char *col, const char *const *values, size_t max)
{
    size_t n = 0;
    while (values && values[n])
        n++;
    if (n > max)
        q->overflow = true;
    if (n == 0 || n > max)
        return;
    q_sql(q, " AND ");
    q_sql(q, col);
    q_sql(q, " IN (");
    for (size_t k = 0; values[k]; k++) {
        q_sql(q, k ? ",?" : "?");
        q_bind(q, values[k], 0);
    }
    q_sql(q, ")");
}

/* Runs q (which selects seq, body) with LIMIT limit + 1 and collects. */
static int q_run(struct al_store *st, struct sqlq *q, bool desc, int limit, json_t *out, int64_t *ret_next)
{
    sqlite3_stmt *s = NULL;

    q_sql(q, desc ? " ORDER BY seq DESC LIMIT ?" : " ORDER BY seq ASC LIMIT ?");
    q_bind(q, NULL, (int64_t) limit + 1);
    if (q->overflow)
        return -E2BIG;
    if (sqlite3_prepare_v2(st->db, q->sql, -1, &s, NULL) != SQLITE_OK)
        return sqlerr(st, sqlite3_errcode(st->db), "list.prepare");
    for (int i = 0; i < q->n; i++)
        if (q->binds[i].text)
            bind_text(s, i + 1, q->binds[i].text);
        else
            sqlite3_bind_int64(s, i + 1, q->binds[i].i);
    int r = collect(st, s, limit, out, ret_next);
    sqlite3_finalize(s);
    return r;
}

int al_store_list(struct al_store *st, const struct al_list_query *q, json_t *out, int64_t *ret_next_seq)
{
    struct sqlq b = { .len = 0 };

    q_sql(&b, "SELECT seq, body FROM objects o WHERE kind=?");
    q_bind(&b, NULL, (int64_t) q->kind);
    q_int(&b, q->desc ? " AND seq < ?" : " AND seq > ?", q->after_seq);
    if (!q->include_archived)
        q_sql(&b, " AND archived=0");
    q_text(&b, " AND parent=?", q->parent);
    q_text(&b, " AND ref=?", q->agent_id);
    q_int(&b, " AND ref_version=?", q->agent_version);
    q_in(&b, "status", q->statuses, 16);
    q_int(&b, " AND created_us > ?", q->created_gt);
    q_int(&b, " AND created_us >= ?", q->created_gte);
    q_int(&b, " AND created_us < ?", q->created_lt);
    q_int(&b, " AND created_us <= ?", q->created_lte);
    if (q->latest_only)
        q_sql(&b, " AND version = (SELECT MAX(version) FROM objects p WHERE p.kind=o.kind AND p.id=o.id)");
    return q_run(st, &b, q->desc, q->limit, out, ret_next_seq);
}

int64_t al_store_count(struct al_store *st, enum al_kind k, const char *parent, const char *state)
{
    sqlite3_stmt *s = stmt(st, "SELECT COUNT(*) FROM objects WHERE kind=?1 AND parent=?2 AND status=?3");
    sqlite3_bind_int(s, 1, (int) k);
    bind_text(s, 2, parent);
    bind_text(s, 3, state);
    int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return n;
}

int al_store_blob_put(struct al_store *st, const char *id, const void *data, size_t n)
{
    sqlite3_stmt *s = stmt(st, "INSERT OR REPLACE INTO blobs (id, data) VALUES (?1, ?2)");
    bind_text(s, 1, id);
    sqlite3_bind_blob64(s, 2, data, n, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : sqlerr(st, rc, "blob_put");
}

int al_store_blob_get(struct al_store *st, const char *id, void **ret, size_t *ret_n)
{
    sqlite3_stmt *s = stmt(st, "SELECT data FROM blobs WHERE id=?1");
    bind_text(s, 1, id);
    int rc = sqlite3_step(s), r = 0;
    if (rc == SQLITE_ROW) {
        size_t n = (size_t) sqlite3_column_bytes(s, 0);
        void *p = al_xmalloc(n);
        if (n)
            memcpy(p, sqlite3_column_blob(s, 0), n);
        *ret = p;
        *ret_n = n;
    } else
        r = rc == SQLITE_DONE ? -ENOENT : sqlerr(st, rc, "blob_get");
    sqlite3_reset(s);
    return r;
}

int al_store_credential_by_hash(struct al_store *st, const char *hash_hex, json_t **ret)
{
    sqlite3_stmt *s = stmt(st, "SELECT body FROM objects WHERE kind=?1 AND hash=?2");
    sqlite3_bind_int(s, 1, AL_KIND_CREDENTIAL);
    bind_text(s, 2, hash_hex);
    return one_row(st, s, ret, "cred");
}

int al_store_get_by_hash(struct al_store *st, enum al_kind k, const char *hash, json_t **ret)
{
    sqlite3_stmt *s = stmt(st, "SELECT body FROM objects WHERE kind=?1 AND hash=?2 LIMIT 1");
    sqlite3_bind_int(s, 1, (int) k);
    bind_text(s, 2, hash);
    return one_row(st, s, ret, "get_by_hash");
}

int al_store_event_append(struct al_store *st, const char *session_id, json_t *ev, int64_t *ret_seq)
{
    sqlite3_stmt *s = stmt(st, "INSERT INTO events (id, session_id, type, processed_us, tool_use_id, body)"
                               " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    const char *tu = jstr(ev, "tool_use_id");
    if (!tu)
        tu = jstr(ev, "custom_tool_use_id");
    if (!tu)
        tu = jstr(ev, "mcp_tool_use_id");
    _cleanup_free_ char *text = json_dumps(ev, JSON_COMPACT);

    bind_text(s, 1, jstr(ev, "id"));
    bind_text(s, 2, session_id);
    bind_text(s, 3, jstr(ev, "type"));
    sqlite3_bind_int64(s, 4, jtime(ev, "processed_at"));
    bind_text(s, 5, tu);
    sqlite3_bind_text(s, 6, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return sqlerr(st, rc, "event_append");
    if (ret_seq)
        *ret_seq = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int al_store_event_list(struct al_store *st, const struct al_event_query *q, json_t *out, int64_t *ret_next_seq)
{
    struct sqlq b = { .len = 0 };

    q_sql(&b, "SELECT seq, body FROM events WHERE session_id=?");
    q_bind(&b, q->session_id, 0);
    q_int(&b, q->desc ? " AND seq < ?" : " AND seq > ?", q->after_seq);
    q_in(&b, "type", q->types, 32);
    q_int(&b, " AND processed_us > ?", q->created_gt);
    q_int(&b, " AND processed_us >= ?", q->created_gte);
    q_int(&b, " AND processed_us < ?", q->created_lt);
    q_int(&b, " AND processed_us <= ?", q->created_lte);
    return q_run(st, &b, q->desc, q->limit, out, ret_next_seq);
}

int al_store_event_by_tool_use(struct al_store *st, const char *session_id, const char *type,
                               const char *tool_use_id, json_t **ret)
{
    sqlite3_stmt *s = stmt(st, "SELECT body FROM events WHERE session_id=?1 AND tool_use_id=?2 AND type=?3"
                               " ORDER BY seq DESC LIMIT 1");
    bind_text(s, 1, session_id);
    bind_text(s, 2, tool_use_id);
    bind_text(s, 3, type);
    return one_row(st, s, ret, "event_tool");
}

int al_store_event_by_id(struct al_store *st, const char *session_id, const char *event_id, json_t **ret)
{
    sqlite3_stmt *s = stmt(st, "SELECT body FROM events WHERE id=?1 AND session_id=?2");
    bind_text(s, 1, event_id);
    bind_text(s, 2, session_id);
    return one_row(st, s, ret, "event_id");
}

static int collect_all(struct al_store *st, sqlite3_stmt *s, json_t *out)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *j;
        if (row_json(s, 0, &j) == 0)
            json_array_append_new(out, j);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : sqlerr(st, rc, "scan");
}

int al_store_event_turn(struct al_store *st, const char *session_id, json_t *out)
{
    sqlite3_stmt *s = stmt(st, "SELECT body FROM events WHERE session_id=?1 AND seq >= (SELECT MAX(seq) FROM events"
                               " WHERE session_id=?1 AND type='user.message') ORDER BY seq");
    bind_text(s, 1, session_id);
    return collect_all(st, s, out);
}

int al_store_event_delete_session(struct al_store *st, const char *session_id)
{
    sqlite3_stmt *s = stmt(st, "DELETE FROM events WHERE session_id=?1");
    bind_text(s, 1, session_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : sqlerr(st, rc, "event_delete");
}

int al_store_work_next(struct al_store *st, const char *env_id, int64_t reclaim_before_us, json_t **ret)
{
    sqlite3_stmt *s = stmt(st, "SELECT body FROM objects WHERE kind=?1 AND parent=?2 AND status='queued'"
                               " AND (t1=0 OR t1<?3) ORDER BY seq LIMIT 1");
    sqlite3_bind_int(s, 1, AL_KIND_WORK);
    bind_text(s, 2, env_id);
    sqlite3_bind_int64(s, 3, reclaim_before_us);
    return one_row(st, s, ret, "work_next");
}

int al_store_work_expired(struct al_store *st, int64_t now_us, json_t *out)
{
    sqlite3_stmt *s = stmt(st, "SELECT body FROM objects WHERE kind=?1 AND status IN ('starting','active','stopping')"
                               " AND t2>0 AND t2<?2");
    sqlite3_bind_int(s, 1, AL_KIND_WORK);
    sqlite3_bind_int64(s, 2, now_us);
    return collect_all(st, s, out);
}

int al_store_work_stats(struct al_store *st, const char *env_id, int64_t pending_since_us, struct al_work_stats *ret)
{
    sqlite3_stmt *s = stmt(st, "SELECT COUNT(*), COALESCE(SUM(t1 <> 0 AND t1 >= ?3), 0), COALESCE(MIN(created_us), 0)"
                               " FROM objects WHERE kind=?1 AND parent=?2 AND status='queued'");
    sqlite3_bind_int(s, 1, AL_KIND_WORK);
    bind_text(s, 2, env_id);
    sqlite3_bind_int64(s, 3, pending_since_us);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        ret->pending = sqlite3_column_int64(s, 1);
        ret->depth = sqlite3_column_int64(s, 0) - ret->pending;
        ret->oldest_us = sqlite3_column_int64(s, 2);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : sqlerr(st, rc, "work_stats");
}

int al_store_work_for_session(struct al_store *st, const char *session_id, json_t **ret)
{
    sqlite3_stmt *s = stmt(st, "SELECT body FROM objects WHERE kind=?1 AND ref=?2 AND status<>'stopped'"
                               " ORDER BY seq DESC LIMIT 1");
    sqlite3_bind_int(s, 1, AL_KIND_WORK);
    bind_text(s, 2, session_id);
    return one_row(st, s, ret, "work_sess");
}

int al_store_sessions_running(struct al_store *st, json_t *out)
{
    sqlite3_stmt *s = stmt(st, "SELECT body FROM objects WHERE kind=?1 AND status='running'");
    sqlite3_bind_int(s, 1, AL_KIND_SESSION);
    return collect_all(st, s, out);
}
