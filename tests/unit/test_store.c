/* SPDX-License-Identifier: Apache-2.0 */
/* store/sqlite: the store.h contract on a real database file in a private
 * mkdtemp directory: migrations, objects, lists and their cursors and
 * filters, transactions, events, the work-queue helpers, and durability
 * across close and reopen. */
#include <sqlite3.h>
#include <sys/stat.h>

#include "al_test.h"

#include "lib/base/log.h"
#include "lib/base/util.h"
#include "lib/store/store.h"

struct fixture {
    char dir[256];
    char path[300];
    struct al_store *st;
};

static int setup(void **state)
{
    struct fixture *f = al_xcalloc(1, sizeof(*f));
    al_log_setup("test", AL_WARN, 2);
    al_test_mkdtemp(f->dir);
    snprintf(f->path, sizeof(f->path), "%s/hub.db", f->dir);
    int r = al_store_open(f->path, false, &f->st);
    if (r < 0) {
        print_error("al_store_open: %d\n", r);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    f->st = al_store_close(f->st);
    al_test_rm_rf(f->dir);
    free(f);
    return 0;
}

static void reopen(struct fixture *f)
{
    assert_null(al_store_close(f->st));
    f->st = NULL;
    ASSERT_OK(al_store_open(f->path, true, &f->st));
}

/* Compares JSON by value and prints both on a mismatch. */
static void assert_json_eq(json_t *got, json_t *want)
{
    if (!json_equal(got, want)) {
        _cleanup_free_ char *a = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        _cleanup_free_ char *b = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("json: %s != %s\n", a ? a : "(null)", b);
        fail();
    }
}

/* The "id" fields of an array of objects, joined with ','. */
static char *ids(json_t *arr)
{
    char buf[1024] = "";
    size_t o = 0, i;
    json_t *v;
    json_array_foreach(arr, i, v)
        o += (size_t) snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "," : "",
                               json_string_value(json_object_get(v, "id")));
    return al_xstrdup(buf);
}

#define ASSERT_IDS(arr, want)                          \
    do {                                               \
        _cleanup_free_ char *al__ids = ids(arr);       \
        ASSERT_STR_EQ(al__ids, want);                  \
    } while (0)

static int cmp_by_id(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *) a, "id")),
                  json_string_value(json_object_get(*(json_t *const *) b, "id")));
}

