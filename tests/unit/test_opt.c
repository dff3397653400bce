/* SPDX-License-Identifier: Apache-2.0 */
/* base/opt: one table drives defaults, the config file, AIRLOCK_* and
 * flags, in that order of precedence; bad input fails with -EINVAL. */
#include "al_test.h"

#include "lib/base/opt.h"
#include "lib/base/util.h"

struct cfg {
    char *listen;
    int64_t max_items;
    int64_t timeout_us;
    bool verbose;
    bool enabled;
    char **tags;
};

#define O(n, t, f, def) AL_OPT(n, t, struct cfg, f, def, "X", "help for " n)
static const struct al_opt table[] = {
    O("listen", AL_OPT_STR, listen, "127.0.0.1:8080"),
    O("max-items", AL_OPT_INT, max_items, "10"),
    O("timeout", AL_OPT_DURATION, timeout_us, "60s"),
    O("verbose", AL_OPT_BOOL, verbose, NULL),
    O("enabled", AL_OPT_BOOL, enabled, "true"),
    O("tag", AL_OPT_LIST, tags, NULL),
    { 0 },
};

static const char *const env_names[] = {
    "AIRLOCK_LISTEN", "AIRLOCK_MAX_ITEMS", "AIRLOCK_TIMEOUT", "AIRLOCK_VERBOSE",
    "AIRLOCK_ENABLED", "AIRLOCK_TAG", "AIRLOCK_CONFIG",
};

struct fixture {
    char dir[256];
    char file[300];
    struct cfg cfg;
    struct al_opts_result res;
};

