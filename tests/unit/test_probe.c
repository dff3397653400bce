/* SPDX-License-Identifier: Apache-2.0 */
/* sandbox probe: the level agrees with the features found, the JSON report
 * has every key with the right type, forcing a level or switching cgroups
 * off lowers the level and says so, and probing leaves the calling process
 * as it was (same namespaces, no children left) within its time budget.
 * On a root host (or with AIRLOCK_SANDBOX_EXPECT_LEVEL) the level itself is
 * checked; AIRLOCK_SANDBOX_MUST_WORK=1 demands namespaces. */
#include "al_test.h"

#include <jansson.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

static const char *const feature_bools[] = {
    "userns", "mntns", "pidns", "netns", "ipcns", "utsns", "cgroupns", "proc_mount", "lo_up",
    "seccomp", "openat2", "pidfd", "cgroup_writable",
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool env_is(const char *name, const char *v)
{
    const char *e = getenv(name);
    return e && strcmp(e, v) == 0;
}

/* Root of the host, not of a user namespace (whose cgroups it may not own). */
static bool initial_userns(void)
{
    char line[128] = "";
    FILE *f = fopen("/proc/self/uid_map", "re");
    if (f) {
        if (!fgets(line, sizeof(line), f))
            line[0] = '\0';
        fclose(f);
    }
    unsigned a = 1, b = 1, n = 0;
    return sscanf(line, "%u %u %u", &a, &b, &n) == 3 && a == 0 && b == 0 && n == 4294967295U;
}

static bool all_ns(const struct al_probe *p)
{
    return p->userns && p->mntns && p->pidns && p->netns && p->ipcns && p->utsns && p->cgroupns &&
           p->proc_mount && p->lo_up;
}

/* The report, parsed, with the shape checked. */
static json_t *report(const struct al_probe *p)
{
    _cleanup_free_ char *s = al_probe_json(p);
    json_error_t err;

    assert_non_null(s);
    print_message("%s\n", s);
    json_t *o = json_loads(s, 0, &err);
    assert_non_null(o);
    ASSERT_STR_EQ(json_string_value(json_object_get(o, "level")), al_isolation_name(p->level));
    json_t *f = json_object_get(o, "features");
    assert_true(json_is_object(f));
    for (size_t i = 0; i < AL_ELEMENTSOF(feature_bools); i++)
        assert_true(json_is_boolean(json_object_get(f, feature_bools[i])));
    ASSERT_I64_EQ(json_integer_value(json_object_get(f, "landlock_abi")), p->landlock_abi);
    ASSERT_I64_EQ(json_integer_value(json_object_get(f, "cgroup_version")), p->cgroup_version);
    assert_true(json_is_array(json_object_get(o, "missing")));
    assert_true(json_is_array(json_object_get(o, "fixes")));
    assert_true(json_is_string(json_object_get(o, "kernel")));
    assert_true(json_is_boolean(json_object_get(o, "root")));
    assert_true(json_is_null(json_object_get(o, "forced")) || json_is_string(json_object_get(o, "forced")));
    return o;
}

static bool array_has_prefix(const json_t *a, const char *prefix)
{
    size_t i;
    json_t *v;

    json_array_foreach(a, i, v)
        if (strncmp(json_string_value(v), prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

static void test_host(void **state)
{
    struct al_probe p;
    struct stat before, after;

    assert_int_equal(stat("/proc/self/ns/user", &before), 0);
    int64_t t0 = now_us();
    al_probe_run(&p);
    int64_t dt = now_us() - t0;
    print_message("probe took %" PRId64 " us\n", dt);
    assert_true(dt < 200000);   /* ~5 ms here; generous for sanitizers and loaded CI */

    /* Nothing changed here: same user namespace, every child reaped. */
    assert_int_equal(stat("/proc/self/ns/user", &after), 0);
    ASSERT_I64_EQ(after.st_ino, before.st_ino);
    ASSERT_I64_EQ(waitpid(-1, NULL, WNOHANG), -1);

    json_t *o = report(&p);
    assert_true(json_is_null(json_object_get(o, "forced")));
    ASSERT_I64_EQ(json_array_size(json_object_get(o, "missing")) == 0, p.level == AL_ISO_A && p.openat2 && p.pidfd &&
                  p.seccomp && p.landlock_abi > 0);
    json_decref(o);

    /* The level follows the features. */
    if (all_ns(&p))
        ASSERT_I64_EQ(p.level, p.cgroup_writable ? AL_ISO_A : AL_ISO_B);
    else if (!p.root)
        assert_true(p.level <= AL_ISO_C);
    ASSERT_I64_EQ(p.cgroup_writable, p.cgroup_version > 0);
    ASSERT_I64_EQ(p.root, geteuid() == 0);
    ASSERT_I64_EQ(p.landlock_abi, al_landlock_abi());

    const char *want = getenv("AIRLOCK_SANDBOX_EXPECT_LEVEL");
    if (!want && p.root && initial_userns())
        want = "A";   /* real root owns its namespaces and cgroups */
    if (want) {
        ASSERT_STR_EQ(al_isolation_name(p.level), want);
        if (strcmp(want, "B") >= 0)
            assert_true(all_ns(&p));
    }
    if (env_is("AIRLOCK_SANDBOX_MUST_WORK", "1") || env_is("AL_SANDBOX_MUST_WORK", "1"))
        assert_true(all_ns(&p) && p.level >= AL_ISO_B);
}

static void test_force_c(void **state)
{
    struct al_probe p;

    setenv("AIRLOCK_SANDBOX_FORCE_LEVEL", "C", 1);
    al_probe_run(&p);
    unsetenv("AIRLOCK_SANDBOX_FORCE_LEVEL");
    assert_true(p.forced);
    ASSERT_I64_EQ(p.forced_level, AL_ISO_C);
    assert_true(p.level <= AL_ISO_C);

    json_t *o = report(&p);
    ASSERT_STR_EQ(json_string_value(json_object_get(o, "forced")), "C");
    if (all_ns(&p)) {
        /* The features stay true: only the level is capped, and says why. */
        ASSERT_I64_EQ(p.level, AL_ISO_C);
        assert_true(array_has_prefix(json_object_get(o, "missing"), "level: capped at C"));
        assert_true(array_has_prefix(json_object_get(o, "fixes"), "unset AIRLOCK_SANDBOX_FORCE_LEVEL"));
    }
    json_decref(o);
}

static void test_force_bad_value(void **state)
{
    struct al_probe p;

    setenv("AIRLOCK_SANDBOX_FORCE_LEVEL", "Z", 1);
    al_probe_run(&p);
    unsetenv("AIRLOCK_SANDBOX_FORCE_LEVEL");
    assert_false(p.forced);
    assert_non_null(strstr(p.missing, "AIRLOCK_SANDBOX_FORCE_LEVEL: not A-D"));
}

static void test_no_cgroups(void **state)
{
    struct al_probe p;

    setenv("AIRLOCK_SANDBOX_NO_CGROUPS", "1", 1);
    al_probe_run(&p);
    unsetenv("AIRLOCK_SANDBOX_NO_CGROUPS");
    assert_false(p.cgroup_writable);
    ASSERT_I64_EQ(p.cgroup_version, 0);
    assert_false(p.forced);
    assert_true(p.level <= AL_ISO_B);
    if (all_ns(&p))
        ASSERT_I64_EQ(p.level, AL_ISO_B);

    json_t *o = report(&p);
    assert_true(json_is_false(json_object_get(json_object_get(o, "features"), "cgroup_writable")));
    assert_true(array_has_prefix(json_object_get(o, "missing"), "cgroup: disabled"));
    json_decref(o);
}

static void test_level_names(void **state)
{
    enum al_isolation l;

    ASSERT_STR_EQ(al_isolation_name(AL_ISO_A), "A");
    ASSERT_STR_EQ(al_isolation_name(AL_ISO_D), "D");
    ASSERT_OK(al_isolation_parse("B", &l));
    ASSERT_I64_EQ(l, AL_ISO_B);
    ASSERT_RET(al_isolation_parse("E", &l), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_force_c),
        cmocka_unit_test(test_force_bad_value),
        cmocka_unit_test(test_no_cgroups),
        cmocka_unit_test(test_level_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