/* For results whose order the contract leaves open: compare as sets. */
static char *ids_sorted(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t *items[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(arr, i);
    qsort(items, n, sizeof(items[0]), cmp_by_id);
    json_t *sorted = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(sorted, items[i]);
    char *s = ids(sorted);
    json_decref(sorted);
    return s;
}

#define ASSERT_ID_SET(arr, want)                       \
    do {                                               \
        _cleanup_free_ char *al__ids = ids_sorted(arr); \
        ASSERT_STR_EQ(al__ids, want);                  \
    } while (0)

static void put(struct fixture *f, enum al_kind k, const char *id, int64_t version, json_t *body)
{
    int r = al_store_put(f->st, k, id, version, body);
    json_decref(body);
    ASSERT_OK(r);
}

static void test_migrations(void **state)
{
    struct fixture *f = *state;
    struct stat sb;

    ASSERT_I64_EQ(al_store_schema_version(f->st), 2);
    ASSERT_OK(stat(f->path, &sb));

    /* The store holds the database exclusively: a second store (a second
     * hub on the same data directory) is refused. */
    struct al_store *other = NULL;
    ASSERT_RET(al_store_open(f->path, false, &other), -EBUSY);
    assert_null(other);

    /* WAL mode is persistent in the file: check it from outside, once the
     * store has let go of it. */
    f->st = al_store_close(f->st);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    ASSERT_STR_EQ((const char *) sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    /* Reopening does not migrate twice (it would fail on CREATE TABLE). */
    reopen(f);
    ASSERT_I64_EQ(al_store_schema_version(f->st), 2);

    /* A version-1 database is brought up to date: migration 2 adds the
     * lease index. */
    f->st = al_store_close(f->st);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DROP INDEX objects_lease; PRAGMA user_version=1", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    reopen(f);
    ASSERT_I64_EQ(al_store_schema_version(f->st), 2);
    f->st = al_store_close(f->st);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='index' AND name='objects_lease'",
                                        -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    reopen(f);

    /* A database from a newer airlock is refused, not downgraded. */
    f->st = al_store_close(f->st);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    struct al_store *st = NULL;
    ASSERT_RET(al_store_open(f->path, false, &st), -EPROTO);
    assert_null(st);

    /* A path that cannot be created fails cleanly. */
    char bad[320];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/hub.db", f->dir);
    assert_true(al_store_open(bad, false, &st) < 0);
    assert_null(st);
}

static void test_put_get_delete(void **state)
{
    struct fixture *f = *state;
    json_t *got = NULL;

    json_t *env = json_pack("{s:s, s:s, s:s, s:{s:s}}", "id", "env_1", "name", "first", "created_at",
                            "2026-01-01T00:00:00Z", "metadata", "k", "v");
    ASSERT_OK(al_store_put(f->st, AL_KIND_ENVIRONMENT, "env_1", 0, env));
    ASSERT_OK(al_store_get(f->st, AL_KIND_ENVIRONMENT, "env_1", 0, &got));
    assert_json_eq(got, env);
    json_decref(got);

    /* Kinds are separate namespaces. */
    got = NULL;
    ASSERT_RET(al_store_get(f->st, AL_KIND_AGENT, "env_1", 0, &got), -ENOENT);
    ASSERT_RET(al_store_get(f->st, AL_KIND_ENVIRONMENT, "env_2", 0, &got), -ENOENT);
    assert_null(got);

    /* put replaces in place. */
    json_object_set_new(env, "name", json_string("renamed"));
    ASSERT_OK(al_store_put(f->st, AL_KIND_ENVIRONMENT, "env_1", 0, env));
    ASSERT_OK(al_store_get(f->st, AL_KIND_ENVIRONMENT, "env_1", 0, &got));
    ASSERT_STR_EQ(json_string_value(json_object_get(got, "name")), "renamed");
    json_decref(got);
    json_decref(env);

    /* Agents are versioned; version 0 reads the newest. */
    put(f, AL_KIND_AGENT, "agent_1", 1, json_pack("{s:s, s:i}", "id", "agent_1", "version", 1));
    put(f, AL_KIND_AGENT, "agent_1", 3, json_pack("{s:s, s:i}", "id", "agent_1", "version", 3));
    put(f, AL_KIND_AGENT, "agent_1", 2, json_pack("{s:s, s:i}", "id", "agent_1", "version", 2));
    ASSERT_OK(al_store_get(f->st, AL_KIND_AGENT, "agent_1", 0, &got));
    ASSERT_I64_EQ(json_integer_value(json_object_get(got, "version")), 3);
    json_decref(got);
    ASSERT_OK(al_store_get(f->st, AL_KIND_AGENT, "agent_1", 2, &got));
    ASSERT_I64_EQ(json_integer_value(json_object_get(got, "version")), 2);
    json_decref(got);
    ASSERT_RET(al_store_get(f->st, AL_KIND_AGENT, "agent_1", 4, &got), -ENOENT);

    /* Delete removes every version; a second delete is -ENOENT. */
    ASSERT_OK(al_store_delete(f->st, AL_KIND_AGENT, "agent_1"));
    ASSERT_RET(al_store_get(f->st, AL_KIND_AGENT, "agent_1", 0, &got), -ENOENT);
    ASSERT_RET(al_store_delete(f->st, AL_KIND_AGENT, "agent_1"), -ENOENT);
    ASSERT_OK(al_store_get(f->st, AL_KIND_ENVIRONMENT, "env_1", 0, &got));
    json_decref(got);
}

static void put_env(struct fixture *f, const char *id, const char *created, bool archived)
{
    json_t *b = json_pack("{s:s, s:s}", "id", id, "created_at", created);
    if (archived)
        json_object_set_new(b, "archived_at", json_string("2026-06-01T00:00:00Z"));
    put(f, AL_KIND_ENVIRONMENT, id, 0, b);
}

static void test_list_cursors(void **state)
{
    struct fixture *f = *state;
    int64_t next = -1, next2 = -1;

    for (int i = 1; i <= 5; i++) {
        char id[16], ts[32];
        snprintf(id, sizeof(id), "e%d", i);
        snprintf(ts, sizeof(ts), "2026-01-0%dT00:00:00Z", i);
        put_env(f, id, ts, false);
    }
    /* Rewriting e2 keeps its place in the order. */
    put_env(f, "e2", "2026-01-02T00:00:00Z", false);

    struct al_list_query q = { .kind = AL_KIND_ENVIRONMENT, .limit = 2 };
    json_t *a = json_array();
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e1,e2");
    assert_true(next > 0);

    q.after_seq = next;
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next2));
    ASSERT_IDS(a, "e3,e4");
    assert_true(next2 > next);

    q.after_seq = next2;
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e5");
    ASSERT_I64_EQ(next, 0); /* no more pages */

    /* Exactly limit rows left: no cursor either. */
    q = (struct al_list_query){ .kind = AL_KIND_ENVIRONMENT, .limit = 5 };
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e1,e2,e3,e4,e5");
    ASSERT_I64_EQ(next, 0);

    /* Descending pages. */
    q = (struct al_list_query){ .kind = AL_KIND_ENVIRONMENT, .limit = 2, .desc = true };
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e5,e4");
    q.after_seq = next;
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e3,e2");
    q.after_seq = next;
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e1");
    ASSERT_I64_EQ(next, 0);

    /* created_at filters, in µs. */
    int64_t jan3 = 0;
    ASSERT_OK(al_rfc3339_parse("2026-01-03T00:00:00Z", &jan3));
    q = (struct al_list_query){ .kind = AL_KIND_ENVIRONMENT, .limit = 10, .created_gt = jan3 };
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e4,e5");
    q = (struct al_list_query){ .kind = AL_KIND_ENVIRONMENT, .limit = 10, .created_gte = jan3 };
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e3,e4,e5");
    q = (struct al_list_query){ .kind = AL_KIND_ENVIRONMENT, .limit = 10, .created_lt = jan3 };
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e1,e2");
    q = (struct al_list_query){ .kind = AL_KIND_ENVIRONMENT, .limit = 10, .created_lte = jan3, .created_gt = jan3 - 86400000000 };
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e3");

    /* Archived objects are hidden unless asked for. */
    put_env(f, "e3", "2026-01-03T00:00:00Z", true);
    q = (struct al_list_query){ .kind = AL_KIND_ENVIRONMENT, .limit = 10 };
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e1,e2,e4,e5");
    q.include_archived = true;
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "e1,e2,e3,e4,e5");

    /* Other kinds do not show up. */
    q = (struct al_list_query){ .kind = AL_KIND_SKILL, .limit = 10 };
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_I64_EQ(json_array_size(a), 0);
    ASSERT_I64_EQ(next, 0);
    json_decref(a);
}

