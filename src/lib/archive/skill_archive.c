/* SPDX-License-Identifier: Apache-2.0 */
/* Skill archives: one libarchive pass over a zip or a tar (gzip, bzip2, xz,
 * lzma, lzip, zstd, lz4 or compress) that applies the SDK worker's member
 * rules (spec §7). The reader is shared by the hub's upload inspection,
 * which also reads SKILL.md's front matter, and the sandbox's extractor.
 * Pure: it reads only the caller's buffer (libc loads its C.UTF-8 locale
 * once), never runs helper programs, keeps no global state and does not
 * log, so any thread may call it. It is CPU-bound, with the decompression
 * it may do capped. */
#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "skill_archive.h"

/* Skipping a member of a compressed tar means decompressing it, so the sum
 * of declared member sizes is capped (AL_SKILL_UNPACKED_MAX): without it a
 * 32 MiB bzip2 upload could cost minutes of CPU. Both caps give -E2BIG. */
#define ERROR_SIZE 256
_Static_assert(sizeof(((struct al_skill_info *) 0)->error) == ERROR_SIZE, "error buffer");
_Static_assert(sizeof(((struct al_skill_reader *) 0)->error) == ERROR_SIZE, "error buffer");

struct comp {
    const char *p;
    size_t len;
};

struct line {
    const char *p;
    size_t len;
};

/* State of one inspection. Only extracted (OK) members decide the wrapper. */
struct scan {
    struct al_skill_info *info;
    struct al_skill_reader rd;
    char *top;           /* top-level name of the first extracted member */
    bool top_is_dir;
    bool many_tops;
    char *md_root;       /* "SKILL.md" */
    size_t md_root_n;
    char *md_sub;        /* "<top>/SKILL.md" */
    size_t md_sub_n;
};

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* A component, split at '/' or '\\', equal to "..". Backslash separates too
 * because zip archives written on Windows use it and some extractors
 * translate it; refusing such a name costs nothing legitimate. */
static bool has_dotdot(const char *name)
{
    for (const char *p = name;;) {
        size_t len = strcspn(p, "/\\");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return true;
        if (!p[len])
            return false;
        p += len + 1;
    }
}

static bool path_is_safe(const char *name)
{
    if (!name || !name[0] || name[0] == '/' || name[0] == '\\')
        return false;
    for (const char *p = name; *p; p++)
        if (is_ctl((unsigned char) *p))
            return false;
    return !has_dotdot(name);
}

/* The SDK worker hands excluded names to tar --exclude or unzip -x, and only
 * trusts names that need no quoting there. */
static bool special_name_is_plain(const char *name)
{
    for (const unsigned char *p = (const unsigned char *) name; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '\\' || *p == '^' || *p == '#')
            return false;
    return true;
}

enum al_member_verdict al_skill_member_check(const char *name, bool is_regular, bool is_dir)
{
    if (!path_is_safe(name))
        return AL_MEMBER_REFUSED;
    if (is_regular || is_dir)
        return AL_MEMBER_OK;
    return special_name_is_plain(name) ? AL_MEMBER_EXCLUDED : AL_MEMBER_REFUSED;
}

void al_skill_info_done(struct al_skill_info *info)
{
    if (!info)
        return;
    free(info->name);
    free(info->description);
    free(info->directory);
    info->name = info->description = info->directory = NULL;
}

_printf_(3, 4) static int fail(char error[ERROR_SIZE], int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void) vsnprintf(error, ERROR_SIZE, fmt, ap);
    va_end(ap);
    return r;
}

const char *al_skill_safe_text(const char *s, char *buf, size_t size)
{
    size_t j = 0, i;
    for (i = 0; s && s[i] && j + 4 < size; i++)
        buf[j++] = is_ctl((unsigned char) s[i]) || (unsigned char) s[i] > 0x7e ? '?' : s[i];
    if (s && s[i])
        j += (size_t) snprintf(buf + j, size - j, "...");
    buf[j] = '\0';
    return buf;
}

/* ---- front matter ------------------------------------------------------ */

/* Next line of s[*pos..n) without its newline and trailing blanks. */
static bool next_line(const char *s, size_t n, size_t *pos, struct line *l)
{
    if (*pos >= n)
        return false;
    const char *p = s + *pos;
    const char *nl = memchr(p, '\n', n - *pos);
    size_t len = nl ? (size_t) (nl - p) : n - *pos;
    *pos += len + (nl ? 1 : 0);
    while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    *l = (struct line){ p, len };
    return true;
}

