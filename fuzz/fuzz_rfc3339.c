/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for al_rfc3339_parse and al_rfc3339 (src/lib/base/util.c).
 * Whatever parses must format and parse back to the same microsecond; an
 * input already in the canonical form ("YYYY-MM-DDTHH:MM:SS.ffffffZ", not a
 * leap second) must format back to the same bytes. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "lib/base/util.h"

/* The four-digit years RFC 3339 can write: 0000-01-01 to 9999-12-31. An
 * offset can move a parsed time up to a day outside this range. */
#define MIN_US (INT64_C(-62167219200) * 1000000)
#define MAX_US (INT64_C(253402300799) * 1000000 + 999999)
#define DAY_US (INT64_C(86400) * 1000000)

static bool is_canonical(const char *s, size_t n)
{
    return n == 27 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' &&
           s[19] == '.' && s[26] == 'Z' && memcmp(s + 17, "60", 2) != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = al_xstrndup((const char *) data, size);
    size_t n = strlen(s);
    int64_t us = 0, us2 = 0;
    char buf[AL_RFC3339_MAX];

    int r = al_rfc3339_parse(s, &us);
    if (r < 0) {
        CHECK(r == -EINVAL);
        free(s);
        return 0;
    }
    CHECK(r == 0);
    CHECK(us >= MIN_US - DAY_US && us <= MAX_US + DAY_US);
    if (us >= MIN_US && us <= MAX_US) {
        al_rfc3339(us, buf);
        CHECK(strlen(buf) == 27);
        CHECK(al_rfc3339_parse(buf, &us2) == 0);
        CHECK(us2 == us);
        if (is_canonical(s, n))
            CHECK(strcmp(buf, s) == 0);
    }
    free(s);
    return 0;
}
