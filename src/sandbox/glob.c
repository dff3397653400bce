/* SPDX-License-Identifier: Apache-2.0 */
/* The glob tool (spec §6.7). The walk is a port of the algorithm of Node
 * 22's fs.glob (lib/internal/fs/glob.js, async variant) so that the same
 * entries come out in the same order: equal mtimes keep that order after
 * the stable sort, as in the SDK. Quirks kept on purpose: "**" never
 * enters dot directories nor matches dot names; "**" does not descend
 * through symlinked directories but a following segment lists them; a
 * directory a pattern names literally is entered even when it is a
 * symlink. The SDK's exclude hook (".git", "node_modules") prunes what "**"
 * lists, and a path a pattern names only when it exists under the root
 * (see excluded()). Deliberate difference:
 * we stop after 1,000,000 directory entries read or when cancelled,
 * which Node does not (its cap only counts yielded entries). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "globpat.h"
#include "../lib/base/buf.h"
#include "../lib/base/map.h"
#include "../lib/base/utf8.h"

#define GLOB_RESULT_LIMIT   200
#define GLOB_WALK_MAX       50000
#define GLOB_READ_MAX       1000000

enum ftype { FT_NONE, FT_DIR, FT_FILE, FT_LINK, FT_OTHER };

struct ints {
    int v[AL_GLOB_MAX_PARTS + 4];
    size_t n;
};

static bool ints_has(const struct ints *s, int x)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == x)
            return true;
    return false;
}

static void ints_add(struct ints *s, int x)
{
    if (!ints_has(s, x) && s->n < AL_ELEMENTSOF(s->v))
        s->v[s->n++] = x;
}

struct gpat {
    const struct al_glob_pattern *p;
    struct ints idx, links;
};

struct item {
    char *path;
    struct gpat **pats;
    size_t n;
};

struct hit {
    char *rel;
    bool is_file;
};

struct walker {
    const char *root;
    int cancel_fd;
    struct al_map *results, *seen, *subidx;
    struct item *sub;            /* insertion-ordered subpatterns */
    size_t nsub;
    struct item *queue;
    size_t nqueue;
    struct hit *hits;
    size_t nhits;
    size_t reads;
    bool stop;
};

static struct gpat *gpat_new(const struct al_glob_pattern *p, const struct ints *idx, const struct ints *links)
{
    struct gpat *g = al_xcalloc(1, sizeof(*g));
    g->p = p;
    g->idx = *idx;
    if (links)
        g->links = *links;
    return g;
}

static struct gpat *gpat_child1(const struct gpat *g, int i)
{
    struct ints s = { .n = 0 };
    ints_add(&s, i);
    return gpat_new(g->p, &s, NULL);
}

/* pattern.at(i), negative from the end; NULL past either end. */
static const struct al_glob_part *at(const struct gpat *g, int i)
{
    if (i < 0)
        i += (int) g->p->n;
    return i >= 0 && (size_t) i < g->p->n ? &g->p->parts[i] : NULL;
}

static bool is_str(const struct al_glob_part *x)
{
    return x && x->kind == AL_GLOB_LITERAL;
}

static bool is_gs(const struct al_glob_part *x)
{
    return x && x->kind == AL_GLOB_GLOBSTAR;
}

static bool str_eq(const struct al_glob_part *x, const char *s)
{
    return is_str(x) && strcmp(x->lit, s) == 0;
}

static bool test(const struct gpat *g, int i, const char *name)
{
    const struct al_glob_part *x = i >= 0 ? at(g, i) : NULL;
    return x && al_glob_part_match(x, name);
}