static void put_session(struct fixture *f, const char *id, const char *env, const char *agent, int ver,
                        const char *status)
{
    put(f, AL_KIND_SESSION, id, 0,
        json_pack("{s:s, s:s, s:{s:s, s:i}, s:s, s:s}", "id", id, "environment_id", env, "agent", "id", agent,
                  "version", ver, "status", status, "created_at", "2026-02-01T00:00:00Z"));
}

static void test_list_filters(void **state)
{
    struct fixture *f = *state;
    int64_t next;
    json_t *a = json_array();

    put_session(f, "s1", "env_a", "agent_x", 1, "idle");
    put_session(f, "s2", "env_a", "agent_x", 2, "running");
    put_session(f, "s3", "env_b", "agent_x", 2, "idle");
    put_session(f, "s4", "env_a", "agent_y", 1, "terminated");
    put_session(f, "s5", "env_a", "agent_x", 2, "rescheduling");

    struct al_list_query q = { .kind = AL_KIND_SESSION, .limit = 10, .parent = "env_a" };
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "s1,s2,s4,s5");

    q.agent_id = "agent_x";
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "s1,s2,s5");

    q.agent_version = 2;
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "s2,s5");

    static const char *const st_running[] = { "running", "idle", NULL };
    q = (struct al_list_query){ .kind = AL_KIND_SESSION, .limit = 10, .statuses = st_running };
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "s1,s2,s3");

    /* Filters combine with the cursor. */
    q.limit = 1;
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "s1");
    q.after_seq = next;
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "s2");
    q.after_seq = next;
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "s3");
    ASSERT_I64_EQ(next, 0);

    /* Too many statuses is refused rather than building huge SQL. */
    const char *many[18];
    for (int i = 0; i < 17; i++)
        many[i] = "idle";
    many[17] = NULL;
    q = (struct al_list_query){ .kind = AL_KIND_SESSION, .limit = 10, .statuses = many };
    ASSERT_RET(al_store_list(f->st, &q, a, &next), -E2BIG);

    ASSERT_I64_EQ(al_store_count(f->st, AL_KIND_SESSION, "env_a", "idle"), 1);
    ASSERT_I64_EQ(al_store_count(f->st, AL_KIND_SESSION, "env_a", "running"), 1);
    ASSERT_I64_EQ(al_store_count(f->st, AL_KIND_SESSION, "env_c", "idle"), 0);

    json_array_clear(a);
    ASSERT_OK(al_store_sessions_running(f->st, a));
    ASSERT_IDS(a, "s2");

    /* latest_only: one row per agent, its newest version. */
    put(f, AL_KIND_AGENT, "ag1", 1, json_pack("{s:s, s:i}", "id", "ag1", "version", 1));
    put(f, AL_KIND_AGENT, "ag2", 1, json_pack("{s:s, s:i}", "id", "ag2", "version", 1));
    put(f, AL_KIND_AGENT, "ag1", 2, json_pack("{s:s, s:i}", "id", "ag1", "version", 2));
    q = (struct al_list_query){ .kind = AL_KIND_AGENT, .limit = 10, .latest_only = true };
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ag2,ag1");
    ASSERT_I64_EQ(json_integer_value(json_object_get(json_array_get(a, 1), "version")), 2);
    q.latest_only = false;
    json_array_clear(a);
    ASSERT_OK(al_store_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ag1,ag2,ag1");
    json_decref(a);
}

