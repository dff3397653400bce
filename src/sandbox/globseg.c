/* SPDX-License-Identifier: Apache-2.0 */
/* One glob segment compiled the way Node 22's bundled minimatch compiles it
 * (its ast.js and brace-expressions.js; no escapes, as windowsPathsNoEscape
 * turned every '\' into '/'): '*', '?', [...] classes with POSIX names, and
 * the extglobs +() *() ?() @() !(), nested, with minimatch's dot rules and
 * its way of copying what follows a "!(...)" into the lookahead, quirks
 * included ("!(a|)" matches any name not starting with a dot). We build the
 * same JavaScript regular expression source, in UTF-16 as V8 sees it, then
 * translate it for PCRE2. Without the u flag a JavaScript regex works on
 * UTF-16 units, so '?' matches half of an emoji; we keep that by matching
 * names as UTF-16 units, each mapped to one code point. Pure: no I/O. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "globpat.h"

#define SURROGATE_MAP 0x100000u   /* unit 0xD800 becomes code point 0x10D800 */
#define MATCH_LIMIT   1000000u

struct u16 {
    uint16_t *v;
    size_t n;
};

static void put(struct u16 *s, uint16_t c)
{
    if ((s->n & (s->n + 1)) == 0 || !s->v)
        s->v = al_xrealloc(s->v, (2 * s->n + 2) * sizeof(*s->v));
    s->v[s->n++] = c;
}

static void putn(struct u16 *s, const uint16_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(s, v[i]);
}

static void puts16(struct u16 *s, const char *ascii)
{
    while (*ascii)
        put(s, (unsigned char) *ascii++);
}

static void u16_done(struct u16 *s)
{
    free(s->v);
    *s = (struct u16){ 0 };
}

static bool u16_eq(const struct u16 *s, const char *ascii)
{
    size_t n = strlen(ascii);
    if (s->n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s->v[i] != (unsigned char) ascii[i])
            return false;
    return true;
}

static bool starts(const uint16_t *s, size_t n, size_t at, const char *ascii)
{
    for (size_t k = 0; ascii[k]; k++)
        if (at + k >= n || s[at + k] != (unsigned char) ascii[k])
            return false;
    return true;
}

/* One code point at s (a stray byte becomes U+FFFD, as Node decodes it). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
                 : s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : 0;
    if (len == 0 || len > n) {
        *cp = 0xfffd;
        return 1;
    }
    uint32_t c = len == 1 ? s[0] : s[0] & (0xffu >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        c = (c << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c < 0xe000)) {
        *cp = 0xfffd;
        return 1;
    }
    *cp = c;
    return len;
}

static void utf16_of(const char *s, struct u16 *out)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += utf8_next((const unsigned char *) s + i, n - i, &c);
        if (c >= 0x10000) {
            put(out, (uint16_t) (0xd800 + ((c - 0x10000) >> 10)));
            put(out, (uint16_t) (0xdc00 + ((c - 0x10000) & 0x3ff)));
        } else {
            put(out, (uint16_t) c);
        }
    }
}

static size_t utf8_put(char *o, uint32_t c)
{
    if (c < 0x80) {
        o[0] = (char) c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char) (0xc0 | (c >> 6));
        o[1] = (char) (0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char) (0xe0 | (c >> 12));
        o[1] = (char) (0x80 | ((c >> 6) & 0x3f));
        o[2] = (char) (0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (char) (0xf0 | (c >> 18));
    o[1] = (char) (0x80 | ((c >> 12) & 0x3f));
    o[2] = (char) (0x80 | ((c >> 6) & 0x3f));
    o[3] = (char) (0x80 | (c & 0x3f));
    return 4;
}

static bool is_hi(uint32_t c) { return c >= 0xd800 && c < 0xdc00; }
static bool is_lo(uint32_t c) { return c >= 0xdc00 && c < 0xe000; }

/* UTF-16 to UTF-8; a lone surrogate is mapped like a name's (never a hit). */
static char *utf8_of(const struct u16 *s)
{
    char *o = al_xmalloc(4 * s->n + 1), *p = o;
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->v[i];
        if (is_hi(c) && i + 1 < s->n && is_lo(s->v[i + 1]))
            c = 0x10000 + ((c - 0xd800) << 10) + (s->v[++i] - 0xdc00u);
        else if (is_hi(c) || is_lo(c))
            c += SURROGATE_MAP;
        p += utf8_put(p, c);
    }
    *p = '\0';
    return o;
}