static bool line_is(struct line l, const char *s)
{
    return l.len == strlen(s) && memcmp(l.p, s, l.len) == 0;
}

static struct line skip_blanks(struct line l)
{
    while (l.len && (*l.p == ' ' || *l.p == '\t'))
        l.p++, l.len--;
    return l;
}

/* "key:" at column 0, followed by a blank or the end of the line. */
static bool key_is(struct line l, const char *key, struct line *rest)
{
    size_t k = strlen(key);
    if (l.len <= k || memcmp(l.p, key, k) != 0 || l.p[k] != ':')
        return false;
    if (l.len > k + 1 && l.p[k + 1] != ' ' && l.p[k + 1] != '\t')
        return false;
    *rest = skip_blanks((struct line){ l.p + k + 1, l.len - k - 1 });
    return true;
}

/* The next line if it continues a value (blank or indented); else *pos is
 * left where it was. */
static bool next_continuation(const char *s, size_t n, size_t *pos, struct line *l)
{
    size_t save = *pos;
    if (!next_line(s, n, pos, l))
        return false;
    if (l->len == 0 || l->p[0] == ' ' || l->p[0] == '\t')
        return true;
    *pos = save;
    return false;
}

static void put(char *out, size_t *o, const char *p, size_t len)
{
    memcpy(out + *o, p, len);
    *o += len;
}

/* Block scalar ("|" keeps line breaks, ">" folds them into spaces): the
 * indentation of its first line is removed from each line. */
static void block_value(char style, const char *s, size_t n, size_t *pos, char *out, size_t *o)
{
    struct line l;
    size_t indent = SIZE_MAX;
    bool fold = false;   /* the previous line had text: ">" joins with a space */
    while (next_continuation(s, n, pos, &l)) {
        size_t lead = (size_t) (skip_blanks(l).p - l.p);
        if (l.len && indent == SIZE_MAX)
            indent = lead;
        if (*o && (style == '|' || !l.len))
            out[(*o)++] = '\n';
        else if (*o && fold)
            out[(*o)++] = ' ';
        if (l.len)
            put(out, o, l.p + AL_MIN(lead, indent), l.len - AL_MIN(lead, indent));
        fold = l.len != 0;
    }
}

/* Quoted scalar: ends at its closing quote; '' is a quote inside '...',
 * and \" \\ \n \t are understood inside "...". */
static void unquote(char *v, size_t *len)
{
    char q = v[0];
    size_t o = 0;
    for (size_t i = 1; i < *len; i++) {
        char c = v[i];
        if (c == q && q == '\'' && i + 1 < *len && v[i + 1] == '\'')
            i++;
        else if (c == q)
            break;
        else if (c == '\\' && q == '"' && i + 1 < *len) {
            c = v[++i];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        }
        v[o++] = c;
    }
    *len = o;
}

/* Valid UTF-8 (RFC 3629) with no control character but \n and \t: what
 * the hub can put in JSON and show. */
static bool text_is_clean(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s, *end = p + n;
    while (p < end) {
        unsigned c = *p, k, lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            if (is_ctl((unsigned char) c) && c != '\n' && c != '\t')
                return false;
            p++;
            continue;
        }
        k = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
        lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : lo;
        hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : hi;
        if (!k || (size_t) (end - p) <= k || p[1] < lo || p[1] > hi)
            return false;
        for (unsigned i = 2; i <= k; i++)
            if ((p[i] & 0xc0) != 0x80)
                return false;
        p += k + 1;
    }
    return true;
}

/* The value starting at rest, continued on indented lines. Returns a new
 * string, or NULL when it is empty or not clean text. */
static char *parse_value(struct line rest, const char *s, size_t n, size_t *pos)
{
    _cleanup_free_ char *out = al_xmalloc(n + 1);
    struct line l;
    size_t o = 0;

    if (rest.len && (rest.p[0] == '|' || rest.p[0] == '>'))
        block_value(rest.p[0], s, n, pos, out, &o);
    else {
        put(out, &o, rest.p, rest.len);
        while (next_continuation(s, n, pos, &l))
            if (l.len) {
                l = skip_blanks(l);
                out[o++] = ' ';
                put(out, &o, l.p, l.len);
            }
        if (o && (out[0] == '"' || out[0] == '\''))
            unquote(out, &o);
        else
            for (size_t i = 1; i < o; i++)
                if (out[i] == '#' && (out[i - 1] == ' ' || out[i - 1] == '\t')) {
                    o = i;   /* plain scalar: " #" starts a comment */
                    break;
                }
    }
    struct line v = skip_blanks((struct line){ out, o });
    while (v.len && strchr(" \t\n", v.p[v.len - 1]))
        v.len--;
    if (!v.len || !text_is_clean(v.p, v.len))
        return NULL;
    return al_xstrndup(v.p, v.len);
}