static void test_transactions(void **state)
{
    struct fixture *f = *state;
    json_t *got = NULL;

    /* Rolled back: gone. */
    ASSERT_OK(al_store_begin(f->st));
    put_env(f, "t1", "2026-01-01T00:00:00Z", false);
    ASSERT_OK(al_store_get(f->st, AL_KIND_ENVIRONMENT, "t1", 0, &got)); /* visible inside */
    json_decref(got);
    al_store_rollback(f->st);
    ASSERT_RET(al_store_get(f->st, AL_KIND_ENVIRONMENT, "t1", 0, &got), -ENOENT);

    /* Committed: there, also after reopening. */
    ASSERT_OK(al_store_begin(f->st));
    put_env(f, "t2", "2026-01-01T00:00:00Z", false);
    ASSERT_OK(al_store_commit(f->st));

    /* Nested: only the outermost commit writes... */
    ASSERT_OK(al_store_begin(f->st));
    ASSERT_OK(al_store_begin(f->st));
    put_env(f, "t3", "2026-01-01T00:00:00Z", false);
    ASSERT_OK(al_store_commit(f->st));
    al_store_rollback(f->st);
    ASSERT_RET(al_store_get(f->st, AL_KIND_ENVIRONMENT, "t3", 0, &got), -ENOENT);

    /* ...and an inner rollback undoes only the inner level (a savepoint):
     * the outer transaction still commits its own writes. */
    ASSERT_OK(al_store_begin(f->st));
    put_env(f, "t4", "2026-01-01T00:00:00Z", false);
    ASSERT_OK(al_store_begin(f->st));
    put_env(f, "t5", "2026-01-01T00:00:00Z", false);
    al_store_rollback(f->st);
    ASSERT_RET(al_store_get(f->st, AL_KIND_ENVIRONMENT, "t5", 0, &got), -ENOENT);
    ASSERT_OK(al_store_commit(f->st));
    ASSERT_OK(al_store_get(f->st, AL_KIND_ENVIRONMENT, "t4", 0, &got));
    json_decref(got);
    ASSERT_RET(al_store_get(f->st, AL_KIND_ENVIRONMENT, "t5", 0, &got), -ENOENT);

    /* A failed statement is reported to its caller, who decides: here a
     * duplicate event id (UNIQUE) inside an inner level that is rolled
     * back, while the outer write commits. */
    json_t *ev = json_pack("{s:s, s:s, s:s}", "id", "sevt_dup", "type", "user.message", "processed_at",
                           "2026-01-01T00:00:00Z");
    ASSERT_OK(al_store_event_append(f->st, "sesn_1", ev, NULL));
    ASSERT_OK(al_store_begin(f->st));
    put_env(f, "t6", "2026-01-01T00:00:00Z", false);
    ASSERT_OK(al_store_begin(f->st));
    assert_true(al_store_event_append(f->st, "sesn_1", ev, NULL) < 0);
    al_store_rollback(f->st);
    ASSERT_OK(al_store_commit(f->st));
    ASSERT_OK(al_store_get(f->st, AL_KIND_ENVIRONMENT, "t6", 0, &got));
    json_decref(got);
    json_decref(ev);
    assert_false(al_store_in_transaction(f->st));
    assert_true(al_store_commit(f->st) < 0);   /* a commit without a begin is refused */

    /* The store is usable afterwards. */
    ASSERT_OK(al_store_begin(f->st));
    put_env(f, "t7", "2026-01-01T00:00:00Z", false);
    ASSERT_OK(al_store_commit(f->st));

    reopen(f);
    ASSERT_OK(al_store_get(f->st, AL_KIND_ENVIRONMENT, "t2", 0, &got));
    json_decref(got);
    ASSERT_OK(al_store_get(f->st, AL_KIND_ENVIRONMENT, "t7", 0, &got));
    json_decref(got);
    ASSERT_RET(al_store_get(f->st, AL_KIND_ENVIRONMENT, "t1", 0, &got), -ENOENT);
}

