/* SPDX-License-Identifier: Apache-2.0 */
/* Path confinement for the file tools, as the SDK's fs-util.ts does it
 * (spec §6.2), then race-free opening: the SDK checks a path and later opens
 * it by name; we check the same way but open the canonical path relative to
 * the root dirfd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a
 * component swapped for a symlink in between makes the call fail instead of
 * escaping. Only under such a race can our result differ from the SDK's: it
 * would follow the new link (when inside the root) where we report
 * "too many levels of symbolic links" or "i/o error (EXDEV)". */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsutil.h"
#include "../lib/base/buf.h"
#include "../lib/base/log.h"
#include "../lib/base/util.h"

void (*al_fstools_race_hook)(const char *abs);

const char *al_fs_errmsg(int err, char buf[static 48])
{
    switch (err) {
    case ENOENT:       return "no such file or directory";
    case EACCES:
    case EPERM:        return "permission denied";
    case ENOTDIR:      return "not a directory";
    case EISDIR:       return "is a directory";
    case ELOOP:        return "too many levels of symbolic links";
    case ENAMETOOLONG: return "file name too long";
    case ENOSPC:       return "no space left on device";
    case EMFILE:
    case ENFILE:       return "too many open files";
    default: {
        const char *n = al_errno_name(err);
        if (n)
            (void) snprintf(buf, 48, "i/o error (%s)", n);
        else
            (void) snprintf(buf, 48, "i/o error");
        return buf;
    }
    }
}

/* Appends the components of p to the normalised absolute path in b
 * (b->data is "" for the root), collapsing "." and ".." lexically. */
static void path_push(struct al_buf *b, const char *p)
{
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            char *slash = b->len ? memrchr(b->data, '/', b->len) : NULL;
            b->len = slash ? (size_t) (slash - b->data) : 0;
            if (b->data)
                b->data[b->len] = '\0';
        } else if (al_buf_append(b, "/", 1) < 0 || al_buf_append(b, p, n) < 0) {
            abort();
        }
        p += n;
        if (*p == '/')
            p++;
    }
}

char *al_path_resolve(const char *base, const char *p)
{
    struct al_buf b = { .max = SIZE_MAX / 2 };

    if (p[0] != '/')
        path_push(&b, base);
    path_push(&b, p);
    if (b.len == 0)
        return al_xstrdup("/");
    return b.data;
}

bool al_path_within(const char *root, const char *p)
{
    size_t n = strlen(root);

    if (!p)
        return false;
    if (strcmp(root, p) == 0)
        return true;
    if (n > 0 && root[n - 1] == '/')
        return strncmp(root, p, n) == 0;
    return strncmp(root, p, n) == 0 && p[n] == '/';
}

static char *path_dirname(const char *p)
{
    const char *s = strrchr(p, '/');
    if (!s || s == p)
        return al_xstrdup("/");
    return al_xstrndup(p, (size_t) (s - p));
}

/* The tail is kept reversed, as the SDK pushes names while walking up. */
struct tail {
    char **v;
    size_t n;
};

