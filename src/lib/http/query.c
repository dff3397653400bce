/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "../base/util.h"
#include "query.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *al_percent_decode(const char *s, size_t len, bool plus_is_space)
{
    char *out = al_xmalloc(len + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                goto fail;
            c = (char) (hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space)
            c = ' ';
        if (c == '\0')
            goto fail;
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

void al_query_clear(struct al_query *q)
{
    for (size_t i = 0; i < q->n; i++) {
        free(q->pairs[i].key);
        free(q->pairs[i].value);
    }
    q->n = 0;
}

int al_query_parse(const char *s, size_t len, struct al_query *q)
{
    q->n = 0;
    if (len > AL_QUERY_MAX_LEN)
        return -E2BIG;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && s[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && s[eq] != '=')
                eq++;
            if (q->n == AL_QUERY_MAX_PAIRS) {
                al_query_clear(q);
                return -E2BIG;
            }
            char *k = al_percent_decode(s + i, eq - i, true);
            char *v = eq < end ? al_percent_decode(s + eq + 1, end - eq - 1, true) : al_xstrdup("");
            if (!k || !v) {
                free(k);
                free(v);
                al_query_clear(q);
                return -EBADMSG;
            }
            size_t kl = strlen(k);
            if (kl >= 2 && k[kl - 2] == '[' && k[kl - 1] == ']')
                k[kl - 2] = '\0';
            q->pairs[q->n].key = k;
            q->pairs[q->n].value = v;
            q->n++;
        }
        i = end + 1;
    }
    return 0;
}

const char *al_query_get(const struct al_query *q, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->pairs[i].key, key) == 0)
            v = q->pairs[i].value;
    return v;
}

size_t al_query_get_all(const struct al_query *q, const char *key, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < q->n && n < max; i++)
        if (strcmp(q->pairs[i].key, key) == 0)
            out[n++] = q->pairs[i].value;
    return n;
}