static char *cache_key(const struct gpat *g, const char *path, int index)
{
    struct al_buf b = { .max = SIZE_MAX / 2 };
    if (al_buf_append(&b, path, strlen(path)) < 0 || al_buf_append(&b, "\x01", 1) < 0)
        abort();
    for (size_t i = (size_t) AL_MAX(index, 0); i < g->p->n; i++) {
        const char *t = g->p->parts[i].text;
        if (al_buf_append(&b, t, strlen(t)) < 0 || (i + 1 < g->p->n && al_buf_append(&b, "/", 1) < 0))
            abort();
    }
    if (al_buf_append(&b, "", 0) < 0)
        abort();
    return b.data;
}

static bool seen(struct walker *w, const char *path, const struct gpat *g, int index)
{
    _cleanup_free_ char *k = cache_key(g, path, index);
    return al_map_get(w->seen, k) != NULL;
}

/* Cache.add(): true when some key was there already. */
static bool cache_add(struct walker *w, const char *path, const struct gpat *g)
{
    size_t added = 0;
    for (size_t i = 0; i < g->idx.n; i++) {
        _cleanup_free_ char *k = cache_key(g, path, g->idx.v[i]);
        if (!al_map_get(w->seen, k)) {
            (void) al_map_put(w->seen, k, (void *) 1);
            added++;
        }
    }
    return added != g->idx.n;
}

static char *pjoin(const char *a, const char *b)
{
    /* path.join(a, b) for a relative a ("." or "x/y") and a name. */
    if (strcmp(a, ".") == 0)
        return al_xstrdup(*b ? b : ".");
    if (!*b)
        return al_xstrdup(a);
    if (strcmp(a, "/") == 0)
        return al_xasprintf("/%s", b);
    return al_xasprintf("%s/%s", a, b);
}

static enum ftype ltype(const char *full)
{
    struct stat st;
    if (lstat(full, &st) < 0)
        return FT_NONE;
    return S_ISDIR(st.st_mode) ? FT_DIR : S_ISREG(st.st_mode) ? FT_FILE : S_ISLNK(st.st_mode) ? FT_LINK : FT_OTHER;
}

static void result(struct walker *w, const char *rel, enum ftype t)
{
    if (w->stop || al_map_get(w->results, rel))
        return;
    (void) al_map_put(w->results, rel, (void *) 1);
    w->hits = al_xrealloc(w->hits, (w->nhits + 1) * sizeof(*w->hits));
    w->hits[w->nhits++] = (struct hit){ .rel = al_xstrdup(rel), .is_file = t == FT_FILE };
    if (w->nhits >= GLOB_WALK_MAX)
        w->stop = true;
}

/* The SDK's exclude hook, where Node calls it when queueing a path. Node
 * looks the entry up with lstat(path) with path relative to the glob root,
 * but lstat resolves it against the process's cwd, so the hook only sees
 * paths that happen to exist there: "node_modules/x" is pruned when the
 * SDK runs from a package directory (one with node_modules), ".git/config"
 * when it runs from a repository, "sub/node_modules/x" hardly ever. We ask
 * the same question of our own cwd, which is the worker's. */
/* Node's fs.glob looks a directory it is about to enter up with lstat on the
 * root-relative path, so against the process's cwd, and only then asks the
 * SDK's exclude hook. With the worker running in its workdir (the `ant`
 * CLI's default) that is the root; we always look under the root, so the
 * rule does not depend on where the runner happens to run. */
static bool excluded(const struct walker *w, const char *path)
{
    const char *base = strrchr(path, '/');
    struct stat st;

    base = base ? base + 1 : path;
    if (strcmp(base, ".git") != 0 && strcmp(base, "node_modules") != 0)
        return false;
    if (path[0] == '/')
        return lstat(path, &st) == 0;
    _cleanup_free_ char *abs = al_xasprintf("%s/%s", w->root, path);
    return lstat(abs, &st) == 0;
}

