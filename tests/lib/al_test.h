/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the cmocka unit tests: assertions that print both
 * values in decimal and -errno codes by name (cmocka's own print hex), and
 * a private temporary directory removed when the test ends. Include after
 * <cmocka.h>. Test code only. */
#pragma once

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/base/log.h"

static inline const char *al_test_errname(int64_t r, char buf[static 32])
{
    const char *n = r < 0 && r > -4096 ? al_errno_name((int) -r) : NULL;
    if (n)
        snprintf(buf, 32, "-%s", n);
    else
        snprintf(buf, 32, "%" PRId64, r);
    return buf;
}

/* Both sides in decimal. */
#define ASSERT_I64_EQ(a, b)                                                        \
    do {                                                                           \
        int64_t al__a = (int64_t) (a), al__b = (int64_t) (b);                      \
        if (al__a != al__b) {                                                      \
            print_error("%s != %s: %" PRId64 " != %" PRId64 "\n", #a, #b, al__a,   \
                        al__b);                                                    \
            _fail(__FILE__, __LINE__);                                             \
        }                                                                          \
    } while (0)

/* A return code against the expected one, both printed as -ENAME. */
#define ASSERT_RET(r, want)                                                        \
    do {                                                                           \
        int64_t al__r = (int64_t) (r), al__w = (int64_t) (want);                   \
        char al__x[32], al__y[32];                                                 \
        if (al__r != al__w) {                                                      \
            print_error("%s: got %s, want %s\n", #r, al_test_errname(al__r, al__x),  \
                        al_test_errname(al__w, al__y));                            \
            _fail(__FILE__, __LINE__);                                             \
        }                                                                          \
    } while (0)

#define ASSERT_OK(r) ASSERT_RET((r), 0)

/* NUL-terminated strings; NULL compares equal only to NULL. */
#define ASSERT_STR_EQ(a, b)                                                        \
    do {                                                                           \
        const char *al__a = (a), *al__b = (b);                                     \
        if ((al__a == NULL) != (al__b == NULL) ||                                  \
            (al__a && strcmp(al__a, al__b) != 0)) {                                \
            print_error("%s != %s: \"%s\" != \"%s\"\n", #a, #b,                    \
                        al__a ? al__a : "(null)", al__b ? al__b : "(null)");       \
            _fail(__FILE__, __LINE__);                                             \
        }                                                                          \
    } while (0)

/* Byte buffers of given lengths. */
#define ASSERT_MEM_EQ(a, alen, b, blen)                                            \
    do {                                                                           \
        size_t al__al = (alen), al__bl = (blen);                                   \
        if (al__al != al__bl || memcmp((a), (b), al__al) != 0) {                   \
            print_error("%s (%zu bytes) != %s (%zu bytes): \"%.*s\" != \"%.*s\"\n", \
                        #a, al__al, #b, al__bl, (int) al__al, (const char *) (a),  \
                        (int) al__bl, (const char *) (b));                         \
            _fail(__FILE__, __LINE__);                                             \
        }                                                                          \
    } while (0)

static inline int al_test_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;
    return remove(path);
}

/* Removes a directory tree (nftw, depth first). */
static inline void al_test_rm_rf(const char *dir)
{
    (void) nftw(dir, al_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh mkdtemp directory under $TMPDIR (or /tmp) in buf. */
static inline void al_test_mkdtemp(char buf[static 256])
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, 256, "%s/al-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(buf)) {
        print_error("mkdtemp(%s) failed: errno %d\n", buf, errno);
        _fail(__FILE__, __LINE__);
    }
}
