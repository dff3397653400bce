/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "buf.h"

int al_buf_append(struct al_buf *b, const void *p, size_t n)
{
    if (n > b->max - b->len)
        return -EMSGSIZE;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = al_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void al_buf_clear(struct al_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
