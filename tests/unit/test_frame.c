/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/sandbox/frame.c: encoding, the incremental reader fed
 * at every split point, the caps, malformed frames, and the fd helpers over
 * a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "al_test.h"
#include "src/sandbox/frame.h"

static unsigned char *encode(const char *json, const void *payload, size_t plen, size_t *len)
{
    json_t *m = json_loads(json, JSON_ALLOW_NUL, NULL);
    unsigned char *out = NULL;

    assert_non_null(m);
    ASSERT_OK(al_frame_encode(m, payload, plen, &out, len));
    json_decref(m);
    return out;
}

/* A raw frame: header announcing n, then body. */
static size_t raw(unsigned char *buf, uint32_t n, const char *body)
{
    buf[0] = (unsigned char) (n >> 24);
    buf[1] = (unsigned char) (n >> 16);
    buf[2] = (unsigned char) (n >> 8);
    buf[3] = (unsigned char) n;
    memcpy(buf + 4, body, strlen(body));
    return 4 + strlen(body);
}

static void test_encode_layout(void **state)
{
    size_t len;
    _cleanup_free_ unsigned char *f = encode("{\"op\":\"ready\"}", NULL, 0, &len);

    ASSERT_I64_EQ(len, 4 + 14);
    ASSERT_MEM_EQ(f, 4, "\0\0\0\x0e", 4);
    ASSERT_MEM_EQ(f + 4, 14, "{\"op\":\"ready\"}", 14);
}

static void test_encode_payload_sets_length(void **state)
{
    size_t len;
    _cleanup_free_ unsigned char *f = encode("{\"id\":1,\"op\":\"skill_install\"}", "abc", 3, &len);
    struct al_frame_reader r = { 0 };
    struct al_frame fr;

    ASSERT_OK(al_frame_reader_feed(&r, f, len));
    ASSERT_RET(al_frame_reader_next(&r, &fr), 1);
    ASSERT_I64_EQ(json_integer_value(json_object_get(fr.msg, "payload")), 3);
    ASSERT_MEM_EQ(fr.payload, fr.payload_len, "abc", 3);
    ASSERT_RET(al_frame_reader_next(&r, &fr), 0);
    al_frame_done(&fr);
    al_frame_reader_done(&r);
}

static void test_encode_rejects(void **state)
{
    json_t *arr = json_array(), *obj = json_object();
    unsigned char *out = NULL;
    size_t len;

    ASSERT_RET(al_frame_encode(arr, NULL, 0, &out, &len), -EINVAL);
    ASSERT_RET(al_frame_encode(obj, NULL, 5, &out, &len), -EINVAL);
    ASSERT_RET(al_frame_encode(obj, "x", (size_t) AL_FRAME_MAX_PAYLOAD + 1, &out, &len), -EMSGSIZE);
    assert_null(out);
    json_decref(arr);
    json_decref(obj);
}

/* Three frames (one with a payload, one with NUL in a string), fed split at
 * every byte boundary and one byte at a time, come out the same. */
static void test_split_everywhere(void **state)
{
    size_t l1, l2, l3;
    _cleanup_free_ unsigned char *a = encode("{\"id\":1,\"op\":\"tool\",\"name\":\"bash\",\"input\":{\"command\":\"ls\"}}", NULL, 0, &l1);
    _cleanup_free_ unsigned char *b = encode("{\"id\":2,\"op\":\"skill_install\",\"dir\":\"x\"}", "\0\1\2\3", 4, &l2);
    _cleanup_free_ unsigned char *c = encode("{\"id\":3,\"text\":\"a\\u0000b\"}", NULL, 0, &l3);
    size_t total = l1 + l2 + l3;
    _cleanup_free_ unsigned char *all = al_xmalloc(total);

    memcpy(all, a, l1);
    memcpy(all + l1, b, l2);
    memcpy(all + l1 + l2, c, l3);
    for (size_t step = 0; step <= total; step++) {
        struct al_frame_reader r = { 0 };
        struct al_frame f;
        int64_t ids[3];
        size_t n = 0;
        for (size_t at = 0; at < total;) {
            size_t k = step == 0 ? 1 : AL_MIN(step, total - at);
            if (step == total)
                k = at == 0 ? 7 % total : total - at;   /* one split at byte 7 */
            ASSERT_OK(al_frame_reader_feed(&r, all + at, k));
            at += k;
            int got;
            while ((got = al_frame_reader_next(&r, &f)) == 1) {
                assert_true(n < 3);
                ids[n++] = json_integer_value(json_object_get(f.msg, "id"));
                if (ids[n - 1] == 2)
                    ASSERT_MEM_EQ(f.payload, f.payload_len, "\0\1\2\3", 4);
                if (ids[n - 1] == 3)
                    ASSERT_I64_EQ(json_string_length(json_object_get(f.msg, "text")), 3);
                al_frame_done(&f);
            }
            ASSERT_OK(got);
        }
        ASSERT_I64_EQ(n, 3);
        ASSERT_I64_EQ(ids[0], 1);
        ASSERT_I64_EQ(ids[1], 2);
        ASSERT_I64_EQ(ids[2], 3);
        ASSERT_I64_EQ(r.len, 0);
        al_frame_reader_done(&r);
    }
}

static int next_of(const unsigned char *buf, size_t len)
{
    struct al_frame_reader r = { 0 };
    struct al_frame f;
    int ret = al_frame_reader_feed(&r, buf, len);

    if (ret == 0) {
        ret = al_frame_reader_next(&r, &f);
        if (ret == 1)
            al_frame_done(&f);
    }
    al_frame_reader_done(&r);
    return ret;
}