static int setup(void **state)
{
    struct fixture *f = al_xcalloc(1, sizeof(*f));
    for (size_t i = 0; i < AL_ELEMENTSOF(env_names); i++)
        unsetenv(env_names[i]);
    al_test_mkdtemp(f->dir);
    snprintf(f->file, sizeof(f->file), "%s/airlock.conf", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    al_opts_free(table, &f->cfg);
    free(f->res.args);
    for (size_t i = 0; i < AL_ELEMENTSOF(env_names); i++)
        unsetenv(env_names[i]);
    al_test_rm_rf(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "we");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

/* argv is NULL-terminated; argv[0] is the command name. */
static int load(struct fixture *f, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    al_opts_free(table, &f->cfg);
    free(f->res.args);
    f->cfg = (struct cfg){ 0 };
    return al_opts_load(table, &f->cfg, argc, argv, &f->res);
}

#define ARGV(...) ((char *[]){ "test", ##__VA_ARGS__, NULL })

static void test_defaults(void **state)
{
    struct fixture *f = *state;

    ASSERT_OK(load(f, ARGV()));
    ASSERT_STR_EQ(f->cfg.listen, "127.0.0.1:8080");
    ASSERT_I64_EQ(f->cfg.max_items, 10);
    ASSERT_I64_EQ(f->cfg.timeout_us, 60000000);
    assert_false(f->cfg.verbose);
    assert_true(f->cfg.enabled);
    assert_null(f->cfg.tags);
    ASSERT_I64_EQ(f->res.nargs, 0);
    assert_false(f->res.help);
}

static void test_precedence(void **state)
{
    struct fixture *f = *state;

    write_file(f->file,
               "# a comment\n"
               "\n"
               "   listen = 10.0.0.1:80   \n"
               "max-items=20\n"
               "\ttimeout = 5s\n"
               "verbose = yes\n");
    setenv("AIRLOCK_MAX_ITEMS", "30", 1);
    setenv("AIRLOCK_TIMEOUT", "250ms", 1);

    /* Each source overrides the ones before it, option by option. */
    ASSERT_OK(load(f, ARGV("--config", f->file, "--timeout", "2m")));
    ASSERT_STR_EQ(f->cfg.listen, "10.0.0.1:80");    /* file over default */
    ASSERT_I64_EQ(f->cfg.max_items, 30);            /* env over file */
    ASSERT_I64_EQ(f->cfg.timeout_us, 120000000);    /* flag over env */
    assert_true(f->cfg.verbose);                    /* file */
    assert_true(f->cfg.enabled);                    /* default */

    /* --config=FILE, the file after the flags on the command line, and
     * AIRLOCK_CONFIG all name the same file. */
    char eq[320];
    snprintf(eq, sizeof(eq), "--config=%s", f->file);
    ASSERT_OK(load(f, ARGV("--max-items=40", eq)));
    ASSERT_I64_EQ(f->cfg.max_items, 40);
    ASSERT_STR_EQ(f->cfg.listen, "10.0.0.1:80");
    ASSERT_OK(load(f, ARGV("--max-items", "41", "--config", f->file)));
    ASSERT_I64_EQ(f->cfg.max_items, 41);
    ASSERT_STR_EQ(f->cfg.listen, "10.0.0.1:80");
    setenv("AIRLOCK_CONFIG", f->file, 1);
    unsetenv("AIRLOCK_MAX_ITEMS");
    ASSERT_OK(load(f, ARGV()));
    ASSERT_STR_EQ(f->cfg.listen, "10.0.0.1:80");
    ASSERT_I64_EQ(f->cfg.max_items, 20);
    ASSERT_I64_EQ(f->cfg.timeout_us, 250000);

    /* An empty environment variable counts as unset. */
    setenv("AIRLOCK_LISTEN", "", 1);
    ASSERT_OK(load(f, ARGV()));
    ASSERT_STR_EQ(f->cfg.listen, "10.0.0.1:80");
    setenv("AIRLOCK_LISTEN", "[::1]:9", 1);
    ASSERT_OK(load(f, ARGV()));
    ASSERT_STR_EQ(f->cfg.listen, "[::1]:9");
    ASSERT_OK(load(f, ARGV("--listen=0.0.0.0:1")));
    ASSERT_STR_EQ(f->cfg.listen, "0.0.0.0:1");
}

static void test_bools(void **state)
{
    struct fixture *f = *state;

    ASSERT_OK(load(f, ARGV("--verbose")));
    assert_true(f->cfg.verbose);
    ASSERT_OK(load(f, ARGV("--enabled=false", "--verbose=on")));
    assert_false(f->cfg.enabled);
    assert_true(f->cfg.verbose);
    setenv("AIRLOCK_ENABLED", "0", 1);
    ASSERT_OK(load(f, ARGV()));
    assert_false(f->cfg.enabled);
    /* A bool flag does not take the next word as its value. */
    ASSERT_OK(load(f, ARGV("--verbose", "false")));
    assert_true(f->cfg.verbose);
    ASSERT_I64_EQ(f->res.nargs, 1);
    ASSERT_STR_EQ(f->res.args[0], "false");
    ASSERT_RET(load(f, ARGV("--verbose=maybe")), -EINVAL);
    setenv("AIRLOCK_ENABLED", "nope", 1);
    ASSERT_RET(load(f, ARGV()), -EINVAL);
}

static void test_lists(void **state)
{
    struct fixture *f = *state;

    /* Repeats within one source accumulate, in order. */
    ASSERT_OK(load(f, ARGV("--tag", "a", "--tag=b", "--tag", "c")));
    assert_non_null(f->cfg.tags);
    ASSERT_STR_EQ(f->cfg.tags[0], "a");
    ASSERT_STR_EQ(f->cfg.tags[1], "b");
    ASSERT_STR_EQ(f->cfg.tags[2], "c");
    assert_null(f->cfg.tags[3]);

    write_file(f->file, "tag = f1\ntag = f2\n");
    ASSERT_OK(load(f, ARGV("--config", f->file)));
    ASSERT_STR_EQ(f->cfg.tags[0], "f1");
    ASSERT_STR_EQ(f->cfg.tags[1], "f2");
    assert_null(f->cfg.tags[2]);

    /* A higher source replaces the list of a lower one rather than adding
     * to it: that is what the precedence promises. */
    setenv("AIRLOCK_TAG", "e", 1);
    ASSERT_OK(load(f, ARGV("--config", f->file)));
    ASSERT_STR_EQ(f->cfg.tags[0], "e");
    assert_null(f->cfg.tags[1]);
    ASSERT_OK(load(f, ARGV("--config", f->file, "--tag", "x", "--tag", "y")));
    ASSERT_STR_EQ(f->cfg.tags[0], "x");
    ASSERT_STR_EQ(f->cfg.tags[1], "y");
    assert_null(f->cfg.tags[2]);
}

static void test_positional(void **state)
{
    struct fixture *f = *state;

    ASSERT_OK(load(f, ARGV("first", "--max-items", "3", "-", "second", "-x", "--", "--max-items", "--nope")));
    ASSERT_I64_EQ(f->cfg.max_items, 3);
    ASSERT_I64_EQ(f->res.nargs, 6);
    ASSERT_STR_EQ(f->res.args[0], "first");
    ASSERT_STR_EQ(f->res.args[1], "-");
    ASSERT_STR_EQ(f->res.args[2], "second");
    ASSERT_STR_EQ(f->res.args[3], "-x");
    ASSERT_STR_EQ(f->res.args[4], "--max-items");
    ASSERT_STR_EQ(f->res.args[5], "--nope");
    assert_null(f->res.args[6]);
}

static void test_help(void **state)
{
    struct fixture *f = *state;

    /* --help wins even over errors later on the line or in the file. */
    write_file(f->file, "bogus = 1\n");
    ASSERT_OK(load(f, ARGV("--config", f->file, "--nope", "--help")));
    assert_true(f->res.help);
    ASSERT_OK(load(f, ARGV("-h")));
    assert_true(f->res.help);
}

static void test_errors(void **state)
{
    struct fixture *f = *state;

    /* Unknown flags, in every spelling. */
    ASSERT_RET(load(f, ARGV("--nope")), -EINVAL);
    ASSERT_RET(load(f, ARGV("--nope=1")), -EINVAL);
    ASSERT_RET(load(f, ARGV("--list")), -EINVAL);            /* a prefix of "listen" */
    ASSERT_RET(load(f, ARGV("--listenx", "a")), -EINVAL);

    /* Bad values from each source. */
    ASSERT_RET(load(f, ARGV("--timeout", "soon")), -EINVAL);
    ASSERT_RET(load(f, ARGV("--timeout=1.5s")), -EINVAL);
    ASSERT_RET(load(f, ARGV("--timeout", "-1s")), -EINVAL);
    ASSERT_RET(load(f, ARGV("--max-items", "12abc")), -EINVAL);
    ASSERT_RET(load(f, ARGV("--max-items", "99999999999999999999")), -EINVAL);
    setenv("AIRLOCK_TIMEOUT", "5 s", 1);
    ASSERT_RET(load(f, ARGV()), -EINVAL);
    unsetenv("AIRLOCK_TIMEOUT");

    /* A value is required at the end of the line. */
    ASSERT_RET(load(f, ARGV("--listen")), -EINVAL);

    /* Config file problems: unknown key, no '=', bad value, missing file. */
    write_file(f->file, "listen = a\nnope = 1\n");
    ASSERT_RET(load(f, ARGV("--config", f->file)), -EINVAL);
    write_file(f->file, "listen\n");
    ASSERT_RET(load(f, ARGV("--config", f->file)), -EINVAL);
    write_file(f->file, "timeout = forever\n");
    ASSERT_RET(load(f, ARGV("--config", f->file)), -EINVAL);
    char missing[320];
    snprintf(missing, sizeof(missing), "%s/missing.conf", f->dir);
    assert_true(load(f, ARGV("--config", missing)) < 0);

    /* After all that, a good load still works (no state left behind). */
    ASSERT_OK(load(f, ARGV("--timeout", "1h")));
    ASSERT_I64_EQ(f->cfg.timeout_us, INT64_C(3600000000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
