/* SPDX-License-Identifier: Apache-2.0 */
/* See globpat.h. Brace expansion follows the brace-expansion package that
 * minimatch uses: the first balanced {...} with a top-level comma expands
 * to its options, {a..b} / {1..9..2} to sequences, anything else stays
 * literal; at the top level empty expansions are dropped. */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "globpat.h"

struct strv {
    char **v;
    size_t n;
};

static void strv_push(struct strv *s, char *x)
{
    s->v = al_xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
    s->v[s->n++] = x;
}

static void strv_done(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* First '{' with a matching '}' (nesting counted). */
static bool balanced(const char *s, size_t *open, size_t *close)
{
    for (size_t i = 0; s[i]; i++) {
        if (s[i] != '{')
            continue;
        int depth = 0;
        for (size_t j = i; s[j]; j++) {
            if (s[j] == '{')
                depth++;
            else if (s[j] == '}' && --depth == 0) {
                *open = i;
                *close = j;
                return true;
            }
        }
        return false;
    }
    return false;
}

static bool parse_long(const char *s, size_t n, long *out)
{
    char buf[32];
    char *end;
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    size_t i = buf[0] == '-' ? 1 : 0;
    if (!buf[i])
        return false;
    for (; buf[i]; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return false;
    *out = strtol(buf, &end, 10);
    return *end == '\0' && *out > -1000000 && *out < 1000000;
}

/* {x..y[..step]}: numeric or single letters. Fills opts; false if not one. */
static bool sequence(const char *b, size_t n, struct strv *opts)
{
    const char *d1 = memmem(b, n, "..", 2);
    if (!d1)
        return false;
    const char *x = b, *y = d1 + 2;
    size_t xn = (size_t) (d1 - b);
    const char *d2 = memmem(y, n - (size_t) (y - b), "..", 2);
    size_t yn = d2 ? (size_t) (d2 - y) : n - (size_t) (y - b);
    long step = 1, lx, ly;
    if (d2 && !parse_long(d2 + 2, n - (size_t) (d2 + 2 - b), &step))
        return false;
    step = labs(step) ? labs(step) : 1;
    bool alpha = xn == 1 && yn == 1 && ((x[0] | 32) >= 'a' && (x[0] | 32) <= 'z') &&
                 ((y[0] | 32) >= 'a' && (y[0] | 32) <= 'z');
    if (alpha) {
        lx = (unsigned char) x[0];
        ly = (unsigned char) y[0];
    } else if (!parse_long(x, xn, &lx) || !parse_long(y, yn, &ly)) {
        return false;
    }
    int width = 0;
    if (!alpha && ((xn > 1 && x[x[0] == '-'] == '0') || (yn > 1 && y[y[0] == '-'] == '0')))
        width = (int) AL_MAX(xn, yn);
    for (long v = lx; lx <= ly ? v <= ly : v >= ly; v += lx <= ly ? step : -step) {
        if (opts->n >= AL_GLOB_MAX_PATTERNS)
            return true;
        if (alpha) {
            if (v == '\\')
                strv_push(opts, al_xstrdup(""));
            else
                strv_push(opts, al_xasprintf("%c", (char) v));
        } else if (width && v < 0) {
            strv_push(opts, al_xasprintf("-%0*ld", width - 1, -v));
        } else {
            strv_push(opts, al_xasprintf("%0*ld", width, v));
        }
    }
    return true;
}

static int expand(const char *s, bool top, struct strv *out);

/* Splits a brace body on its top-level commas. */
static void comma_parts(const char *b, size_t n, struct strv *parts)
{
    int depth = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && b[i] == '{')
            depth++;
        else if (i < n && b[i] == '}')
            depth--;
        else if (i == n || (b[i] == ',' && depth == 0)) {
            strv_push(parts, al_xstrndup(b + start, i - start));
            start = i + 1;
        }
    }
}

static bool has_top_comma(const char *b, size_t n)
{
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '{')
            depth++;
        else if (b[i] == '}')
            depth--;
        else if (b[i] == ',' && depth == 0)
            return true;
    }
    return false;
}