static void test_malformed(void **state)
{
    unsigned char buf[256];

    ASSERT_RET(next_of(buf, raw(buf, 0, "")), -EPROTO);                /* empty frame */
    ASSERT_RET(next_of(buf, raw(buf, 3, "[1]")), -EPROTO);             /* not an object */
    ASSERT_RET(next_of(buf, raw(buf, 5, "{\"a\":")), -EPROTO);         /* bad JSON */
    ASSERT_RET(next_of(buf, raw(buf, 4, "{}{}")), -EPROTO);            /* trailing data */
    ASSERT_RET(next_of(buf, raw(buf, 4, "{}\xff ")), -EPROTO);
    ASSERT_RET(next_of(buf, raw(buf, 6, "\"\xff\xfe\"{}")), -EPROTO);  /* bad UTF-8 */
    ASSERT_RET(next_of(buf, raw(buf, 15, "{\"payload\":\"3\"}")), -EPROTO);
    ASSERT_RET(next_of(buf, raw(buf, 14, "{\"payload\":-1}")), -EPROTO);
    ASSERT_RET(next_of(buf, raw(buf, 15, "{\"payload\":1.5}")), -EPROTO);
    ASSERT_RET(next_of(buf, raw(buf, 2, "{}")), 1);
    ASSERT_RET(next_of(buf, raw(buf, 13, "{\"payload\":2}")), 0);          /* payload pending */
    ASSERT_RET(next_of(buf, raw(buf, 13, "{\"payload\":0}xx")), 1);
    ASSERT_RET(next_of(buf, 3), 0);                                        /* header pending */
}

static void test_caps(void **state)
{
    unsigned char buf[64];
    char big[64];

    /* A header over the JSON cap fails as soon as it is complete. */
    ASSERT_RET(next_of(buf, raw(buf, AL_FRAME_MAX_JSON + 1, "{}")), -EPROTO);
    ASSERT_RET(next_of(buf, 4), -EPROTO);
    raw(buf, 0xffffffffu, "");
    ASSERT_RET(next_of(buf, 4), -EPROTO);
    ASSERT_RET(next_of(buf, raw(buf, AL_FRAME_MAX_JSON, "{}")), 0);
    /* A payload over its cap is refused once the JSON is complete, before
     * any of it is buffered. */
    int n = snprintf(big, sizeof(big), "{\"payload\":%u}", AL_FRAME_MAX_PAYLOAD + 1);
    ASSERT_RET(next_of(buf, raw(buf, (uint32_t) n, big)), -EPROTO);
    n = snprintf(big, sizeof(big), "{\"payload\":%u}", AL_FRAME_MAX_PAYLOAD);
    ASSERT_RET(next_of(buf, raw(buf, (uint32_t) n, big)), 0);
}

/* The backstop: a caller that never takes frames cannot grow the buffer
 * past two maximal frames. */
static void test_feed_backstop(void **state)
{
    struct al_frame_reader r = { 0 };
    size_t max = 2 * ((size_t) 4 + AL_FRAME_MAX_JSON + AL_FRAME_MAX_PAYLOAD);
    unsigned char *big = al_xcalloc(1, max + 1);

    ASSERT_RET(al_frame_reader_feed(&r, big, max + 1), -EMSGSIZE);
    ASSERT_OK(al_frame_reader_feed(&r, big, 10));
    ASSERT_RET(al_frame_reader_feed(&r, big, max - 9), -EMSGSIZE);
    al_frame_reader_done(&r);
    free(big);
}

static void test_fd_helpers(void **state)
{
    int sv[2];
    struct al_frame_reader r = { 0 };
    struct al_frame f;
    json_t *m = json_pack("{s:I, s:s}", "id", (json_int_t) 7, "op", "skill_install");
    static unsigned char payload[300000];

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (unsigned char) (i * 7);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    if (fork() == 0) {
        (void) close(sv[0]);
        int rc = al_frame_write_fd(sv[1], m, payload, sizeof(payload)) == 0 &&
                 al_frame_write_fd(sv[1], m, NULL, 0) == 0;
        _exit(rc ? 0 : 1);
    }
    (void) close(sv[1]);
    ASSERT_RET(al_frame_read_fd(sv[0], &r, &f), 1);
    ASSERT_MEM_EQ(f.payload, f.payload_len, payload, sizeof(payload));
    al_frame_done(&f);
    ASSERT_RET(al_frame_read_fd(sv[0], &r, &f), 1);
    assert_null(f.payload);
    ASSERT_I64_EQ(json_integer_value(json_object_get(f.msg, "id")), 7);
    al_frame_done(&f);
    ASSERT_RET(al_frame_read_fd(sv[0], &r, &f), 0);     /* clean EOF */
    int st;
    assert_true(wait(&st) > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    (void) close(sv[0]);
    al_frame_reader_done(&r);

    /* EOF inside a frame is a protocol error; a closed peer is -EPIPE. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(write(sv[1], "\0\0\0\x05{}", 6), 6);
    (void) close(sv[1]);
    ASSERT_RET(al_frame_read_fd(sv[0], &r, &f), -EPROTO);
    al_frame_reader_done(&r);
    ASSERT_RET(al_frame_write_fd(sv[0], m, NULL, 0), -EPIPE);
    (void) close(sv[0]);
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_layout),
        cmocka_unit_test(test_encode_payload_sets_length),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_feed_backstop),
        cmocka_unit_test(test_fd_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
