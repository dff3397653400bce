/* SPDX-License-Identifier: Apache-2.0 */
/* The read, write and edit tools (spec §6.4-§6.6) with the SDK's texts.
 * Paths are confined by al_confine() and opened with al_open_beneath().
 * Text is decoded as Node's 'utf8' decoding does (WHATWG replacement; a BOM
 * is kept). Deliberate differences from the SDK, all on inputs the schema
 * does not allow: a non-string file_path/content is treated as missing, a
 * non-numeric view_range bound as NaN (JS would coerce "2" to 2). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "../lib/base/buf.h"
#include "../lib/base/utf8.h"

#define READ_MAX_FILE_BYTES (256 * 1024)
#define READ_CHUNK_BYTES    (64 * 1024)

static const char *input_str(const json_t *input, const char *key)
{
    const json_t *v = json_object_get(input, key);
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    return s && *s ? s : NULL;
}

static int fs_error(struct al_tool_result *r, const char *tool, const char *p, int err)
{
    char buf[48];
    al_tool_result_set(r, true, "%s: %s: %s", tool, p, al_fs_errmsg(err, buf));
    return 0;
}

/* Reads fd to EOF, at most max bytes (the file may grow after fstat). */
static int read_all(int fd, size_t max, struct al_buf *out)
{
    char chunk[READ_CHUNK_BYTES];

    out->max = max;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        size_t room = out->max - out->len;
        if (al_buf_append(out, chunk, AL_MIN((size_t) n, room)) < 0 || (size_t) n > room)
            return 0;
    }
}

/* Opens a confined path for reading after checking, without opening it,
 * that it is a regular file (a FIFO would block). Returns an fd, or -errno,
 * or -EBADFD for "not a regular file"; *size gets the stat size. */
static int open_regular(const struct al_tool_ctx *c, const char *abs, off_t *size)
{
    _cleanup_close_ int pfd = al_open_beneath(c, abs, O_PATH, 0);
    struct stat st;

    if (pfd < 0)
        return pfd;
    if (fstat(pfd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EBADFD;
    *size = st.st_size;
    int fd = al_open_beneath(c, abs, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        (void) close(fd);
        return -EBADFD;
    }
    return fd;
}

/* JS Number to text as `${n}` prints the integral values we see. */
static void js_num(double v, char buf[static 32])
{
    if (isnan(v))
        (void) snprintf(buf, 32, "NaN");
    else if (isinf(v))
        (void) snprintf(buf, 32, v > 0 ? "Infinity" : "-Infinity");
    else if (v == trunc(v) && fabs(v) < 1e21)
        (void) snprintf(buf, 32, "%.0f", v);
    else
        (void) snprintf(buf, 32, "%.17g", v);
}

static double range_num(const json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The SDK's LineRangeCollector: the bytes of lines [start, end) read in
 * chunks, erroring when they pass limit. Returns 0 with r set. */
static int read_range_streaming(int fd, const char *p, double a, double b, size_t limit,
                                struct al_tool_result *r)
{
    double start = fmax(0, isnan(a - 1) ? NAN : a - 1), end = b > 0 ? b : INFINITY;
    struct al_buf out = { .max = limit + 1 };
    char chunk[READ_CHUNK_BYTES];
    double line = 0;
    bool over = false;

    if (isnan(a - 1))
        start = NAN;
    if (!(end > start)) {
        al_tool_result_set(r, false, "%s", "");
        return 0;
    }
    while (line < end && !over) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            al_buf_clear(&out);
            return fs_error(r, "read", p, errno);
        }
        if (n == 0)
            break;
        size_t ls = 0;
        while (ls < (size_t) n && line < end) {
            const char *nl = memchr(chunk + ls, '\n', (size_t) n - ls);
            size_t le = nl ? (size_t) (nl - chunk) : (size_t) n;
            if (line >= start) {
                size_t add = le - ls + (nl && line + 1 < end ? 1 : 0);
                if (out.len + add > limit) {
                    over = true;
                    break;
                }
                if (al_buf_append(&out, chunk + ls, le - ls) < 0 ||
                    (nl && line + 1 < end && al_buf_append(&out, "\n", 1) < 0))
                    abort();
            }
            if (!nl)
                break;
            line++;
            ls = le + 1;
        }
    }
    if (over) {
        char sa[32], sb[32], sl[32];
        al_buf_clear(&out);
        if (end - start == 1) {
            js_num(start + 1, sl);
            al_tool_result_set(r, true,
                               "read: line %s of %s alone exceeds %zu-byte limit. The read tool cannot "
                               "return part of a line, so view_range cannot narrow this further.",
                               sl, p, limit);
        } else {
            js_num(a, sa);
            js_num(b, sb);
            al_tool_result_set(r, true,
                               "read: view_range [%s, %s] of %s exceeds %zu-byte limit. Narrow the "
                               "view_range to read a smaller portion.",
                               sa, sb, p, limit);
        }
        return 0;
    }
    r->is_error = false;
    r->text = al_utf8_repair(out.data ? out.data : "", out.len, &r->len);
    al_buf_clear(&out);
    return 0;
}

/* lines.slice(start, end).join('\n') over text split on '\n'. */
static void slice_lines(const char *s, size_t n, double a, double b, struct al_tool_result *r)
{
    size_t nlines = 1;
    for (size_t i = 0; i < n; i++)
        nlines += s[i] == '\n';
    double start = isnan(a - 1) ? 0 : fmax(0, trunc(a - 1 > 0 ? a - 1 : 0));
    double end = b > 0 ? trunc(b) : (double) nlines;
    if (end > (double) nlines)
        end = (double) nlines;
    if (start >= end) {
        al_tool_result_set(r, false, "%s", "");
        return;
    }
    size_t line = 0, from = 0, to = n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n')
            continue;
        line++;
        if (line == (size_t) start)
            from = i + 1;
        if (line == (size_t) end) {
            to = i;
            break;
        }
    }
    r->is_error = false;
    r->len = to - from;
    r->text = al_xmalloc(r->len + 1);
    memcpy(r->text, s + from, r->len);
    r->text[r->len] = '\0';
}