/* ---- the AST, as ast.js builds it ---- */

struct ast;

struct apart {
    struct ast *a;        /* NULL: a string part */
    struct u16 s;
};

struct ast {
    char type;            /* 0, or one of ! ? + * @ */
    struct ast *root, *parent;
    size_t pidx;          /* #parentIndex */
    struct apart *parts;
    size_t nparts;
    int has_magic;        /* -1: undefined */
    bool uflag, empty_ext, filled_negs, has_str;
    struct u16 str;       /* cached toString() */
    struct ast **negs, **all;   /* root only */
    size_t nnegs, nall;
};

static bool is_ext_type(uint16_t c)
{
    return c == '!' || c == '?' || c == '+' || c == '*' || c == '@';
}

static struct ast *ast_new(char type, struct ast *parent)
{
    struct ast *a = al_xcalloc(1, sizeof(*a));
    a->type = type;
    a->has_magic = type ? 1 : -1;
    a->parent = parent;
    a->root = parent ? parent->root : a;
    a->pidx = parent ? parent->nparts : 0;
    struct ast *r = a->root;
    r->all = al_xrealloc(r->all, (r->nall + 1) * sizeof(struct ast *));
    r->all[r->nall++] = a;
    if (type == '!' && !r->filled_negs) {
        r->negs = al_xrealloc(r->negs, (r->nnegs + 1) * sizeof(struct ast *));
        r->negs[r->nnegs++] = a;
    }
    return a;
}

static void parts_clear(struct ast *a)
{
    for (size_t i = 0; i < a->nparts; i++)
        u16_done(&a->parts[i].s);
    free(a->parts);
    a->parts = NULL;
    a->nparts = 0;
}

static void ast_free(struct ast *root)
{
    for (size_t i = 0; root && i < root->nall; i++) {
        struct ast *a = root->all[i];
        parts_clear(a);
        u16_done(&a->str);
        if (a != root)
            free(a);
    }
    if (root) {
        free(root->all);
        free(root->negs);
        free(root);
    }
}

static void push_part(struct ast *a, struct ast *child, const uint16_t *s, size_t n)
{
    if (!child && n == 0)
        return;
    a->parts = al_xrealloc(a->parts, (a->nparts + 1) * sizeof(*a->parts));
    a->parts[a->nparts] = (struct apart){ .a = child };
    putn(&a->parts[a->nparts].s, s, n);
    a->nparts++;
}

/* Tracks a [...] class the way #parseAST does; true when c belongs to it. */
struct brace {
    bool in, neg;
    size_t start;
};

static bool brace_step(struct brace *b, uint16_t c, size_t i)
{
    if (b->in) {
        if (i == b->start + 1) {
            if (c == '^' || c == '!')
                b->neg = true;
        } else if (c == ']' && !(i == b->start + 2 && b->neg)) {
            b->in = false;
        }
        return true;
    }
    if (c == '[') {
        *b = (struct brace){ .in = true, .start = i };
        return true;
    }
    return false;
}