static void append(struct fixture *f, const char *session, const char *id, const char *type, const char *ts,
                   const char *tool_key, const char *tool_use_id, int64_t *seq)
{
    json_t *ev = json_pack("{s:s, s:s, s:s}", "id", id, "type", type, "processed_at", ts);
    if (tool_key)
        json_object_set_new(ev, tool_key, json_string(tool_use_id));
    int r = al_store_event_append(f->st, session, ev, seq);
    json_decref(ev);
    ASSERT_OK(r);
}

static void test_events(void **state)
{
    struct fixture *f = *state;
    int64_t seq[6], next;
    json_t *a = json_array();

    append(f, "S", "ev1", "user.message", "2026-03-01T00:00:01Z", NULL, NULL, &seq[0]);
    append(f, "S", "ev2", "agent.tool_use", "2026-03-01T00:00:02Z", NULL, NULL, &seq[1]);
    append(f, "T", "ev3", "user.message", "2026-03-01T00:00:03Z", NULL, NULL, &seq[2]);
    append(f, "S", "ev4", "agent.message", "2026-03-01T00:00:04Z", NULL, NULL, &seq[3]);
    append(f, "S", "ev5", "session.status_idle", "2026-03-01T00:00:05Z", NULL, NULL, &seq[4]);
    append(f, "S", "ev6", "agent.message", "2026-03-01T00:00:06Z", NULL, NULL, &seq[5]);
    for (int i = 1; i < 6; i++)
        assert_true(seq[i] > seq[i - 1]);

    struct al_event_query q = { .session_id = "S", .limit = 100 };
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev1,ev2,ev4,ev5,ev6");
    ASSERT_I64_EQ(next, 0);

    q.desc = true;
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev6,ev5,ev4,ev2,ev1");

    /* Ascending pages with the cursor... */
    q = (struct al_event_query){ .session_id = "S", .limit = 2 };
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev1,ev2");
    ASSERT_I64_EQ(next, seq[1]);
    q.after_seq = next;
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev4,ev5");
    q.after_seq = next;
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev6");
    ASSERT_I64_EQ(next, 0);

    /* ...and descending ones (after_seq is "before" there). */
    q = (struct al_event_query){ .session_id = "S", .limit = 2, .desc = true, .after_seq = seq[4] };
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev4,ev2");
    ASSERT_I64_EQ(next, seq[1]);

    /* The types filter, alone and with a cursor. */
    static const char *const types[] = { "agent.message", "user.message", NULL };
    q = (struct al_event_query){ .session_id = "S", .limit = 100, .types = types };
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev1,ev4,ev6");
    q.limit = 1;
    q.after_seq = seq[0];
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev4");
    ASSERT_I64_EQ(next, seq[3]);
    static const char *const none[] = { "no.such.type", NULL };
    q = (struct al_event_query){ .session_id = "S", .limit = 100, .types = none };
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_I64_EQ(json_array_size(a), 0);

    /* Time filters use processed_at. */
    int64_t t4 = 0;
    ASSERT_OK(al_rfc3339_parse("2026-03-01T00:00:04Z", &t4));
    q = (struct al_event_query){ .session_id = "S", .limit = 100, .created_gte = t4 };
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev4,ev5,ev6");
    q = (struct al_event_query){ .session_id = "S", .limit = 100, .created_lt = t4 };
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev1,ev2");

    /* Bodies come back whole. */
    json_t *one = json_array_get(a, 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(one, "type")), "user.message");
    ASSERT_STR_EQ(json_string_value(json_object_get(one, "processed_at")), "2026-03-01T00:00:01Z");

    /* Deleting a session's events leaves the others. */
    ASSERT_OK(al_store_event_delete_session(f->st, "S"));
    q = (struct al_event_query){ .session_id = "S", .limit = 100 };
    json_array_clear(a);
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_I64_EQ(json_array_size(a), 0);
    q.session_id = "T";
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev3");
    json_decref(a);
}