int al_tool_read(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r)
{
    const char *p = input_str(input, "file_path");
    const json_t *vr = json_object_get(input, "view_range");
    _cleanup_free_ char *abs = NULL;
    _cleanup_close_ int fd = -1;
    off_t size = 0;

    if (!p) {
        al_tool_result_set(r, true, "read: file_path is required");
        return 0;
    }
    if (al_confine(c, p, &abs, r))
        return 0;
    size_t vn = json_is_array(vr) ? json_array_size(vr) : 0;
    if (vn && vn != 2) {
        al_tool_result_set(r, true, "read: view_range must be [start_line, end_line]");
        return 0;
    }
    fd = open_regular(c, abs, &size);
    if (fd == -EBADFD) {
        al_tool_result_set(r, true, "read: %s is not a regular file", p);
        return 0;
    }
    if (fd < 0)
        return fs_error(r, "read", p, -fd);
    double a = vn ? range_num(json_array_get(vr, 0)) : 0, b = vn ? range_num(json_array_get(vr, 1)) : 0;
    if ((uint64_t) size > READ_MAX_FILE_BYTES) {
        if (!vn) {
            al_tool_result_set(r, true,
                               "read: %s is %lld bytes, exceeds %d-byte limit. Use the view_range "
                               "parameter to read specific line ranges, e.g. view_range: [1, 500].",
                               p, (long long) size, READ_MAX_FILE_BYTES);
            return 0;
        }
        return read_range_streaming(fd, p, a, b, READ_MAX_FILE_BYTES, r);
    }
    struct al_buf data = { 0 };
    /* The SDK reads whatever is there by then; we stop at 4x the cap. */
    int e = read_all(fd, 4 * READ_MAX_FILE_BYTES, &data);
    if (e < 0) {
        al_buf_clear(&data);
        return fs_error(r, "read", p, -e);
    }
    size_t tn;
    _cleanup_free_ char *text = al_utf8_repair(data.data ? data.data : "", data.len, &tn);
    al_buf_clear(&data);
    if (!vn) {
        r->is_error = false;
        r->text = TAKE_PTR(text);
        r->len = tn;
        return 0;
    }
    slice_lines(text, tn, a, b, r);
    return 0;
}

static char *path_base(const char *abs)
{
    return al_xstrdup(strrchr(abs, '/') + 1);
}

static char *path_dir(const char *abs)
{
    const char *s = strrchr(abs, '/');
    return s == abs ? al_xstrdup("/") : al_xstrndup(abs, (size_t) (s - abs));
}

/* Writes data to the confined abs atomically; parents are created when
 * mkdir_parents. Returns 0 or -errno. */
static int write_confined(const struct al_tool_ctx *c, const char *abs, const char *data, size_t n,
                          bool mkdir_parents)
{
    _cleanup_free_ char *dir = path_dir(abs), *base = path_base(abs);
    _cleanup_close_ int dfd = -1;

    if (strcmp(abs, c->root) == 0)
        return -EISDIR;
    if (mkdir_parents)
        dfd = al_mkdir_beneath(c, dir);
    else
        dfd = al_open_beneath(c, dir, O_PATH | O_DIRECTORY, 0);
    if (dfd < 0)
        return dfd;
    /* renameat/openat need a real directory fd, not O_PATH, for writes. */
    _cleanup_close_ int wfd = al_openat_beneath(dfd, ".", O_RDONLY | O_DIRECTORY, 0);
    if (wfd < 0)
        return wfd;
    return al_atomic_write(wfd, base, data, n);
}