static int expand(const char *s, bool top, struct strv *out)
{
    size_t o, c;
    struct strv post = { 0 }, opts = { 0 };
    int r = 0;

    if (!balanced(s, &o, &c)) {
        strv_push(out, al_xstrdup(s));
        return 0;
    }
    const char *body = s + o + 1;
    size_t bn = c - o - 1;
    if (s[c + 1])
        r = expand(s + c + 1, false, &post);
    else
        strv_push(&post, al_xstrdup(""));
    if (r < 0)
        goto out;
    bool is_seq = sequence(body, bn, &opts);
    if (!is_seq) {
        if (!has_top_comma(body, bn)) {
            /* Literal "{body}"; later braces still expand. */
            for (size_t k = 0; k < post.n; k++)
                strv_push(out, al_xasprintf("%.*s%s", (int) (c + 1), s, post.v[k]));
            goto out;
        }
        struct strv parts = { 0 };
        comma_parts(body, bn, &parts);
        for (size_t i = 0; i < parts.n && r == 0; i++)
            r = expand(parts.v[i], false, &opts);
        strv_done(&parts);
        if (r < 0)
            goto out;
    }
    for (size_t j = 0; j < opts.n; j++)
        for (size_t k = 0; k < post.n; k++) {
            if (out->n >= AL_GLOB_MAX_PATTERNS) {
                r = -E2BIG;
                goto out;
            }
            char *e = al_xasprintf("%.*s%s%s", (int) o, s, opts.v[j], post.v[k]);
            if (top && !is_seq && !*e)
                free(e);
            else
                strv_push(out, e);
        }
out:
    strv_done(&post);
    strv_done(&opts);
    return r;
}

/* firstPhasePreProcess without the ".." rules (".." is refused earlier). */
static void preprocess(struct strv *p)
{
    bool did;
    do {
        did = false;
        for (size_t i = 0; i + 1 < p->n; i++)
            if (strcmp(p->v[i], "**") == 0 && strcmp(p->v[i + 1], "**") == 0) {
                free(p->v[i + 1]);
                memmove(p->v + i + 1, p->v + i + 2, (p->n - i - 2) * sizeof(*p->v));
                p->n--;
                i--;
            }
        for (size_t i = 1; i + 1 < p->n; i++) {
            if (i == 1 && !*p->v[i] && !*p->v[0])
                continue;
            if (strcmp(p->v[i], ".") == 0 || !*p->v[i]) {
                did = true;
                free(p->v[i]);
                memmove(p->v + i, p->v + i + 1, (p->n - i - 1) * sizeof(*p->v));
                p->n--;
                i--;
            }
        }
        if (p->n == 2 && strcmp(p->v[0], ".") == 0 && (strcmp(p->v[1], ".") == 0 || !*p->v[1])) {
            did = true;
            free(p->v[--p->n]);
        }
    } while (did);
}

/* secondPhasePreProcess's partsMatch: a merged pattern or NULL. */
static struct strv *parts_match(const struct strv *a, const struct strv *b)
{
    size_t ai = 0, bi = 0;
    char which = 0;
    struct strv *res = al_xcalloc(1, sizeof(*res));

    while (ai < a->n && bi < b->n) {
        const char *x = a->v[ai], *y = b->v[bi];
        if (strcmp(x, y) == 0) {
            strv_push(res, al_xstrdup(which == 'b' ? y : x));
            ai++, bi++;
        } else if (strcmp(x, "**") == 0 && ai + 1 < a->n && strcmp(y, a->v[ai + 1]) == 0) {
            strv_push(res, al_xstrdup(x));
            ai++;
        } else if (strcmp(y, "**") == 0 && bi + 1 < b->n && strcmp(x, b->v[bi + 1]) == 0) {
            strv_push(res, al_xstrdup(y));
            bi++;
        } else if (strcmp(x, "*") == 0 && *y && y[0] != '.' && strcmp(y, "**") != 0) {
            if (which == 'b')
                goto fail;
            which = 'a';
            strv_push(res, al_xstrdup(x));
            ai++, bi++;
        } else if (strcmp(y, "*") == 0 && *x && x[0] != '.' && strcmp(x, "**") != 0) {
            if (which == 'a')
                goto fail;
            which = 'b';
            strv_push(res, al_xstrdup(y));
            ai++, bi++;
        } else {
            goto fail;
        }
    }
    if (a->n == b->n)
        return res;
fail:
    strv_done(res);
    free(res);
    return NULL;
}

