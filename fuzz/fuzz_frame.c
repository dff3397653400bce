/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the runner's frame reader (src/sandbox/frame.c).
 * The input is read three times: at once, one byte per feed, and in chunks
 * whose sizes come from the input's last bytes. All three must take the
 * same frames and end the same way: how bytes arrive never changes what
 * they mean. Each frame is then encoded again and read back, and must come
 * back equal (the JSON text need not be byte-identical: whitespace and key
 * order are not canonical). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
/* The codec is built into al_sandbox, which fuzz targets do not link; it
 * depends on base only, so it is compiled in here (h2o's pattern). */
#include "sandbox/frame.c"

struct frames {
    struct al_frame *v;
    size_t n, cap;
};

static void frames_free(struct frames *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        al_frame_done(&fs->v[i]);
    free(fs->v);
    *fs = (struct frames){ 0 };
}

/* Returns 0 when the input ended between frames or inside one, else the
 * error that stopped the reader. */
static int read_all(const uint8_t *data, size_t size, const uint8_t *sizes, size_t nsizes, struct frames *out)
{
    struct al_frame_reader r = { 0 };
    int ret = 0;

    for (size_t i = 0, k = 0; i < size && ret == 0; k++) {
        size_t chunk = nsizes ? (size_t) (sizes[k % nsizes] % 16) + 1 : size;
        chunk = AL_MIN(chunk, size - i);
        ret = al_frame_reader_feed(&r, data + i, chunk);
        i += chunk;
        while (ret == 0) {
            struct al_frame f;
            int got = al_frame_reader_next(&r, &f);
            if (got <= 0) {
                ret = got;
                break;
            }
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 4;
                out->v = al_xrealloc(out->v, out->cap * sizeof(*out->v));
            }
            out->v[out->n++] = f;
        }
    }
    al_frame_reader_done(&r);
    return ret;
}

static bool same_frame(const struct al_frame *a, const struct al_frame *b)
{
    return json_equal(a->msg, b->msg) && a->payload_len == b->payload_len &&
           (a->payload == NULL) == (b->payload == NULL) &&
           (a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
}

static void check_same(int r1, const struct frames *a, int r2, const struct frames *b)
{
    CHECK(r1 == r2);
    CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n; i++)
        CHECK(same_frame(&a->v[i], &b->v[i]));
}

static void round_trip(const struct al_frame *f)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    struct frames back = { 0 };

    /* A frame whose "payload" member is there carries that many bytes. */
    CHECK(al_frame_encode(f->msg, f->payload, f->payload_len, &buf, &len) == 0);
    CHECK(read_all(buf, len, NULL, 0, &back) == 0);
    CHECK(back.n == 1);
    CHECK(same_frame(&back.v[0], f));
    frames_free(&back);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t one[] = { 0 };
    struct frames whole = { 0 }, bytes = { 0 }, chunked = { 0 };
    size_t nsizes = AL_MIN(size, (size_t) 8);

    int r1 = read_all(data, size, NULL, 0, &whole);
    CHECK(r1 == 0 || r1 == -EPROTO || r1 == -EMSGSIZE);
    int r2 = read_all(data, size, one, 1, &bytes);
    check_same(r1, &whole, r2, &bytes);
    int r3 = read_all(data, size, data + size - nsizes, nsizes, &chunked);
    check_same(r1, &whole, r3, &chunked);
    for (size_t i = 0; i < whole.n; i++)
        round_trip(&whole.v[i]);
    frames_free(&whole);
    frames_free(&bytes);
    frames_free(&chunked);
    return 0;
}
