/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 8785 JSON Canonicalization Scheme over jansson values
 * (stream_internal.h): object members sorted by the UTF-16 code units of
 * their names, numbers in ECMAScript Number::toString form, strings with
 * the minimal escapes. Callers decode with JSON_DECODE_INT_AS_REAL so every
 * number is the IEEE double JCS speaks of. Pure. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/base/utf8.h"
#include "stream_internal.h"

int gw_jcs_number(double d, char *buf, size_t len)
{
    char e[40], digits[32];   /* at most 17 digits; room for cppcheck's n <= 21 */
    int p, exp10, k = 0;

    if (isnan(d) || isinf(d) || len < 32)
        return -EINVAL;
    if (d == 0)
        return snprintf(buf, len, "0");
    /* Shortest precision that reads back as d; %e rounds correctly, so it
     * is also the nearest such string, as ECMAScript asks. */
    for (p = 1; p <= 17; p++) {
        (void) snprintf(e, sizeof(e), "%.*e", p - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    const char *s = e;
    bool neg = *s == '-';
    if (neg)
        s++;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
            digits[k++] = *s;
    exp10 = (int) strtol(s + 1, NULL, 10);
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';

    int n = exp10 + 1;   /* the decimal point sits after n digits */
    char *o = buf;
    size_t left = len;
#define PUT(...) do { int w_ = snprintf(o, left, __VA_ARGS__); o += w_; left -= (size_t) w_; } while (0)
    if (neg)
        PUT("-");
    if (k <= n && n <= 21) {
        PUT("%s%.*s", digits, n - k, "000000000000000000000");
    } else if (0 < n && n <= 21) {
        PUT("%.*s.%s", n, digits, digits + n);
    } else if (-6 < n && n <= 0) {
        PUT("0.%.*s%s", -n, "000000", digits);
    } else {
        PUT("%c", digits[0]);
        if (k > 1)
            PUT(".%s", digits + 1);
        PUT("e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
#undef PUT
    return (int) (o - buf);
}

static int put(struct al_buf *out, const char *s, size_t n)
{
    return al_buf_append(out, s, n);
}

static int append_string(const char *s, size_t n, struct al_buf *out)
{
    static const char hex[] = "0123456789abcdef";
    int r;

    if (!al_utf8_valid(s, n))
        return -EINVAL;
    if ((r = put(out, "\"", 1)) < 0)
        return r;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        char esc[7];
        size_t elen = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char) c, elen = 2;
        } else if (c < 0x20) {
            char named = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 0;
            if (named) {
                esc[0] = '\\', esc[1] = named, elen = 2;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4], esc[5] = hex[c & 15], elen = 6;
            }
        }
        if (elen == 0) {
            run++;
            continue;
        }
        if ((r = put(out, s + i - run, run)) < 0 || (r = put(out, esc, elen)) < 0)
            return r;
        run = 0;
    }
    if ((r = put(out, s + n - run, run)) < 0)
        return r;
    return put(out, "\"", 1);
}

/* Next UTF-16 code unit of a valid UTF-8 string; *pend holds a pending low
 * surrogate between calls. Returns -1 at the end. */
static int next_unit(const unsigned char **p, const unsigned char *end, int *pend)
{
    if (*pend >= 0) {
        int u = *pend;
        *pend = -1;
        return u;
    }
    if (*p >= end)
        return -1;
    unsigned c = **p;
    unsigned cp;
    int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    cp = extra == 0 ? c : extra == 1 ? c & 0x1F : extra == 2 ? c & 0x0F : c & 0x07;
    for (int i = 1; i <= extra && *p + i < end; i++)
        cp = (cp << 6) | ((*p)[i] & 0x3F);
    *p += extra + 1;
    if (cp >= 0x10000) {
        cp -= 0x10000;
        *pend = (int) (0xDC00 + (cp & 0x3FF));
        return (int) (0xD800 + (cp >> 10));
    }
    return (int) cp;
}

static int utf16_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    const unsigned char *pa = (const unsigned char *) a, *pb = (const unsigned char *) b;
    int qa = -1, qb = -1;
    for (;;) {
        int ua = next_unit(&pa, (const unsigned char *) a + an, &qa);
        int ub = next_unit(&pb, (const unsigned char *) b + bn, &qb);
        if (ua != ub)
            return ua < ub ? -1 : 1;
        if (ua < 0)
            return 0;
    }
}

static int key_cmp(const void *x, const void *y)
{
    const char *a = *(const char *const *) x, *b = *(const char *const *) y;
    return utf16_cmp(a, strlen(a), b, strlen(b));
}

static int append_object(const json_t *v, struct al_buf *out)
{
    size_t n = json_object_size(v), i = 0;
    const char *key;
    json_t *val;
    int r;

    _cleanup_free_ const char **keys = al_xcalloc(n ? n : 1, sizeof(*keys));
    json_object_foreach((json_t *) v, key, val)
        keys[i++] = key;
    qsort(keys, n, sizeof(*keys), key_cmp);
    if ((r = put(out, "{", 1)) < 0)
        return r;
    for (i = 0; i < n; i++) {
        if ((i > 0 && (r = put(out, ",", 1)) < 0) ||
            (r = append_string(keys[i], strlen(keys[i]), out)) < 0 ||
            (r = put(out, ":", 1)) < 0 ||
            (r = gw_jcs_append(json_object_get(v, keys[i]), out)) < 0)
            return r;
    }
    return put(out, "}", 1);
}

int gw_jcs_append(const json_t *v, struct al_buf *out)
{
    char num[40];
    int r;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return append_object(v, out);
    case JSON_ARRAY:
        if ((r = put(out, "[", 1)) < 0)
            return r;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((i > 0 && (r = put(out, ",", 1)) < 0) || (r = gw_jcs_append(json_array_get(v, i), out)) < 0)
                return r;
        return put(out, "]", 1);
    case JSON_STRING:
        return append_string(json_string_value(v), json_string_length(v), out);
    case JSON_INTEGER:
    case JSON_REAL:
        r = gw_jcs_number(json_number_value(v), num, sizeof(num));
        return r < 0 ? r : put(out, num, (size_t) r);
    case JSON_TRUE:
        return put(out, "true", 4);
    case JSON_FALSE:
        return put(out, "false", 5);
    case JSON_NULL:
        return put(out, "null", 4);
    }
    return -EINVAL;
}