static size_t parse_ast(const uint16_t *s, size_t n, struct ast *ast, size_t pos)
{
    struct brace b = { 0 };
    struct u16 acc = { 0 };
    size_t i = pos;

    if (!ast->type) {
        while (i < n) {
            uint16_t c = s[i++];
            if (!brace_step(&b, c, i) && is_ext_type(c) && i < n && s[i] == '(') {
                push_part(ast, NULL, acc.v, acc.n);
                acc.n = 0;
                struct ast *ext = ast_new((char) c, ast);
                i = parse_ast(s, n, ext, i);
                push_part(ast, ext, NULL, 0);
                continue;
            }
            put(&acc, c);
        }
        push_part(ast, NULL, acc.v, acc.n);
        u16_done(&acc);
        return i;
    }
    struct ast *part = ast_new(0, ast), **alts = NULL;
    size_t nalts = 0;
    for (i = pos + 1; i < n;) {
        uint16_t c = s[i++];
        if (brace_step(&b, c, i)) {
            put(&acc, c);
        } else if (is_ext_type(c) && i < n && s[i] == '(') {
            push_part(part, NULL, acc.v, acc.n);
            acc.n = 0;
            struct ast *ext = ast_new((char) c, part);
            push_part(part, ext, NULL, 0);
            i = parse_ast(s, n, ext, i);
        } else if (c == '|' || c == ')') {
            if (c == ')' && acc.n == 0 && ast->nparts == 0)
                ast->empty_ext = true;
            push_part(part, NULL, acc.v, acc.n);
            acc.n = 0;
            alts = al_xrealloc(alts, (nalts + 1) * sizeof(struct ast *));
            alts[nalts++] = part;
            if (c == '|') {
                part = ast_new(0, ast);
                continue;
            }
            for (size_t k = 0; k < nalts; k++)
                push_part(ast, alts[k], NULL, 0);
            free(alts);
            u16_done(&acc);
            return i;
        } else {
            put(&acc, c);
        }
    }
    /* Unclosed: the rest of the text, from the type character, is literal. */
    free(alts);
    u16_done(&acc);
    ast->type = 0;
    ast->has_magic = -1;
    parts_clear(ast);
    push_part(ast, NULL, s + pos - 1, n - pos + 1);
    return i;
}

static const struct u16 *ast_str(struct ast *a)
{
    if (a->has_str)
        return &a->str;
    if (a->type) {
        put(&a->str, (uint16_t) a->type);
        put(&a->str, '(');
    }
    for (size_t i = 0; i < a->nparts; i++) {
        if (a->type && i)
            put(&a->str, '|');
        const struct u16 *p = a->parts[i].a ? ast_str(a->parts[i].a) : &a->parts[i].s;
        putn(&a->str, p->v, p->n);
    }
    if (a->type)
        put(&a->str, ')');
    a->has_str = true;
    return &a->str;
}

static struct ast *ast_clone(const struct ast *a, struct ast *parent);

static void copy_in(struct ast *dst, const struct apart *p)
{
    if (p->a)
        push_part(dst, ast_clone(p->a, dst), NULL, 0);
    else
        push_part(dst, NULL, p->s.v, p->s.n);
}

static struct ast *ast_clone(const struct ast *a, struct ast *parent)
{
    struct ast *c = ast_new(a->type, parent);
    for (size_t i = 0; i < a->nparts; i++)
        copy_in(c, &a->parts[i]);
    return c;
}

/* #fillNegs: what follows a !(...) in the enclosing non-extglob parts is
 * appended to each of its alternatives. */
static void fill_negs(struct ast *root)
{
    if (root->filled_negs)
        return;
    (void) ast_str(root);
    root->filled_negs = true;
    while (root->nnegs > 0) {
        struct ast *n = root->negs[--root->nnegs];
        if (n->type != '!')
            continue;
        for (struct ast *p = n, *pp = n->parent; pp; p = pp, pp = pp->parent)
            for (size_t i = p->pidx + 1; !pp->type && i < pp->nparts; i++)
                for (size_t k = 0; k < n->nparts; k++)
                    copy_in(n->parts[k].a, &pp->parts[i]);
    }
}

static bool is_start(const struct ast *a)
{
    if (a->root == a)
        return true;
    if (!is_start(a->parent))
        return false;
    for (size_t i = 0; i < a->pidx; i++) {
        const struct ast *pp = a->parent->parts[i].a;
        if (!pp || pp->type != '!')
            return false;
    }
    return true;
}

static bool is_end(const struct ast *a)
{
    if (a->root == a || a->parent->type == '!')
        return true;
    if (!is_end(a->parent))
        return false;
    if (!a->type)
        return true;
    return a->pidx + 1 == a->parent->nparts;
}

/* ---- regex source, as toRegExpSource and parseClass write it ---- */