/* Top-level "name:" and "description:" between a first line "---" and the
 * next "---" (or "..."). Without both delimiters there is no front matter.
 * A repeated key keeps its last value, as most YAML loaders do. */
static void parse_front_matter(const char *s, size_t n, struct al_skill_info *info)
{
    size_t pos = 0, body, end = 0;
    struct line l, rest;

    if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
        pos = 3;
    if (!next_line(s, n, &pos, &l) || !line_is(l, "---"))
        return;
    body = pos;
    do {
        end = pos;
        if (!next_line(s, n, &pos, &l))
            return;
    } while (!line_is(l, "---") && !line_is(l, "..."));

    s += body;
    n = end - body;
    pos = 0;
    while (next_line(s, n, &pos, &l)) {
        char **slot = key_is(l, "name", &rest) ? &info->name
                    : key_is(l, "description", &rest) ? &info->description : NULL;
        if (!slot)
            continue;
        free(*slot);
        *slot = parse_value(rest, s, n, &pos);
    }
}

/* ---- the reader ---------------------------------------------------------- */

static int reader_fail(struct al_skill_reader *rd)
{
    char buf[160];
    const char *msg = archive_error_string(rd->a);
    if (rd->entries == 0)
        return fail(rd->error, -EBADMSG, "not a zip or tar archive (%s)",
                    al_skill_safe_text(msg ? msg : "unrecognized", buf, sizeof(buf)));
    return fail(rd->error, -EBADMSG, "damaged archive: %s",
                al_skill_safe_text(msg ? msg : "read error", buf, sizeof(buf)));
}

/* Charges decompressed bytes against the caps. */
static int charge(struct al_skill_reader *rd, uint64_t bytes)
{
    rd->unpacked += bytes;
    if (rd->unpacked > AL_SKILL_UNPACKED_MAX || (uint64_t) archive_filter_bytes(rd->a, 0) > AL_SKILL_STREAM_MAX)
        return fail(rd->error, -E2BIG, "archive unpacks to more than %u MiB",
                    (unsigned) (AL_SKILL_UNPACKED_MAX >> 20));
    return 0;
}

static uint64_t entry_size(struct archive_entry *e)
{
    return archive_entry_size_is_set(e) && archive_entry_size(e) > 0 ? (uint64_t) archive_entry_size(e) : 0;
}

/* The SDK worker runs unzip when the upload starts with a zip local file
 * header and tar otherwise; an archive it would misread is refused here. */