static void test_event_by_tool_use(void **state)
{
    struct fixture *f = *state;
    json_t *got = NULL;

    append(f, "S", "u1", "agent.tool_use", "2026-03-01T00:00:01Z", NULL, NULL, NULL);
    append(f, "S", "r1", "user.tool_result", "2026-03-01T00:00:02Z", "tool_use_id", "tu_1", NULL);
    append(f, "S", "r2", "user.tool_result", "2026-03-01T00:00:03Z", "tool_use_id", "tu_1", NULL);
    append(f, "S", "c1", "user.custom_tool_result", "2026-03-01T00:00:04Z", "custom_tool_use_id", "ctu_1", NULL);
    append(f, "S", "m1", "agent.mcp_tool_result", "2026-03-01T00:00:05Z", "mcp_tool_use_id", "mtu_1", NULL);
    append(f, "T", "r3", "user.tool_result", "2026-03-01T00:00:06Z", "tool_use_id", "tu_9", NULL);

    /* The newest answer wins. */
    ASSERT_OK(al_store_event_by_tool_use(f->st, "S", "user.tool_result", "tu_1", &got));
    ASSERT_STR_EQ(json_string_value(json_object_get(got, "id")), "r2");
    json_decref(got);
    ASSERT_OK(al_store_event_by_tool_use(f->st, "S", "user.custom_tool_result", "ctu_1", &got));
    ASSERT_STR_EQ(json_string_value(json_object_get(got, "id")), "c1");
    json_decref(got);
    ASSERT_OK(al_store_event_by_tool_use(f->st, "S", "agent.mcp_tool_result", "mtu_1", &got));
    ASSERT_STR_EQ(json_string_value(json_object_get(got, "id")), "m1");
    json_decref(got);

    got = NULL;
    ASSERT_RET(al_store_event_by_tool_use(f->st, "S", "user.custom_tool_result", "tu_1", &got), -ENOENT);
    ASSERT_RET(al_store_event_by_tool_use(f->st, "S", "user.tool_result", "tu_9", &got), -ENOENT);
    ASSERT_RET(al_store_event_by_tool_use(f->st, "T", "user.tool_result", "tu_1", &got), -ENOENT);
    ASSERT_RET(al_store_event_by_tool_use(f->st, "S", "user.tool_result", "nope", &got), -ENOENT);
    assert_null(got);
}

static void put_work(struct fixture *f, const char *id, const char *env, const char *session, const char *state,
                     int64_t delivered_us, int64_t lease_us)
{
    put(f, AL_KIND_WORK, id, 0,
        json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:I, s:I}", "id", id, "environment_id", env, "state", state,
                  "data", "type", "session", "id", session, "_delivered_us", (json_int_t) delivered_us,
                  "_lease_expires_us", (json_int_t) lease_us));
}

static const char *work_next_id(struct fixture *f, const char *env, int64_t before, char buf[static 64])
{
    json_t *got = NULL;
    int r = al_store_work_next(f->st, env, before, &got);
    if (r == -ENOENT)
        return NULL;
    ASSERT_OK(r);
    snprintf(buf, 64, "%s", json_string_value(json_object_get(got, "id")));
    json_decref(got);
    return buf;
}