static bool is_js_space(uint16_t c)
{
    return (c >= 9 && c <= 13) || c == ' ' || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
           c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000 || c == 0xfeff;
}

static bool is_line_term(uint16_t c)
{
    return c == '\n' || c == '\r' || c == 0x2028 || c == 0x2029;
}

static void re_escape(struct u16 *o, uint16_t c)
{
    if ((c < 0x80 && strchr("-[]{}()*+?.,\\^$|#", c) && c) || is_js_space(c))
        put(o, '\\');
    put(o, c);
}

static void brace_escape(struct u16 *o, uint16_t c)
{
    if (c == '[' || c == ']' || c == '\\' || c == '-')
        put(o, '\\');
    put(o, c);
}

static const struct {
    const char *name, *src;
    bool u, neg;
} posix[] = {
    { "[:alnum:]", "\\p{L}\\p{Nl}\\p{Nd}", true, false }, { "[:alpha:]", "\\p{L}\\p{Nl}", true, false },
    { "[:ascii:]", "\\x00-\\x7f", false, false },          { "[:blank:]", "\\p{Zs}\\t", true, false },
    { "[:cntrl:]", "\\p{Cc}", true, false },               { "[:digit:]", "\\p{Nd}", true, false },
    { "[:graph:]", "\\p{Z}\\p{C}", true, true },           { "[:lower:]", "\\p{Ll}", true, false },
    { "[:print:]", "\\p{C}", true, false },                { "[:punct:]", "\\p{P}", true, false },
    { "[:space:]", "\\p{Z}\\t\\r\\n\\v\\f", true, false }, { "[:upper:]", "\\p{Lu}", true, false },
    { "[:word:]", "\\p{L}\\p{Nl}\\p{Nd}\\p{Pc}", true, false }, { "[:xdigit:]", "A-Fa-f0-9", false, false },
};

struct cls {
    struct u16 src;
    bool uflag, magic;
    size_t consumed;
};

/* parseClass(glob, pos): consumed 0 when [ does not start a class. */
static void parse_class(const uint16_t *g, size_t n, size_t pos, struct cls *ret)
{
    struct u16 ranges = { 0 }, negs = { 0 };
    size_t nranges = 0, nnegs = 0, i = pos + 1, end = pos;
    bool saw = false, negate = false, have_start = false;
    uint16_t rs = 0;

    *ret = (struct cls){ 0 };
    while (i < n) {
        uint16_t c = g[i];
        if ((c == '!' || c == '^') && i == pos + 1) {
            negate = true;
            i++;
            continue;
        }
        if (c == ']' && saw) {
            end = i + 1;
            break;
        }
        saw = true;
        size_t k = AL_ELEMENTSOF(posix);
        if (c == '[')
            for (k = 0; k < AL_ELEMENTSOF(posix) && !starts(g, n, i, posix[k].name); k++)
                ;
        if (k < AL_ELEMENTSOF(posix)) {
            if (have_start)
                goto never;
            i += strlen(posix[k].name);
            puts16(posix[k].neg ? &negs : &ranges, posix[k].src);
            *(posix[k].neg ? &nnegs : &nranges) += 1;
            ret->uflag |= posix[k].u;
            continue;
        }
        if (have_start) {
            if (c > rs) {
                brace_escape(&ranges, rs);
                put(&ranges, '-');
                brace_escape(&ranges, c);
                nranges++;
            } else if (c == rs) {
                brace_escape(&ranges, c);
                nranges++;
            }
            have_start = false;
            i++;
            continue;
        }
        if (starts(g, n, i + 1, "-]")) {
            brace_escape(&ranges, c);
            brace_escape(&ranges, '-');
            nranges++;
            i += 2;
            continue;
        }
        if (starts(g, n, i + 1, "-")) {
            rs = c;
            have_start = true;
            i += 2;
            continue;
        }
        brace_escape(&ranges, c);
        nranges++;
        i++;
    }
    if (end < i) {
        ret->uflag = false;
        goto out;
    }
    if (!nranges && !nnegs)
        goto never;
    if (!nnegs && nranges == 1 && !negate &&
        ((ranges.n == 1 && !is_line_term(ranges.v[0])) ||
         (ranges.n == 2 && ranges.v[0] == '\\' && !is_line_term(ranges.v[1])))) {
        re_escape(&ret->src, ranges.v[ranges.n - 1]);
        ret->uflag = false;
        ret->consumed = end - pos;
        goto out;
    }
    if (nranges && nnegs)
        put(&ret->src, '(');
    if (nranges) {
        puts16(&ret->src, negate ? "[^" : "[");
        putn(&ret->src, ranges.v, ranges.n);
        put(&ret->src, ']');
    }
    if (nranges && nnegs)
        put(&ret->src, '|');
    if (nnegs) {
        puts16(&ret->src, negate ? "[" : "[^");
        putn(&ret->src, negs.v, negs.n);
        put(&ret->src, ']');
    }
    if (nranges && nnegs)
        put(&ret->src, ')');
    ret->consumed = end - pos;
    ret->magic = true;
    goto out;
never:
    ret->src.n = 0;
    puts16(&ret->src, "$.");
    ret->uflag = false;
    ret->consumed = n - pos;
    ret->magic = true;
out:
    u16_done(&ranges);
    u16_done(&negs);
}

