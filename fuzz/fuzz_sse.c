/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the SSE reader and frame encoder
 * (src/lib/http/sse.c). The input is read three times: at once, one byte
 * per call, and in chunks whose sizes come from the input's last bytes. All
 * reads must report the same events: how bytes arrive never changes what
 * they mean. Then each event is framed with al_sse_frame and read back, and
 * must come back identical. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "lib/base/util.h"
#include "lib/http/sse.h"

struct event {
    char *name;     /* NULL: no event: field */
    char *data;
    size_t len;
};

struct events {
    struct event *v;
    size_t n, cap;
};

static int collect(const char *name, const char *data, size_t len, void *ud)
{
    struct events *e = ud;

    CHECK(data[len] == '\0');
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->v = al_xrealloc(e->v, e->cap * sizeof(*e->v));
    }
    e->v[e->n].name = name ? al_xstrdup(name) : NULL;
    e->v[e->n].data = al_xmalloc(len + 1);
    memcpy(e->v[e->n].data, data, len + 1);
    e->v[e->n].len = len;
    e->n++;
    return 0;
}

static void events_free(struct events *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].name);
        free(e->v[i].data);
    }
    free(e->v);
    *e = (struct events){ 0 };
}

/* Feeds data in chunks whose sizes cycle through sizes[] (each % 16 + 1);
 * nsizes 0 feeds it all at once. */
static int read_all(const uint8_t *data, size_t size, const uint8_t *sizes, size_t nsizes, struct events *out)
{
    struct al_sse_reader r;
    int ret = 0;

    al_sse_reader_init(&r);
    for (size_t i = 0, k = 0; i < size && ret == 0; k++) {
        size_t chunk = nsizes ? (size_t) (sizes[k % nsizes] % 16) + 1 : size;
        chunk = AL_MIN(chunk, size - i);
        ret = al_sse_reader_feed(&r, (const char *) data + i, chunk, collect, out);
        i += chunk;
    }
    al_sse_reader_done(&r);
    return ret;
}

static bool same_event(const struct event *a, const struct event *b)
{
    if ((a->name == NULL) != (b->name == NULL))
        return false;
    if (a->name && strcmp(a->name, b->name) != 0)
        return false;
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void round_trip(const struct event *ev)
{
    /* A frame always names its event; an unnamed one goes out as the
     * default type a browser would give it. */
    const char *name = ev->name ? ev->name : "message";
    size_t flen = 0;
    char *frame = al_sse_frame(name, ev->data, ev->len, &flen);
    struct events back = { 0 };

    CHECK(frame != NULL);   /* names from the reader never hold CR or LF */
    CHECK(flen == strlen(frame) || memchr(ev->data, '\0', ev->len));
    CHECK(read_all((const uint8_t *) frame, flen, NULL, 0, &back) == 0);
    CHECK(back.n == 1);
    CHECK(strcmp(back.v[0].name, name) == 0);
    CHECK(back.v[0].len == ev->len && memcmp(back.v[0].data, ev->data, ev->len) == 0);
    events_free(&back);
    free(frame);
}

static void check_same(int r1, const struct events *a, int r2, const struct events *b)
{
    CHECK(r1 == r2);
    if (r1 == 0) {
        CHECK(a->n == b->n);
        for (size_t i = 0; i < a->n; i++)
            CHECK(same_event(&a->v[i], &b->v[i]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t one[] = { 0 };
    struct events whole = { 0 }, bytes = { 0 }, chunked = { 0 };
    size_t nsizes = AL_MIN(size, (size_t) 8);

    int r1 = read_all(data, size, NULL, 0, &whole);
    CHECK(r1 == 0 || r1 == -EMSGSIZE);
    int r2 = read_all(data, size, one, 1, &bytes);
    check_same(r1, &whole, r2, &bytes);
    int r3 = read_all(data, size, data + size - nsizes, nsizes, &chunked);
    check_same(r1, &whole, r3, &chunked);
    for (size_t i = 0; i < whole.n; i++)
        round_trip(&whole.v[i]);
    events_free(&whole);
    events_free(&bytes);
    events_free(&chunked);
    return 0;
}