static void test_work_queue(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    json_t *got = NULL;

    put_work(f, "w1", "env_a", "s1", "queued", 0, 0);
    put_work(f, "w2", "env_a", "s2", "queued", 0, 0);
    put_work(f, "w3", "env_b", "s3", "queued", 0, 0);

    /* Oldest first, per environment. */
    ASSERT_STR_EQ(work_next_id(f, "env_a", 1000, buf), "w1");
    ASSERT_STR_EQ(work_next_id(f, "env_b", 1000, buf), "w3");
    assert_null(work_next_id(f, "env_c", 1000, buf));

    /* w1 delivered at t=5000 and not acknowledged: skipped while the
     * delivery is fresh, reclaimed once it is older than the cutoff. */
    put_work(f, "w1", "env_a", "s1", "queued", 5000, 0);
    ASSERT_STR_EQ(work_next_id(f, "env_a", 4000, buf), "w2");
    ASSERT_STR_EQ(work_next_id(f, "env_a", 5000, buf), "w2"); /* strictly older */
    ASSERT_STR_EQ(work_next_id(f, "env_a", 5001, buf), "w1");

    /* Both delivered recently: nothing to hand out. */
    put_work(f, "w2", "env_a", "s2", "queued", 6000, 0);
    assert_null(work_next_id(f, "env_a", 4000, buf));
    ASSERT_STR_EQ(work_next_id(f, "env_a", 5500, buf), "w1");

    /* Stats: delivered at or after the cutoff is pending, the rest depth;
     * the oldest is the earliest created_at of all queued items. */
    json_t *dated = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:I}", "id", "w7", "environment_id", "env_d", "state",
                              "queued", "data", "type", "session", "id", "s7", "created_at", "2026-01-02T00:00:00Z",
                              "_delivered_us", (json_int_t) 0);
    put(f, AL_KIND_WORK, "w7", 0, dated);
    struct al_work_stats ws;
    ASSERT_OK(al_store_work_stats(f->st, "env_a", 5500, &ws));
    ASSERT_I64_EQ(ws.pending, 1);   /* w2, delivered at 6000 */
    ASSERT_I64_EQ(ws.depth, 1);     /* w1, delivered at 5000: reclaimable */
    ASSERT_OK(al_store_work_stats(f->st, "env_d", 5500, &ws));
    ASSERT_I64_EQ(ws.depth, 1);
    ASSERT_I64_EQ(ws.pending, 0);
    int64_t want_us;
    ASSERT_OK(al_rfc3339_parse("2026-01-02T00:00:00Z", &want_us));
    ASSERT_I64_EQ(ws.oldest_us, want_us);
    ASSERT_OK(al_store_work_stats(f->st, "env_none", 0, &ws));
    ASSERT_I64_EQ(ws.depth + ws.pending + ws.oldest_us, 0);

    /* Acknowledged items leave the queue. */
    put_work(f, "w1", "env_a", "s1", "active", 5000, 9000);
    put_work(f, "w2", "env_a", "s2", "starting", 6000, 20000);
    assert_null(work_next_id(f, "env_a", INT64_MAX, buf));
    ASSERT_I64_EQ(al_store_count(f->st, AL_KIND_WORK, "env_a", "active"), 1);
    ASSERT_I64_EQ(al_store_count(f->st, AL_KIND_WORK, "env_a", "queued"), 0);

    /* Leases: only live states with an expired lease. */
    put_work(f, "w4", "env_a", "s4", "stopped", 1, 100);
    put_work(f, "w5", "env_b", "s5", "stopping", 1, 9500);
    json_t *a = json_array();
    ASSERT_OK(al_store_work_expired(f->st, 10000, a));
    ASSERT_ID_SET(a, "w1,w5");
    json_array_clear(a);
    ASSERT_OK(al_store_work_expired(f->st, 9000, a));
    ASSERT_I64_EQ(json_array_size(a), 0);
    json_array_clear(a);
    ASSERT_OK(al_store_work_expired(f->st, 30000, a));
    ASSERT_ID_SET(a, "w1,w2,w5");
    json_decref(a);

    /* The live work item of a session. */
    ASSERT_OK(al_store_work_for_session(f->st, "s2", &got));
    ASSERT_STR_EQ(json_string_value(json_object_get(got, "id")), "w2");
    json_decref(got);
    got = NULL;
    ASSERT_RET(al_store_work_for_session(f->st, "s4", &got), -ENOENT);
    ASSERT_RET(al_store_work_for_session(f->st, "s9", &got), -ENOENT);
    put_work(f, "w6", "env_a", "s4", "queued", 0, 0);
    ASSERT_OK(al_store_work_for_session(f->st, "s4", &got));
    ASSERT_STR_EQ(json_string_value(json_object_get(got, "id")), "w6");
    json_decref(got);
}