/* #parseGlob: one string part. */
static void parse_glob(const struct u16 *g, bool no_empty, struct u16 *re, bool *magic, bool *uflag)
{
    for (size_t i = 0; i < g->n; i++) {
        uint16_t c = g->v[i];
        if (c == '[') {
            struct cls k;
            parse_class(g->v, g->n, i, &k);
            if (k.consumed) {
                putn(re, k.src.v, k.src.n);
                *uflag |= k.uflag;
                *magic |= k.magic;
                i += k.consumed - 1;
                u16_done(&k.src);
                continue;
            }
            u16_done(&k.src);
        }
        if (c == '*') {
            puts16(re, no_empty && u16_eq(g, "*") ? "[^/]+?" : "[^/]*?");
            *magic = true;
        } else if (c == '?') {
            puts16(re, "[^/]");
            *magic = true;
        } else {
            re_escape(re, c);
        }
    }
}

/* unescape() without options, as ast.js calls it. */
static void unescape16(const struct u16 *s, struct u16 *o)
{
    struct u16 t = { 0 };
    const uint16_t *v = s->v;
    for (size_t i = 0; i < s->n;) {
        bool one = i + 3 < s->n && v[i] != '\\' && !is_line_term(v[i]) && v[i + 1] == '[' &&
                   v[i + 2] != '/' && v[i + 2] != '\\' && v[i + 3] == ']';
        bool first = i == 0 && s->n >= 3 && v[0] == '[' && v[1] != '/' && v[1] != '\\' && v[2] == ']';
        if (one) {
            put(&t, v[i]);
            put(&t, v[i + 2]);
            i += 4;
        } else if (first) {
            put(&t, v[1]);
            i += 3;
        } else {
            put(&t, v[i++]);
        }
    }
    for (size_t i = 0; i < t.n; i++) {
        if (t.v[i] == '\\' && i + 1 < t.n && t.v[i + 1] != '/')
            i++;
        put(o, t.v[i]);
    }
    u16_done(&t);
}

static bool to_re(struct ast *a, bool dot, struct u16 *re, struct u16 *body);

static void parts_to_re(struct ast *a, bool dot, struct u16 *o)
{
    bool drop_empty = is_start(a) && is_end(a), any = false;
    for (size_t i = 0; i < a->nparts; i++) {
        struct u16 r = { 0 };
        (void) to_re(a->parts[i].a, dot, &r, NULL);
        a->uflag |= a->parts[i].a->uflag;
        if (!drop_empty || r.n) {
            if (any)
                put(o, '|');
            putn(o, r.v, r.n);
            any = true;
        }
        u16_done(&r);
    }
}