static void add_subpattern(struct walker *w, const char *path, struct gpat *g)
{
    if (excluded(w, path)) {
        free(g);
        return;
    }
    void *v = al_map_get(w->subidx, path);
    struct item *it;
    if (v) {
        it = &w->sub[(uintptr_t) v - 1];
    } else {
        w->sub = al_xrealloc(w->sub, (w->nsub + 1) * sizeof(*w->sub));
        it = &w->sub[w->nsub++];
        *it = (struct item){ .path = al_xstrdup(path) };
        (void) al_map_put(w->subidx, path, (void *) (uintptr_t) w->nsub);
    }
    it->pats = al_xrealloc(it->pats, (it->n + 1) * sizeof(struct gpat *));
    it->pats[it->n++] = g;
}

struct child {
    char *name;
    enum ftype t;
};

static int child_cmp(const void *a, const void *b)
{
    return strcmp(((const struct child *) a)->name, ((const struct child *) b)->name);
}

/* readdir, sorted by strcmp as libuv's scandir does; [] on error. */
static struct child *read_children(struct walker *w, const char *full, size_t *n)
{
    DIR *d = opendir(full);
    struct child *v = NULL;
    struct dirent *de;

    *n = 0;
    if (!d)
        return NULL;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (++w->reads > GLOB_READ_MAX) {
            w->stop = true;
            break;
        }
        enum ftype t;
        switch (de->d_type) {
        case DT_DIR: t = FT_DIR; break;
        case DT_REG: t = FT_FILE; break;
        case DT_LNK: t = FT_LINK; break;
        case DT_UNKNOWN: {
            _cleanup_free_ char *f = al_xasprintf("%s/%s", full, de->d_name);
            t = ltype(f);
            break;
        }
        default: t = FT_OTHER;
        }
        v = al_xrealloc(v, (*n + 1) * sizeof(*v));
        v[(*n)++] = (struct child){ .name = al_xstrdup(de->d_name), .t = t };
    }
    (void) closedir(d);
    if (*n)
        qsort(v, *n, sizeof(*v), child_cmp);
    return v;
}