static void test_blobs_and_credentials(void **state)
{
    struct fixture *f = *state;
    static const unsigned char data[] = { 'P', 'K', 0, 3, 0xff, 0, 'z' };
    void *p = NULL;
    size_t n = 0;

    ASSERT_OK(al_store_blob_put(f->st, "skill_1/1", data, sizeof(data)));
    ASSERT_OK(al_store_blob_get(f->st, "skill_1/1", &p, &n));
    ASSERT_MEM_EQ(p, n, data, sizeof(data));
    free(p);
    ASSERT_OK(al_store_blob_put(f->st, "skill_1/1", "xy", 2));
    ASSERT_OK(al_store_blob_get(f->st, "skill_1/1", &p, &n));
    ASSERT_MEM_EQ(p, n, "xy", (size_t) 2);
    free(p);
    p = NULL;
    ASSERT_RET(al_store_blob_get(f->st, "skill_2/1", &p, &n), -ENOENT);
    assert_null(p);

    put(f, AL_KIND_CREDENTIAL, "ekey_1", 0,
        json_pack("{s:s, s:s, s:s, s:s}", "id", "ekey_1", "environment_id", "env_a", "kind", "environment_key",
                  "_hash", "ab12"));
    json_t *got = NULL;
    ASSERT_OK(al_store_credential_by_hash(f->st, "ab12", &got));
    ASSERT_STR_EQ(json_string_value(json_object_get(got, "id")), "ekey_1");
    json_decref(got);
    got = NULL;
    ASSERT_RET(al_store_credential_by_hash(f->st, "ab13", &got), -ENOENT);
    assert_null(got);
}

static void test_reopen_keeps_data(void **state)
{
    struct fixture *f = *state;
    json_t *got = NULL;
    int64_t seq1 = 0, seq2 = 0, next;

    put_env(f, "env_keep", "2026-01-01T00:00:00Z", false);
    append(f, "S", "ev_keep", "user.message", "2026-03-01T00:00:01Z", NULL, NULL, &seq1);
    ASSERT_OK(al_store_blob_put(f->st, "b", "1234", 4));
    put_work(f, "w1", "env_a", "s1", "queued", 0, 0);

    reopen(f);
    ASSERT_I64_EQ(al_store_schema_version(f->st), 2);
    ASSERT_OK(al_store_get(f->st, AL_KIND_ENVIRONMENT, "env_keep", 0, &got));
    ASSERT_STR_EQ(json_string_value(json_object_get(got, "created_at")), "2026-01-01T00:00:00Z");
    json_decref(got);

    json_t *a = json_array();
    struct al_event_query q = { .session_id = "S", .limit = 10 };
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev_keep");
    json_decref(a);

    void *p = NULL;
    size_t n = 0;
    ASSERT_OK(al_store_blob_get(f->st, "b", &p, &n));
    ASSERT_MEM_EQ(p, n, "1234", (size_t) 4);
    free(p);

    char buf[64];
    ASSERT_STR_EQ(work_next_id(f, "env_a", 1, buf), "w1");

    /* Sequences continue after a reopen: cursors handed out stay valid. */
    append(f, "S", "ev_next", "agent.message", "2026-03-01T00:00:02Z", NULL, NULL, &seq2);
    assert_true(seq2 > seq1);
    a = json_array();
    q.after_seq = seq1;
    ASSERT_OK(al_store_event_list(f->st, &q, a, &next));
    ASSERT_IDS(a, "ev_next");
    json_decref(a);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_migrations),
        T(test_put_get_delete),
        T(test_list_cursors),
        T(test_list_filters),
        T(test_transactions),
        T(test_events),
        T(test_event_by_tool_use),
        T(test_work_queue),
        T(test_blobs_and_credentials),
        T(test_reopen_keeps_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