static bool plain_to_re(struct ast *a, bool dot, struct u16 *re, struct u16 *body)
{
    bool no_empty = is_start(a) && is_end(a), magic = a->has_magic == 1;
    struct u16 src = { 0 };

    for (size_t i = 0; i < a->nparts; i++) {
        bool m = magic;
        if (a->parts[i].a) {
            m = to_re(a->parts[i].a, dot, &src, NULL);
            a->uflag |= a->parts[i].a->uflag;
        } else {
            parse_glob(&a->parts[i].s, no_empty, &src, &m, &a->uflag);
        }
        magic |= m;
    }
    if (is_start(a) && a->nparts && !a->parts[0].a) {
        const struct u16 *p0 = &a->parts[0].s;
        bool dots_only = a->nparts == 1 && (u16_eq(p0, ".") || u16_eq(p0, ".."));
#define APS(k) (src.n > (k) && (src.v[k] == '[' || src.v[k] == '.'))
        bool no_trav = (dot && APS(0)) || (starts(src.v, src.n, 0, "\\.") && APS(2)) ||
                       (starts(src.v, src.n, 0, "\\.\\.") && APS(4));
        bool no_dot = !dot && APS(0);
#undef APS
        if (!dots_only && no_trav)
            puts16(re, "(?!(?:^|/)\\.\\.?(?:$|/))");
        else if (!dots_only && no_dot)
            puts16(re, "(?!\\.)");
    }
    putn(re, src.v, src.n);
    if (is_end(a) && a->root->filled_negs && a->parent && a->parent->type == '!')
        puts16(re, "(?:$|\\/)");
    if (body)
        unescape16(&src, body);
    u16_done(&src);
    a->has_magic = magic;
    return magic;
}

/* toRegExpSource(allowDot): appends the source to re, the unescaped body to
 * body (if not NULL); returns hasMagic. */
static bool to_re(struct ast *a, bool dot, struct u16 *re, struct u16 *body)
{
    if (a->root == a)
        fill_negs(a);
    if (!a->type)
        return plain_to_re(a, dot, re, body);

    bool repeated = a->type == '*' || a->type == '+', start = is_start(a);
    struct u16 b = { 0 }, bda = { 0 };
    parts_to_re(a, dot, &b);
    if (start && is_end(a) && !b.n && a->type != '!') {
        struct u16 s = { 0 };
        const struct u16 *str = ast_str(a);
        putn(&s, str->v, str->n);
        parts_clear(a);
        push_part(a, NULL, s.v, s.n);
        a->type = 0;
        a->has_magic = -1;
        putn(re, s.v, s.n);
        if (body)
            unescape16(&s, body);
        u16_done(&s);
        return false;
    }
    if (repeated && !dot)
        parts_to_re(a, true, &bda);
    if (bda.n == b.n && (!b.n || memcmp(bda.v, b.v, b.n * sizeof(*b.v)) == 0))
        bda.n = 0;
    if (body)
        unescape16(&b, body);
    if (a->type == '!' && a->empty_ext) {
        puts16(re, start && !dot ? "(?!\\.)[^/]+?" : "[^/]+?");
    } else {
        puts16(re, a->type == '!' ? "(?:(?!(?:" : "(?:");
        if (bda.n) {
            puts16(re, "(?:");
            putn(re, b.v, b.n);
            puts16(re, ")(?:");
            putn(re, bda.v, bda.n);
            puts16(re, ")*?");
        } else {
            putn(re, b.v, b.n);
        }
        if (a->type == '!') {
            puts16(re, "))");
            if (start && !dot)
                puts16(re, "(?!\\.)");
            puts16(re, "[^/]*?)");
        } else if (a->type == '@' || (a->type == '+' && bda.n)) {
            put(re, ')');
        } else if (a->type == '?' || (a->type == '*' && bda.n)) {
            puts16(re, ")?");
        } else {
            put(re, ')');
            put(re, (uint16_t) a->type);
        }
    }
    u16_done(&b);
    u16_done(&bda);
    a->has_magic = 1;
    return true;
}

/* ---- translation for PCRE2 ---- */

struct al_glob_re {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mc;
    bool uflag;
    char *js;             /* the JavaScript source, for tests */
};

struct xl {
    const uint16_t *v;
    size_t n, i;
    bool u;
    char *o;
    size_t on, ocap;
    bool bad_escape;
};

