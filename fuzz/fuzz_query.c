/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for al_query_parse (src/lib/http/query.c). Besides the
 * sanitizers it checks the contract: only -E2BIG or -EBADMSG, an empty
 * result on error, one pair per non-empty '&' segment, and a round trip:
 * percent-encoding the parsed pairs and parsing again gives the same pairs
 * (the encoding itself is not canonical, so bytes are not compared). */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "lib/base/util.h"
#include "lib/http/query.h"

static size_t segments(const uint8_t *data, size_t size)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size; i++)
        if (i == size || data[i] == '&') {
            n += i > start;
            start = i + 1;
        }
    return n;
}

static size_t encode(char *out, const char *s, bool brackets)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            out[o++] = (char) *p;
        else if (*p == ' ')
            out[o++] = '+';
        else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    /* The parser strips one trailing "[]" from keys: give it one to strip
     * when the key itself ends in "[]". */
    if (brackets) {
        memcpy(out + o, "%5B%5D", 6);
        o += 6;
    }
    return o;
}

static bool ends_in_brackets(const char *s)
{
    size_t n = strlen(s);
    return n >= 2 && s[n - 2] == '[' && s[n - 1] == ']';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct al_query q, q2;
    int r = al_query_parse((const char *) data, size, &q);

    if (r < 0) {
        CHECK(r == -E2BIG || r == -EBADMSG);
        CHECK(q.n == 0);
        return 0;
    }
    CHECK(r == 0);
    CHECK(size <= AL_QUERY_MAX_LEN);
    CHECK(q.n == segments(data, size));
    CHECK(q.n <= AL_QUERY_MAX_PAIRS);

    size_t cap = 1, o = 0;
    for (size_t i = 0; i < q.n; i++) {
        CHECK(strlen(q.pairs[i].key) + strlen(q.pairs[i].value) <= size);
        CHECK(al_query_get(&q, q.pairs[i].key) != NULL);
        cap += 3 * (strlen(q.pairs[i].key) + strlen(q.pairs[i].value)) + 6 + 2;
    }
    char *enc = al_xmalloc(cap);
    for (size_t i = 0; i < q.n; i++) {
        if (i)
            enc[o++] = '&';
        o += encode(enc + o, q.pairs[i].key, ends_in_brackets(q.pairs[i].key));
        enc[o++] = '=';
        o += encode(enc + o, q.pairs[i].value, false);
    }
    CHECK(o < cap);

    r = al_query_parse(enc, o, &q2);
    if (o > AL_QUERY_MAX_LEN)
        CHECK(r == -E2BIG);
    else {
        CHECK(r == 0);
        CHECK(q2.n == q.n);
        for (size_t i = 0; i < q.n; i++) {
            CHECK(strcmp(q.pairs[i].key, q2.pairs[i].key) == 0);
            CHECK(strcmp(q.pairs[i].value, q2.pairs[i].value) == 0);
        }
        al_query_clear(&q2);
    }
    free(enc);
    al_query_clear(&q);
    return 0;
}
