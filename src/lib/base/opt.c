/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "opt.h"
#include "util.h"

static const struct al_opt *find(const struct al_opt *t, const char *name, size_t n)
{
    for (; t->name; t++)
        if (strlen(t->name) == n && strncmp(t->name, name, n) == 0)
            return t;
    return NULL;
}

static void env_name(const char *name, char *out, size_t outsz)
{
    size_t o = (size_t) snprintf(out, outsz, "AIRLOCK_");
    for (; *name && o + 1 < outsz; name++)
        out[o++] = *name == '-' ? '_' : (char) toupper((unsigned char) *name);
    out[o] = '\0';
}

static int set(const struct al_opt *o, void *cfg, const char *val, const char *src)
{
    char *base = (char *) cfg + o->offset;
    int r = 0;

    switch (o->type) {
    case AL_OPT_STR: {
        char **p = (char **) base;
        free(*p);
        *p = val ? al_xstrdup(val) : NULL;
        return 0;
    }
    case AL_OPT_INT:
        r = al_parse_i64(val, INT64_MIN + 1, INT64_MAX, (int64_t *) base);
        break;
    case AL_OPT_DURATION:
        r = al_parse_duration_us(val, (int64_t *) base);
        break;
    case AL_OPT_BOOL:
        if (!val || !strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes") || !strcmp(val, "on"))
            *(bool *) base = true;
        else if (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no") || !strcmp(val, "off"))
            *(bool *) base = false;
        else
            r = -EINVAL;
        break;
    case AL_OPT_LIST: {
        char ***p = (char ***) base;
        size_t n = 0;
        while (*p && (*p)[n])
            n++;
        *p = al_xrealloc(*p, (n + 2) * sizeof(char *));
        (*p)[n] = al_xstrdup(val);
        (*p)[n + 1] = NULL;
        return 0;
    }
    }
    if (r < 0)
        fprintf(stderr, "airlock: %s: %s: invalid value \"%s\"\n", src, o->name, val ? val : "");
    return r;
}

/* Sources in order of precedence. A list option accumulates repeats within
 * one source, but a later source replaces what an earlier one set, as every
 * other option type does. src_of[] remembers, per option, the last source. */
enum { SRC_DEFAULT = 1, SRC_FILE, SRC_ENV, SRC_FLAG };

static int set_from(const struct al_opt *t, const struct al_opt *o, void *cfg, const char *val, const char *src,
                    unsigned char *src_of, unsigned char now)
{
    if (o->type == AL_OPT_LIST && src_of[o - t] != now) {
        char ***p = (char ***) ((char *) cfg + o->offset);
        for (size_t i = 0; *p && (*p)[i]; i++)
            free((*p)[i]);
        free(*p);
        *p = NULL;
    }
    src_of[o - t] = now;
    return set(o, cfg, val, src);
}

static int load_file(const struct al_opt *t, void *cfg, const char *path, unsigned char *src_of)
{
    FILE *f = fopen(path, "re");
    char line[4096], src[512];
    int lineno = 0;

    if (!f) {
        fprintf(stderr, "airlock: cannot open config file %s: %s\n", path, al_errno_name(errno) ?: "error");
        return -errno;
    }
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = line + strspn(line, " \t");
        s[strcspn(s, "\r\n")] = '\0';
        if (*s == '#' || *s == '\0')
            continue;
        char *eq = strchr(s, '=');
        snprintf(src, sizeof(src), "%s:%d", path, lineno);
        if (!eq) {
            fprintf(stderr, "airlock: %s: expected \"name = value\"\n", src);
            fclose(f);
            return -EINVAL;
        }
        char *k_end = eq;
        while (k_end > s && (k_end[-1] == ' ' || k_end[-1] == '\t'))
            k_end--;
        char *v = eq + 1 + strspn(eq + 1, " \t");
        size_t vl = strlen(v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            v[--vl] = '\0';
        const struct al_opt *o = find(t, s, (size_t) (k_end - s));
        if (!o) {
            fprintf(stderr, "airlock: %s: unknown option \"%.*s\"\n", src, (int) (k_end - s), s);
            fclose(f);
            return -EINVAL;
        }
        if (set_from(t, o, cfg, v, src, src_of, SRC_FILE) < 0) {
            fclose(f);
            return -EINVAL;
        }
    }
    fclose(f);
    return 0;
}

int al_opts_load(const struct al_opt *table, void *cfg, int argc, char **argv, struct al_opts_result *res)
{
    const char *config = NULL;
    char env[128];
    size_t nopts = 0;

    *res = (struct al_opts_result){ 0 };
    res->args = al_xcalloc((size_t) argc + 1, sizeof(char *));
    while (table[nopts].name)
        nopts++;
    _cleanup_free_ unsigned char *src_of = al_xcalloc(nopts + 1, 1);

    for (const struct al_opt *o = table; o->name; o++)
        if (o->def && set_from(table, o, cfg, o->def, "default", src_of, SRC_DEFAULT) < 0)
            return -EINVAL;

    /* First pass: find --config and --help so the file is read before flags. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            res->help = true;
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    }
    if (res->help)
        return 0;
    if (!config)
        config = secure_getenv("AIRLOCK_CONFIG");
    if (config && load_file(table, cfg, config, src_of) < 0)
        return -EINVAL;

    for (const struct al_opt *o = table; o->name; o++) {
        env_name(o->name, env, sizeof(env));
        const char *v = secure_getenv(env);
        if (v && *v && set_from(table, o, cfg, v, env, src_of, SRC_ENV) < 0)
            return -EINVAL;
    }

    for (int i = 1; i < argc && argv[i]; i++) {
        char *a = argv[i];
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++)
                res->args[res->nargs++] = argv[i];
            break;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            res->args[res->nargs++] = a;
            continue;
        }
        char *name = a + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t) (eq - name) : strlen(name);
        if (n == 6 && !strncmp(name, "config", 6)) {
            if (!eq)
                i++;
            continue;
        }
        const struct al_opt *o = find(table, name, n);
        if (!o) {
            fprintf(stderr, "airlock: unknown option --%.*s (see --help)\n", (int) n, name);
            return -EINVAL;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && o->type != AL_OPT_BOOL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "airlock: option --%s needs a value\n", o->name);
                return -EINVAL;
            }
            val = argv[++i];
        }
        if (set_from(table, o, cfg, val, "command line", src_of, SRC_FLAG) < 0)
            return -EINVAL;
    }
    return 0;
}

void al_opts_free(const struct al_opt *table, void *cfg)
{
    for (const struct al_opt *o = table; o->name; o++) {
        char *base = (char *) cfg + o->offset;
        if (o->type == AL_OPT_STR) {
            free(*(char **) base);
            *(char **) base = NULL;
        } else if (o->type == AL_OPT_LIST) {
            char **l = *(char ***) base;
            for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
            free(l);
            *(char ***) base = NULL;
        }
    }
}

void al_opts_help(const struct al_opt *table, const char *usage, const char *desc)
{
    char env[128], flag[96];

    printf("usage: %s\n\n%s\n\noptions (flag, environment variable, default):\n", usage, desc);
    for (const struct al_opt *o = table; o->name; o++) {
        env_name(o->name, env, sizeof(env));
        if (o->type == AL_OPT_BOOL)
            snprintf(flag, sizeof(flag), "--%s", o->name);
        else
            snprintf(flag, sizeof(flag), "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
        printf("  %-28s %s%s\n", flag, o->help, o->type == AL_OPT_LIST ? " (repeatable)" : "");
        printf("  %-28s   env %s%s%s\n", "", env, o->def ? ", default " : "", o->def ? o->def : "");
    }
    printf("  %-28s %s\n", "--config FILE", "read \"name = value\" lines from FILE (env AIRLOCK_CONFIG)");
    printf("  %-28s %s\n", "--help", "show this help");
}