static void out(struct xl *x, const char *s)
{
    size_t n = strlen(s);
    if (x->on + n + 1 > x->ocap) {
        x->ocap = 2 * (x->on + n + 1);
        x->o = al_xrealloc(x->o, x->ocap);
    }
    memcpy(x->o + x->on, s, n + 1);
    x->on += n;
}

/* Surrogates cannot be UTF-8: they move to plane 16, where no unit goes. */
static uint32_t map_cp(uint32_t c)
{
    return c >= 0xd800 && c < 0xe000 ? c + SURROGATE_MAP : c;
}

static void out_cp(struct xl *x, uint32_t c)
{
    char b[16];
    (void) snprintf(b, sizeof(b), "\\x{%x}", map_cp(c));
    out(x, b);
}

/* One character (an escape or a unit, or a pair in u mode): its value, or
 * -1 after copying a \p{...} through. */
static int64_t next_char(struct xl *x, bool in_class)
{
    uint32_t c = x->v[x->i++];
    if (x->u && is_hi(c) && x->i < x->n && is_lo(x->v[x->i]))
        return 0x10000 + ((c - 0xd800) << 10) + (x->v[x->i++] - 0xdc00u);
    if (c != '\\' || x->i >= x->n)
        return c;
    uint32_t d = x->v[x->i++];
    switch (d) {
    case 't': return '\t';
    case 'n': return '\n';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case 'x':
        if (x->i + 2 <= x->n) {
            char h[3] = { (char) x->v[x->i], (char) x->v[x->i + 1], 0 };
            x->i += 2;
            return strtol(h, NULL, 16);
        }
        return 'x';
    case 'p':
        out(x, "\\p{");
        for (x->i++; x->i < x->n && x->v[x->i] != '}'; x->i++) {
            char b[2] = { (char) x->v[x->i], 0 };
            out(x, b);
        }
        x->i++;
        out(x, "}");
        return -1;
    default:
        /* u mode allows identity escapes of syntax characters only. */
        if (x->u && !(d < 0x80 && strchr("^$\\.*+?()[]{}|/", (int) d) && d) && !(in_class && d == '-'))
            x->bad_escape = true;
        return d;
    }
}

static void out_range(struct xl *x, uint32_t lo, uint32_t hi)
{
    char b[48];
    if (lo <= 0xdfff && hi >= 0xd800 && (lo < 0xd800 || hi > 0xdfff)) {
        /* Surrogates live elsewhere: split the range around them. */
        if (lo < 0xd800)
            out_range(x, lo, 0xd7ff);
        out_range(x, AL_MAX(lo, 0xd800u), AL_MIN(hi, 0xdfffu));
        if (hi > 0xdfff)
            out_range(x, 0xe000, hi);
        return;
    }
    (void) snprintf(b, sizeof(b), "\\x{%x}-\\x{%x}", map_cp(lo), map_cp(hi));
    out(x, b);
}

static void translate_class(struct xl *x)
{
    out(x, "[");
    if (x->i < x->n && x->v[x->i] == '^') {
        out(x, "^");
        x->i++;
    }
    while (x->i < x->n && x->v[x->i] != ']') {
        int64_t lo = next_char(x, true);
        if (lo < 0)
            continue;
        if (x->i + 1 < x->n && x->v[x->i] == '-' && x->v[x->i + 1] != ']') {
            x->i++;
            int64_t hi = next_char(x, true);
            if (hi >= 0) {
                uint32_t l = (uint32_t) lo, h = (uint32_t) hi;
                if (l > h) {
                    out(x, "\\x{2}-\\x{1}");   /* out of order: a compile error, as in V8 */
                    continue;
                }
                out_range(x, l, h);
                continue;
            }
        }
        out_cp(x, (uint32_t) lo);
    }
    x->i++;
    out(x, "]");
}