int al_tool_write(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r)
{
    const char *p = input_str(input, "file_path");
    const json_t *cv = json_object_get(input, "content");
    const char *content = json_is_string(cv) ? json_string_value(cv) : "";
    size_t n = json_is_string(cv) ? json_string_length(cv) : 0;
    _cleanup_free_ char *abs = NULL;

    if (!p) {
        al_tool_result_set(r, true, "write: file_path is required");
        return 0;
    }
    if (al_confine(c, p, &abs, r))
        return 0;
    int e = write_confined(c, abs, content, n, true);
    if (e < 0)
        return fs_error(r, "write", p, -e);
    al_tool_result_set(r, false, "wrote %zu bytes to %s", n, p);
    return 0;
}

static size_t count_occurrences(const char *s, size_t n, const char *needle, size_t nn)
{
    size_t k = 0;
    for (const char *q = s; (q = memmem(q, n - (size_t) (q - s), needle, nn)); q += nn)
        k++;
    return k;
}

/* Replaces the first (or every) occurrence, literally. */
static char *replace(const char *s, size_t n, const char *old, size_t on, const char *rep, size_t rn,
                     bool all, size_t *out_len)
{
    struct al_buf b = { .max = SIZE_MAX / 2 };
    const char *q = s;

    for (;;) {
        const char *m = memmem(q, n - (size_t) (q - s), old, on);
        if (!m)
            break;
        if (al_buf_append(&b, q, (size_t) (m - q)) < 0 || al_buf_append(&b, rep, rn) < 0)
            abort();
        q = m + on;
        if (!all)
            break;
    }
    if (al_buf_append(&b, q, n - (size_t) (q - s)) < 0 || al_buf_append(&b, "", 0) < 0)
        abort();
    *out_len = b.len;
    return b.data ? b.data : al_xstrdup("");
}

int al_tool_edit(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r)
{
    const char *p = input_str(input, "file_path");
    const json_t *ov = json_object_get(input, "old_string");
    const json_t *nv = json_object_get(input, "new_string");
    bool all = json_is_true(json_object_get(input, "replace_all"));
    _cleanup_free_ char *abs = NULL;
    _cleanup_close_ int fd = -1;
    off_t size = 0;

    if (!p) {
        al_tool_result_set(r, true, "edit: file_path is required");
        return 0;
    }
    if (!json_is_string(ov) || json_string_length(ov) == 0) {
        al_tool_result_set(r, true, "edit: old_string is required");
        return 0;
    }
    if (al_confine(c, p, &abs, r))
        return 0;
    fd = open_regular(c, abs, &size);
    if (fd == -EBADFD) {
        al_tool_result_set(r, true, "edit: %s is not a regular file", p);
        return 0;
    }
    if (fd < 0)
        return fs_error(r, "edit", p, -fd);
    if ((uint64_t) size > READ_MAX_FILE_BYTES) {
        al_tool_result_set(r, true,
                           "edit: %s is %lld bytes, exceeds %d-byte limit. The edit tool loads the "
                           "whole file and cannot modify a file this large.",
                           p, (long long) size, READ_MAX_FILE_BYTES);
        return 0;
    }
    struct al_buf data = { 0 };
    int e = read_all(fd, 4 * READ_MAX_FILE_BYTES, &data);
    if (e < 0) {
        al_buf_clear(&data);
        return fs_error(r, "edit", p, -e);
    }
    size_t tn;
    _cleanup_free_ char *text = al_utf8_repair(data.data ? data.data : "", data.len, &tn);
    al_buf_clear(&data);

    const char *old = json_string_value(ov);
    size_t on = json_string_length(ov);
    size_t k = count_occurrences(text, tn, old, on);
    if (k == 0) {
        al_tool_result_set(r, true, "edit: old_string not found in %s", p);
        return 0;
    }
    if (k > 1 && !all) {
        al_tool_result_set(r, true, "edit: old_string appears %zu times in %s (must be unique)", k, p);
        return 0;
    }
    /* What JS makes of a new_string that is not a string: join(undefined)
     * separates with ",", a replacer returning undefined inserts
     * "undefined"; null and numbers print as themselves. */
    const char *rep;
    size_t rn;
    _cleanup_free_ char *repbuf = NULL;
    if (json_is_string(nv)) {
        rep = json_string_value(nv);
        rn = json_string_length(nv);
    } else {
        if (!nv)
            repbuf = al_xstrdup(all ? "," : "undefined");
        else if (json_is_null(nv))
            repbuf = al_xstrdup("null");
        else if (json_is_boolean(nv))
            repbuf = al_xstrdup(json_is_true(nv) ? "true" : "false");
        else
            repbuf = json_dumps(nv, JSON_ENCODE_ANY | JSON_COMPACT);
        rep = repbuf ? repbuf : "";
        rn = strlen(rep);
    }
    size_t un;
    _cleanup_free_ char *updated = replace(text, tn, old, on, rep, rn, all, &un);
    e = write_confined(c, abs, updated, un, false);
    if (e < 0) {
        char buf[48];
        al_tool_result_set(r, true, "edit: write: %s: %s", p, al_fs_errmsg(-e, buf));
        return 0;
    }
    al_tool_result_set(r, false, "edited %s (%zu replacement(s))", p, all ? k : 1);
    return 0;
}
