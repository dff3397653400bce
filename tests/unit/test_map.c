/* SPDX-License-Identifier: Apache-2.0 */
/* The string-keyed hash map: put/get/replace/remove, growth past many
 * entries, and sweep removing exactly the entries the callback picks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "lib/base/map.h"

static void test_put_get_remove(void **state)
{
    struct al_map *m = al_map_new();
    int a = 1, b = 2;

    assert_null(al_map_get(m, "x"));
    assert_null(al_map_put(m, "x", &a));
    assert_ptr_equal(al_map_get(m, "x"), &a);
    assert_ptr_equal(al_map_put(m, "x", &b), &a);     /* replace returns the old value */
    assert_ptr_equal(al_map_get(m, "x"), &b);
    assert_int_equal(al_map_size(m), 1);
    assert_null(al_map_remove(m, "y"));
    assert_ptr_equal(al_map_remove(m, "x"), &b);
    assert_null(al_map_get(m, "x"));
    assert_int_equal(al_map_size(m), 0);
    assert_null(al_map_put(m, "", &a));               /* the empty key is a key */
    assert_ptr_equal(al_map_get(m, ""), &a);
    assert_null(al_map_free(m));
}

static void test_growth(void **state)
{
    struct al_map *m = al_map_new();
    static int vals[5000];
    char key[32];

    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "worker-%d", i);
        vals[i] = i;
        assert_null(al_map_put(m, key, &vals[i]));
    }
    assert_int_equal(al_map_size(m), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "worker-%d", i);
        int *v = al_map_get(m, key);
        assert_non_null(v);
        assert_int_equal(*v, i);
    }
    al_map_free(m);
}

static bool drop_odd(const char *key, void *value, void *ud)
{
    (*(int *) ud)++;
    return *(int *) value % 2 == 1;
}

static void test_sweep(void **state)
{
    struct al_map *m = al_map_new();
    static int vals[100];
    char key[32];
    int calls = 0;

    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        vals[i] = i;
        al_map_put(m, key, &vals[i]);
    }
    al_map_sweep(m, drop_odd, &calls);
    assert_int_equal(calls, 100);
    assert_int_equal(al_map_size(m), 50);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        if (i % 2)
            assert_null(al_map_get(m, key));
        else
            assert_ptr_equal(al_map_get(m, key), &vals[i]);
    }
    al_map_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_remove),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