static int check_format(struct al_skill_reader *rd, const void *data, size_t n)
{
    bool pk = n >= 4 && memcmp(data, "PK\3\4", 4) == 0;

    rd->zip = (archive_format(rd->a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_ZIP;
    if (rd->zip && !pk)
        return fail(rd->error, -EBADMSG, "zip archive does not start with a local file header");
    if (!rd->zip && pk)
        return fail(rd->error, -EBADMSG, "starts like a zip archive but is not one");
    return 0;
}

int al_skill_reader_open(struct al_skill_reader *rd, const void *data, size_t n)
{
    *rd = (struct al_skill_reader){ 0 };
    if (!data || n == 0)
        return fail(rd->error, -EBADMSG, "empty upload");
    /* libarchive converts zip names flagged UTF-8 to the thread's charset,
     * and in the C locale a non-ASCII name converts to nothing at all. This
     * thread reads in C.UTF-8; without it such names are refused. */
    rd->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
    if (rd->utf8)
        rd->saved = uselocale(rd->utf8);
    rd->a = archive_read_new();
    if (!rd->a)
        return fail(rd->error, -ENOMEM, "out of memory");
    if (archive_read_support_format_tar(rd->a) != ARCHIVE_OK ||
        archive_read_support_format_zip_seekable(rd->a) != ARCHIVE_OK ||
        archive_read_support_filter_compress(rd->a) != ARCHIVE_OK)
        return fail(rd->error, -ENOMEM, "cannot set up the archive reader");
    /* Zip is read from its central directory, as unzip does, so both see
     * the same members. Each filter is enabled only when its library is
     * linked in: otherwise libarchive would run an external program, which
     * this module must never do. */
    if (archive_zlib_version())
        (void) archive_read_support_filter_gzip(rd->a);
    if (archive_bzlib_version())
        (void) archive_read_support_filter_bzip2(rd->a);
    if (archive_liblzma_version()) {
        (void) archive_read_support_filter_xz(rd->a);
        (void) archive_read_support_filter_lzma(rd->a);
        (void) archive_read_support_filter_lzip(rd->a);
    }
    if (archive_libzstd_version())
        (void) archive_read_support_filter_zstd(rd->a);
    if (archive_liblz4_version())
        (void) archive_read_support_filter_lz4(rd->a);
    if (archive_read_open_memory(rd->a, data, n) != ARCHIVE_OK)
        return reader_fail(rd);
    rd->data = data;
    rd->len = n;
    return 0;
}

void al_skill_reader_done(struct al_skill_reader *rd)
{
    if (rd->a)
        (void) archive_read_free(rd->a);
    rd->a = NULL;
    if (rd->utf8) {
        (void) uselocale(rd->saved);
        freelocale(rd->utf8);
        rd->utf8 = (locale_t) 0;
    }
}

/* Counts and classifies a member the SDK worker's way. */
static int reader_check(struct al_skill_reader *rd, struct archive_entry *e, const char *name,
                        enum al_member_verdict *ret_verdict)
{
    unsigned type = archive_entry_filetype(e);
    bool is_reg = type == AE_IFREG && !archive_entry_hardlink(e);
    bool is_dir = type == AE_IFDIR && !archive_entry_hardlink(e);
    char buf[160];
    int r;

    if (++rd->entries > AL_SKILL_MAX_MEMBERS)
        return fail(rd->error, -E2BIG, "archive has more than %d members", AL_SKILL_MAX_MEMBERS);
    rd->names += (name ? strlen(name) : 0) + 1;
    if (rd->names > AL_SKILL_NAMES_MAX)
        return fail(rd->error, -E2BIG, "member names add up to more than %u KiB",
                    (unsigned) (AL_SKILL_NAMES_MAX >> 10));
    rd->declared = entry_size(e);
    rd->read = 0;
    r = charge(rd, rd->declared);
    if (r < 0)
        return r;

    enum al_member_verdict v = al_skill_member_check(name, is_reg, is_dir);
    if (v == AL_MEMBER_EXCLUDED && rd->zip && name && name[0] == '-')
        v = AL_MEMBER_REFUSED;   /* unzip would read it as an option */
    if (v == AL_MEMBER_REFUSED)
        return fail(rd->error, -EPERM, "refusing to extract unsafe archive %smember \"%s\"",
                    path_is_safe(name) ? "special " : "", al_skill_safe_text(name, buf, sizeof(buf)));
    *ret_verdict = v;
    return 0;
}

int al_skill_reader_next(struct al_skill_reader *rd, struct archive_entry **ret_entry,
                         const char **ret_name, enum al_member_verdict *ret_verdict)
{
    struct archive_entry *e;
    const char *name;
    int r = archive_read_next_header(rd->a, &e);

    if (r == ARCHIVE_EOF)
        return 0;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        return reader_fail(rd);
    if (rd->entries == 0 && (r = check_format(rd, rd->data, rd->len)) < 0)
        return r;
    name = archive_entry_pathname(e);
    if (!name)
        name = archive_entry_pathname_utf8(e);
    if (!name)
        return fail(rd->error, -EBADMSG, "archive member without a name");
    r = reader_check(rd, e, name, ret_verdict);
    if (r < 0)
        return r;
    *ret_entry = e;
    *ret_name = name;
    return 1;
}

ssize_t al_skill_reader_data(struct al_skill_reader *rd, void *buf, size_t n)
{
    la_ssize_t got = archive_read_data(rd->a, buf, n);
    uint64_t before = AL_MAX(rd->read, rd->declared);
    int r;

    if (got < 0)
        return reader_fail(rd);
    rd->read += (uint64_t) got;
    /* Overlapping zip members can each inflate the same data: count what
     * goes beyond the declared size, and the stream as it grows. */
    r = charge(rd, AL_MAX(rd->read, rd->declared) - before);
    return r < 0 ? r : (ssize_t) got;
}

/* ---- inspection ---------------------------------------------------------- */

static void scan_done(struct scan *s)
{
    al_skill_reader_done(&s->rd);
    free(s->top);
    free(s->md_root);
    free(s->md_sub);
}

/* Splits name into components the way extraction resolves it, skipping empty
 * and "." ones. Fills the first two and returns the count, at most 3. */
static size_t split_path(const char *name, struct comp c[2])
{
    size_t k = 0;
    for (const char *p = name; *p;) {
        size_t len = strcspn(p, "/");
        if (len && !(len == 1 && p[0] == '.')) {
            if (k < 2)
                c[k] = (struct comp){ p, len };
            if (++k == 3)
                break;
        }
        p += len;
        p += *p == '/';
    }
    return k;
}

static bool comp_is(struct comp c, const char *s)
{
    return c.len == strlen(s) && memcmp(c.p, s, c.len) == 0;
}

/* Reads the current member (at most AL_SKILL_MD_MAX bytes) into *buf. */
static int read_md(struct scan *s, char **buf, size_t *n)
{
    size_t got = 0;

    free(*buf);
    *buf = al_xmalloc(AL_SKILL_MD_MAX);
    *n = 0;
    while (got < AL_SKILL_MD_MAX) {
        ssize_t r = al_skill_reader_data(&s->rd, *buf + got, AL_SKILL_MD_MAX - got);
        if (r < 0)
            return (int) r;
        if (r == 0)
            break;
        got += (size_t) r;
    }
    *n = got;
    return 0;
}

/* Records an extracted member's place: the wrapper candidate, SKILL.md. */
static int track(struct scan *s, struct archive_entry *e, const char *name)
{
    unsigned type = archive_entry_filetype(e);
    bool is_reg = type == AE_IFREG, is_dir = type == AE_IFDIR;
    struct comp c[2];
    size_t k = split_path(name, c);

    if (k == 0)
        return 0;
    if (!s->top)
        s->top = al_xstrndup(c[0].p, c[0].len);
    bool same = comp_is(c[0], s->top);
    if (!same)
        s->many_tops = true;
    else if (k > 1 || is_dir)
        s->top_is_dir = true;
    if (!is_reg)
        return 0;
    if (k == 1 && comp_is(c[0], "SKILL.md"))
        return read_md(s, &s->md_root, &s->md_root_n);
    if (k == 2 && same && comp_is(c[1], "SKILL.md"))
        return read_md(s, &s->md_sub, &s->md_sub_n);
    return 0;
}

/* The skill root is the single top-level directory when every extracted
 * member is inside it (the worker strips it), else the archive root. */
static int finish(struct scan *s)
{
    struct al_skill_info *info = s->info;
    char buf[96];

    if (s->top && s->top_is_dir && !s->many_tops) {
        if (!s->md_sub)
            return fail(info->error, -ENOENT, "no SKILL.md in the wrapper directory \"%s\"",
                        al_skill_safe_text(s->top, buf, sizeof(buf)));
        parse_front_matter(s->md_sub, s->md_sub_n, info);
        info->directory = TAKE_PTR(s->top);
        return 0;
    }
    if (!s->md_root)
        return fail(info->error, -ENOENT, "no SKILL.md at the top level or in a single wrapper directory");
    parse_front_matter(s->md_root, s->md_root_n, info);
    return 0;
}

static int scan_all(struct scan *s, const void *data, size_t n)
{
    struct archive_entry *e = NULL;
    const char *name = NULL;
    enum al_member_verdict v = AL_MEMBER_REFUSED;
    int r = al_skill_reader_open(&s->rd, data, n);

    while (r >= 0 && (r = al_skill_reader_next(&s->rd, &e, &name, &v)) > 0) {
        if (!e || !name) {               /* not reached: a member has both */
            r = -EBADMSG;
            break;
        }
        if (v == AL_MEMBER_EXCLUDED) {
            s->info->excluded++;
            continue;
        }
        s->info->members++;
        r = track(s, e, name);
    }
    if (r < 0) {
        (void) snprintf(s->info->error, ERROR_SIZE, "%s", s->rd.error);
        return r;
    }
    return finish(s);
}

int al_skill_archive_inspect(const void *data, size_t n, struct al_skill_info *info)
{
    _cleanup_(scan_done) struct scan s = { .info = info };

    *info = (struct al_skill_info){ 0 };
    return scan_all(&s, data, n);
}