/* JavaScript source (without the anchors) to a PCRE2 pattern in UTF mode. */
static char *translate(const struct u16 *js, bool u, bool *bad_escape)
{
    struct xl x = { .v = js->v, .n = js->n, .u = u };
    out(&x, "^");
    while (x.i < x.n) {
        uint16_t c = x.v[x.i];
        if (c == '(' && x.i + 2 < x.n && x.v[x.i + 1] == '?') {
            char b[4] = { '(', '?', (char) x.v[x.i + 2], 0 };
            out(&x, b);
            x.i += 3;
        } else if (c < 0x80 && strchr("()|?*+^$.", c) && c) {
            char b[2] = { (char) c, 0 };
            out(&x, b);
            x.i++;
        } else if (c == '[') {
            x.i++;
            translate_class(&x);
        } else {
            int64_t v = next_char(&x, false);
            if (v >= 0)
                out_cp(&x, (uint32_t) v);
        }
    }
    out(&x, "$");
    *bad_escape = x.bad_escape;
    return x.o;
}

/* ---- the exports ---- */

static char *js_message(const struct u16 *re, bool u, const char *why)
{
    _cleanup_free_ char *src = utf8_of(re);
    return al_xasprintf("Invalid regular expression: /^%s$/%s: %s", src, u ? "u" : "", why);
}

int al_glob_seg_compile(const char *seg, char **ret_lit, struct al_glob_re **ret_re, char **ret_err)
{
    struct u16 g = { 0 }, re = { 0 }, body = { 0 };
    struct ast *root = ast_new(0, NULL);
    _cleanup_free_ char *pat = NULL;
    bool bad = false;
    int r = 0;

    *ret_lit = NULL;
    *ret_re = NULL;
    *ret_err = NULL;
    utf16_of(seg, &g);
    (void) parse_ast(g.v, g.n, root, 0);
    bool magic = to_re(root, false, &re, &body);
    bool u = root->uflag;
    ast_free(root);
    if (!magic) {
        *ret_lit = utf8_of(&body);
        goto out;
    }
    pat = translate(&re, u, &bad);
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = bad ? NULL
                           : pcre2_compile((PCRE2_SPTR) pat, PCRE2_ZERO_TERMINATED,
                                           PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK, &err, &off,
                                           NULL);
    if (!code) {
        *ret_err = js_message(&re, u, bad ? "Invalid escape" : "Nothing to repeat");
        r = -EINVAL;
        goto out;
    }
    struct al_glob_re *x = al_xcalloc(1, sizeof(*x));
    x->code = code;
    x->md = pcre2_match_data_create(1, NULL);
    x->mc = pcre2_match_context_create(NULL);
    if (!x->md || !x->mc)
        abort();
    pcre2_set_match_limit(x->mc, MATCH_LIMIT);
    pcre2_set_depth_limit(x->mc, MATCH_LIMIT / 10);
    x->uflag = u;
    x->js = utf8_of(&re);
    *ret_re = x;
out:
    u16_done(&g);
    u16_done(&re);
    u16_done(&body);
    return r;
}

bool al_glob_re_match(const struct al_glob_re *re, const char *name)
{
    size_t n = strlen(name);
    _cleanup_free_ char *s = al_xmalloc(8 * n + 1);
    size_t k = 0;

    /* As UTF-16 units (surrogates mapped) without the u flag, else as code
     * points; invalid UTF-8 reads as U+FFFD either way. */
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += utf8_next((const unsigned char *) name + i, n - i, &c);
        if (c >= 0x10000 && !re->uflag) {
            k += utf8_put(s + k, 0xd800 + ((c - 0x10000) >> 10) + SURROGATE_MAP);
            k += utf8_put(s + k, 0xdc00 + ((c - 0x10000) & 0x3ff) + SURROGATE_MAP);
        } else {
            k += utf8_put(s + k, c);
        }
    }
    return pcre2_match(re->code, (PCRE2_SPTR) s, k, 0, 0, re->md, re->mc) >= 0;
}

const char *al_glob_re_source(const struct al_glob_re *re)
{
    return re->js;
}

struct al_glob_re *al_glob_re_free(struct al_glob_re *re)
{
    if (re) {
        pcre2_code_free(re->code);
        pcre2_match_data_free(re->md);
        pcre2_match_context_free(re->mc);
        free(re->js);
        free(re);
    }
    return NULL;
}