/* minimatch's parse() of one preprocessed segment. */
static int part_init(struct al_glob_part *g, char *text, char **ret_err)
{
    g->text = text;
    if (strcmp(text, "**") == 0) {
        g->kind = AL_GLOB_GLOBSTAR;
        return 0;
    }
    if (!*text) {
        g->kind = AL_GLOB_LITERAL;
        g->lit = al_xstrdup("");
        return 0;
    }
    int r = al_glob_seg_compile(text, &g->lit, &g->re, ret_err);
    g->kind = g->re ? AL_GLOB_MAGIC : AL_GLOB_LITERAL;
    return r;
}

int al_glob_parse(const char *pattern, struct al_glob_set *ret, char **ret_err)
{
    _cleanup_free_ char *pat = al_xstrdup(pattern);
    struct strv exp = { 0 };
    int r;

    *ret_err = NULL;
    *ret = (struct al_glob_set){ 0 };
    for (char *q = pat; *q; q++)
        if (*q == '\\')
            *q = '/';
    if (strncmp(pat, "{}", 2) == 0) {
        /* brace-expansion escapes a leading "{}" */
        strv_push(&exp, al_xstrdup(pat));
        r = 0;
    } else {
        r = expand(pat, true, &exp);
    }
    if (r < 0) {
        strv_done(&exp);
        return r;
    }
    /* dedupe (minimatch: new Set) and split */
    size_t np = 0;
    struct strv *parts = al_xcalloc(exp.n ? exp.n : 1, sizeof(*parts));
    for (size_t i = 0; i < exp.n; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(exp.v[i], exp.v[j]) == 0;
        if (dup)
            continue;
        struct strv *p = &parts[np++];
        const char *s = exp.v[i];
        for (;;) {
            size_t n = strcspn(s, "/");
            strv_push(p, al_xstrndup(s, n));
            if (!s[n])
                break;
            s += n;
            while (*s == '/')
                s++;
        }
        preprocess(p);
        if (p->n > AL_GLOB_MAX_PARTS)
            r = -E2BIG;
    }
    strv_done(&exp);
    /* secondPhasePreProcess */
    for (size_t i = 0; np && i < np - 1; i++)
        for (size_t j = i + 1; j < np; j++) {
            struct strv *m = parts[i].n ? parts_match(&parts[i], &parts[j]) : NULL;
            if (m) {
                strv_done(&parts[i]);
                strv_done(&parts[j]);
                parts[j] = *m;
                free(m);
                break;
            }
        }
    ret->v = al_xcalloc(np ? np : 1, sizeof(*ret->v));
    ret->n = 0;
    for (size_t i = 0; i < np; i++) {
        if (parts[i].n == 0 || r < 0) {
            strv_done(&parts[i]);
            continue;
        }
        struct al_glob_pattern *g = &ret->v[ret->n++];
        g->n = parts[i].n;
        g->parts = al_xcalloc(g->n, sizeof(*g->parts));
        /* Every segment is compiled, so the first one V8 rejects fails
         * the whole pattern, as the Minimatch constructor throws. */
        for (size_t k = 0; k < g->n; k++) {
            char *err = NULL;
            if (part_init(&g->parts[k], parts[i].v[k], &err) < 0 && r >= 0) {
                r = -EINVAL;
                *ret_err = TAKE_PTR(err);
            }
            free(err);
        }
        free(parts[i].v);
    }
    free(parts);
    if (r < 0)
        al_glob_set_done(ret);
    return r;
}

void al_glob_set_done(struct al_glob_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        for (size_t k = 0; k < s->v[i].n; k++) {
            free(s->v[i].parts[k].text);
            free(s->v[i].parts[k].lit);
            (void) al_glob_re_free(s->v[i].parts[k].re);
        }
        free(s->v[i].parts);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

bool al_glob_part_match(const struct al_glob_part *part, const char *name)
{
    switch (part->kind) {
    case AL_GLOB_GLOBSTAR: return true;
    case AL_GLOB_LITERAL: return strcmp(part->lit, name) == 0;
    default: return al_glob_re_match(part->re, name);
    }
}

bool al_glob_segment_match(const char *pat, const char *name)
{
    _cleanup_free_ char *lit = NULL, *err = NULL;
    struct al_glob_re *re = NULL;

    if (strcmp(pat, "**") == 0 || !*pat)
        return strcmp(pat, name) == 0 || *pat;
    if (al_glob_seg_compile(pat, &lit, &re, &err) < 0)
        return false;
    bool m = lit ? strcmp(lit, name) == 0 : al_glob_re_match(re, name);
    re = al_glob_re_free(re);
    return m;
}