static void iterate(struct walker *w, const char *path, const struct gpat *g)
{
    if (w->stop || cache_add(w, path, g))
        return;
    _cleanup_free_ char *full = al_path_resolve(w->root, path);
    enum ftype st = ltype(full);
    int last = (int) g->p->n - 1;
    bool seen_links = false;
    for (size_t i = 0; i < g->idx.n; i++)
        seen_links |= !ints_has(&g->links, g->idx.v[i]);
    bool is_dir = st == FT_DIR || (st == FT_LINK && seen_links);
    bool is_last = ints_has(&g->idx, last) ||
                   (str_eq(at(g, -1), "") && is_dir && ints_has(&g->idx, last - 1) && is_gs(at(g, -2)));
    bool is_first = ints_has(&g->idx, 0);

    if (is_first && str_eq(at(g, 0), "")) {
        add_subpattern(w, "/", gpat_child1(g, 1));
        return;
    }
    if (is_first && str_eq(at(g, 0), ".")) {
        add_subpattern(w, ".", gpat_child1(g, 1));
        return;
    }
    if (is_last && is_str(at(g, -1))) {
        const char *p = at(g, -1)->lit;
        _cleanup_free_ char *f = al_path_resolve(full, p);
        enum ftype t = ltype(f);
        if (t != FT_NONE && (*p || is_dir)) {
            _cleanup_free_ char *rel = pjoin(path, p);
            result(w, rel, t);
        }
        if (g->idx.n == 1 && ints_has(&g->idx, last))
            return;
    } else if (is_last && is_gs(at(g, -1)) &&
               (strcmp(path, ".") != 0 || str_eq(at(g, 0), ".") || (last == 0 && st != FT_NONE))) {
        result(w, path, st);
    }
    if (!is_dir)
        return;

    struct child *kids = NULL;
    size_t nk = 0;
    const struct al_glob_part *fp = g->idx.n == 1 ? at(g, g->idx.v[0]) : NULL;
    if (g->idx.n == 1 && g->idx.v[0] < 0)
        fp = NULL;
    if (is_str(fp)) {
        _cleanup_free_ char *f = al_path_resolve(full, fp->lit);
        enum ftype t = ltype(f);
        if (t == FT_NONE)
            return;
        kids = al_xcalloc(1, sizeof(*kids));
        kids[0] = (struct child){ .name = al_xstrdup(fp->lit), .t = t };
        nk = 1;
    } else {
        kids = read_children(w, full, &nk);
    }

    for (size_t c = 0; c < nk && !w->stop; c++) {
        const struct child *e = &kids[c];
        _cleanup_free_ char *ep = pjoin(path, e->name);
        struct ints sub = { .n = 0 }, nlinks = { .n = 0 };
        bool edir = e->t == FT_DIR, elink = e->t == FT_LINK;

        for (size_t k = 0; k < g->idx.n; k++) {
            int index = g->idx.v[k];
            if (seen(w, ep, g, index) || seen(w, ep, g, index + 1))
                goto out; /* sic: Node returns from the whole function here */
            const struct al_glob_part *cur = at(g, index);
            bool from_link = ints_has(&g->links, index);
            if (index >= 0 && (size_t) index >= g->p->n)
                cur = NULL;

            if (is_gs(cur)) {
                if (e->name[0] == '.' || strcmp(e->name, ".git") == 0 || strcmp(e->name, "node_modules") == 0)
                    continue;
                if (!from_link && edir)
                    ints_add(&sub, index);
                else if (!from_link && index == last)
                    result(w, ep, e->t);
                bool next = test(g, index + 1, e->name);
                if (next && index + 1 == last && !is_last)
                    result(w, ep, e->t);
                else if (next && edir)
                    ints_add(&sub, index + 2);
                if ((next || str_eq(at(g, 0), ".")) && (edir || elink) && !from_link)
                    ints_add(&sub, index + 1);
                if (elink)
                    ints_add(&nlinks, index);
            }
            if (is_str(cur)) {
                if (test(g, index, e->name) && index != last)
                    ints_add(&sub, index + 1);
                else if (strcmp(cur->lit, ".") == 0 && test(g, index + 1, e->name)) {
                    if (index + 1 == last)
                        result(w, ep, e->t);
                    else
                        ints_add(&sub, index + 2);
                }
            }
            if (cur && cur->kind == AL_GLOB_MAGIC && test(g, index, e->name)) {
                if (index == last)
                    result(w, ep, e->t);
                else if (edir)
                    ints_add(&sub, index + 1);
            }
        }
        if (sub.n)
            add_subpattern(w, ep, gpat_new(g->p, &sub, &nlinks));
    }
out:
    for (size_t c = 0; c < nk; c++)
        free(kids[c].name);
    free(kids);
}

static bool cancelled(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return fd >= 0 && poll(&p, 1, 0) > 0;
}

static void item_free(struct item *it)
{
    for (size_t i = 0; i < it->n; i++)
        free(it->pats[i]);
    free(it->pats);
    free(it->path);
}

static void walk(struct walker *w, const struct al_glob_set *set)
{
    struct item first = { .path = al_xstrdup(".") };
    struct ints zero = { .n = 0 };

    ints_add(&zero, 0);
    first.pats = al_xcalloc(set->n ? set->n : 1, sizeof(struct gpat *));
    for (size_t i = 0; i < set->n; i++)
        first.pats[first.n++] = gpat_new(&set->v[i], &zero, NULL);
    w->queue = al_xcalloc(1, sizeof(*w->queue));
    w->queue[w->nqueue++] = first;
    while (w->nqueue > 0) {
        struct item it = w->queue[--w->nqueue];
        if (!w->stop && cancelled(w->cancel_fd))
            w->stop = true;
        for (size_t i = 0; i < it.n && !w->stop; i++)
            iterate(w, it.path, it.pats[i]);
        item_free(&it);
        w->queue = al_xrealloc(w->queue, (w->nqueue + w->nsub + 1) * sizeof(*w->queue));
        for (size_t i = 0; i < w->nsub; i++)
            w->queue[w->nqueue++] = w->sub[i];
        w->nsub = 0;
        w->subidx = al_map_free(w->subidx);
        w->subidx = al_map_new();
    }
    free(w->queue);
    free(w->sub);
}

