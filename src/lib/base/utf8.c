/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "utf8.h"

/* Length of the well-formed sequence at s[0..n), or 0 when it is ill-formed;
 * then *bad is the length of its maximal subpart (at least 1). Unicode 15
 * table 3-7: the second byte's range depends on the lead byte. */
static size_t seq_len(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;

    *bad = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return need + 1;
}

bool al_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t i = 0, bad;

    while (i < n) {
        size_t k = seq_len(p + i, n - i, &bad);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

char *al_utf8_repair(const char *s, size_t n, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *) s;
    /* Worst case: every byte becomes the three bytes of U+FFFD. */
    char *out = al_xmalloc(n * 3 + 1);
    size_t i = 0, o = 0, bad;

    while (i < n) {
        size_t k = seq_len(p + i, n - i, &bad);
        if (k) {
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += bad;
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}