static void tail_clear(struct tail *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

/* base + tail in original order, normalised. */
static char *tail_join(const char *base, const struct tail *t)
{
    char *cur = al_xstrdup(base);
    for (size_t i = t->n; i-- > 0;) {
        char *next = al_path_resolve(cur, t->v[i]);
        free(cur);
        cur = next;
    }
    return cur;
}

int al_path_canonicalize(const char *abs, char **ret)
{
    struct tail tail = { 0 };
    _cleanup_free_ char *prefix = al_xstrdup(abs);
    unsigned hops = 0;
    int r;

    for (;;) {
        char *real = realpath(prefix, NULL);
        if (real) {
            *ret = tail_join(real, &tail);
            free(real);
            tail_clear(&tail);
            return 0;
        }
        int rerr = errno;
        struct stat st;
        if (lstat(prefix, &st) < 0) {
            int lerr = errno;
            if ((lerr != ENOENT && lerr != ENOTDIR) || strcmp(prefix, "/") == 0) {
                r = -lerr;
                goto out;
            }
            const char *s = strrchr(prefix, '/');
            tail.v = al_xrealloc(tail.v, (tail.n + 1) * sizeof(*tail.v));
            tail.v[tail.n++] = al_xstrdup(s + 1);
            char *parent = path_dirname(prefix);
            free(prefix);
            prefix = parent;
            continue;
        }
        if (!S_ISLNK(st.st_mode)) {
            r = -rerr;
            goto out;
        }
        if (++hops > AL_SYMLINK_HOPS_MAX) {
            r = -ELOOP;
            goto out;
        }
        _cleanup_free_ char *dir = path_dirname(prefix);
        _cleanup_free_ char *rdir = realpath(dir, NULL);
        if (!rdir) {
            r = -errno;
            goto out;
        }
        char target[PATH_MAX];
        ssize_t tn = readlink(prefix, target, sizeof(target) - 1);
        if (tn < 0) {
            r = -errno;
            goto out;
        }
        target[tn] = '\0';
        char *joined = al_path_resolve(rdir, target);
        free(prefix);
        prefix = tail_join(joined, &tail);
        free(joined);
        tail_clear(&tail);
    }
out:
    tail_clear(&tail);
    return r;
}

char *al_js_quote(const char *s)
{
    struct al_buf b = { .max = SIZE_MAX / 2 };
    int r = al_buf_append(&b, "\"", 1);

    for (const unsigned char *p = (const unsigned char *) s; *p && r == 0; p++) {
        char esc[8];
        const char *e = NULL;
        switch (*p) {
        case '"':  e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default:
            if (*p < 0x20) {
                (void) snprintf(esc, sizeof(esc), "\\u%04x", *p);
                e = esc;
            }
        }
        r = e ? al_buf_append(&b, e, strlen(e)) : al_buf_append(&b, p, 1);
    }
    if (r < 0 || al_buf_append(&b, "\"", 1) < 0)
        abort();
    return b.data;
}

int al_confine(const struct al_tool_ctx *c, const char *p, char **ret_abs, struct al_tool_result *r)
{
    _cleanup_free_ char *joined = al_path_resolve(c->root, p);
    char *real = NULL;
    int e = al_path_canonicalize(joined, &real);

    if (e < 0) {
        char buf[48];
        _cleanup_free_ char *q = al_js_quote(p);
        al_tool_result_set(r, true, "path %s: %s", q, al_fs_errmsg(-e, buf));
        return 1;
    }
    if (!al_path_within(c->root, real)) {
        _cleanup_free_ char *q = al_js_quote(p);
        free(real);
        al_tool_result_set(r, true, "path %s is outside the session's working directory", q);
        return 1;
    }
    *ret_abs = real;
    return 0;
}

const char *al_path_below_root(const struct al_tool_ctx *c, const char *abs)
{
    size_t n = strlen(c->root);

    if (strcmp(abs, c->root) == 0)
        return ".";
    if (n > 0 && c->root[n - 1] == '/')
        return abs + n;
    return abs + n + 1;
}

int al_openat_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t) (flags | O_CLOEXEC),
        .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
    };
    long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));

    return fd < 0 ? -errno : (int) fd;
}

int al_open_beneath(const struct al_tool_ctx *c, const char *abs, int flags, mode_t mode)
{
    if (al_fstools_race_hook)
        al_fstools_race_hook(abs);
    return al_openat_beneath(c->root_fd, al_path_below_root(c, abs), flags, mode);
}

int al_mkdir_beneath(const struct al_tool_ctx *c, const char *abs)
{
    _cleanup_free_ char *rel = al_xstrdup(al_path_below_root(c, abs));
    _cleanup_close_ int dfd = al_openat_beneath(c->root_fd, ".", O_PATH | O_DIRECTORY, 0);
    char *save = NULL;

    if (al_fstools_race_hook)
        al_fstools_race_hook(abs);
    if (dfd < 0)
        return dfd;
    for (char *comp = strtok_r(rel, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        if (strcmp(comp, ".") == 0)
            continue;
        if (mkdirat(dfd, comp, 0700) < 0 && errno != EEXIST)
            return -errno;
        int next = al_openat_beneath(dfd, comp, O_PATH | O_DIRECTORY, 0);
        if (next == -ENOTDIR)
            return -EEXIST; /* what Node's recursive mkdir reports */
        if (next < 0)
            return next;
        (void) close(dfd);
        dfd = next;
    }
    return TAKE_FD(dfd);
}

static void uuid_v4(char out[static 37])
{
    unsigned char u[16];

    al_random(u, sizeof(u));
    u[6] = (unsigned char) ((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char) ((u[8] & 0x3f) | 0x80);
    (void) snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                    u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                    u[13], u[14], u[15]);
}

int al_atomic_write(int dirfd, const char *name, const void *data, size_t n)
{
    char uuid[37], tmp[96];
    struct stat st;
    bool have_mode = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    int r = 0;

    uuid_v4(uuid);
    (void) snprintf(tmp, sizeof(tmp), ".tmp-%ld-%s", (long) getpid(), uuid);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (have_mode && fchmod(fd, st.st_mode & 0777) < 0)
        r = -errno;
    for (size_t off = 0; r == 0 && off < n;) {
        ssize_t w = write(fd, (const char *) data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            r = -errno;
        else
            off += (size_t) w;
    }
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
        r = -errno;
    if (r < 0)
        (void) unlinkat(dirfd, tmp, 0);
    return r;
}