struct match {
    char *path;
    double mtime;
    size_t order;
};

static int match_cmp(const void *a, const void *b)
{
    const struct match *x = a, *y = b;
    if (x->mtime != y->mtime)
        return x->mtime < y->mtime ? 1 : -1;
    return x->order < y->order ? -1 : x->order > y->order;
}

int al_tool_glob(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r)
{
    const json_t *pv = json_object_get(input, "pattern");
    const json_t *sv = json_object_get(input, "path");
    const char *pattern = json_is_string(pv) ? json_string_value(pv) : NULL;
    const char *sp = json_is_string(sv) ? json_string_value(sv) : NULL;
    _cleanup_free_ char *root = NULL;
    struct al_glob_set set = { 0 };

    if (!pattern || !*pattern) {
        al_tool_result_set(r, true, "glob: pattern is required");
        return 0;
    }
    if (pattern[0] == '/') {
        al_tool_result_set(r, true, "glob: absolute pattern not permitted; pass a relative pattern (and optionally path)");
        return 0;
    }
    for (const char *s = pattern;;) {
        size_t n = strcspn(s, "\\/{},");
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            al_tool_result_set(r, true, "glob: \"..\" is not permitted in the pattern");
            return 0;
        }
        if (!s[n])
            break;
        s += n + 1;
    }
    if (sp && *sp) {
        if (al_confine(c, sp, &root, r))
            return 0;
    } else {
        root = al_xstrdup(c->root);
    }
    _cleanup_free_ char *err = NULL;
    int k = al_glob_parse(pattern, &set, &err);
    if (k < 0) {
        if (err)
            al_tool_result_set(r, true, "glob: %s", err);
        else
            al_tool_result_set(r, true, "glob: pattern expands to too many patterns");
        return 0;
    }
    struct walker w = {
        .root = root, .cancel_fd = c->cancel_fd,
        .results = al_map_new(), .seen = al_map_new(), .subidx = al_map_new(),
    };
    walk(&w, &set);
    al_glob_set_done(&set);
    w.results = al_map_free(w.results);
    w.seen = al_map_free(w.seen);
    w.subidx = al_map_free(w.subidx);

    struct match *m = al_xcalloc(w.nhits ? w.nhits : 1, sizeof(*m));
    size_t nm = 0;
    for (size_t i = 0; i < w.nhits; i++) {
        struct hit *h = &w.hits[i];
        if (h->is_file) {
            char *full = al_path_resolve(root, h->rel);
            _cleanup_free_ char *real = realpath(full, NULL);
            struct stat st;
            if (real && al_path_within(root, real)) {
                double mt = stat(full, &st) == 0
                                ? (double) st.st_mtim.tv_sec * 1e3 + (double) st.st_mtim.tv_nsec / 1e6
                                : 0;
                m[nm++] = (struct match){ .path = full, .mtime = mt, .order = i };
            } else {
                free(full);
            }
        }
        free(h->rel);
    }
    free(w.hits);
    if (nm == 0) {
        free(m);
        al_tool_result_set(r, false, "no matches");
        return 0;
    }
    qsort(m, nm, sizeof(*m), match_cmp);
    struct al_buf out = { .max = SIZE_MAX / 2 };
    for (size_t i = 0; i < nm; i++) {
        if (i < GLOB_RESULT_LIMIT &&
            ((i && al_buf_append(&out, "\n", 1) < 0) || al_buf_append(&out, m[i].path, strlen(m[i].path)) < 0))
            abort();
        free(m[i].path);
    }
    free(m);
    r->is_error = false;
    r->text = al_utf8_repair(out.data, out.len, &r->len);
    al_buf_clear(&out);
    return 0;
}
