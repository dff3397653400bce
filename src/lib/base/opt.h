/* SPDX-License-Identifier: Apache-2.0 */
/* One config table per command drives flags, the AIRLOCK_* environment and
 * a config file, and generates --help. Precedence:
 *   defaults < --config FILE ("name = value" lines) < AIRLOCK_<NAME> < --name.
 * A bad value fails with "source: name: message". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

enum al_opt_type {
    AL_OPT_STR,      /* char * (malloc'd) */
    AL_OPT_INT,      /* int64_t */
    AL_OPT_DURATION, /* int64_t µs; "250ms", "5s", "2m" */
    AL_OPT_BOOL,     /* bool; flag without value = true */
    AL_OPT_LIST,     /* char ** NULL-terminated, repeatable flag */
};

struct al_opt {
    const char *name;          /* long flag name, also the file key */
    enum al_opt_type type;
    size_t offset;             /* into the command's config struct */
    const char *def;           /* default as a user would type it, or NULL */
    const char *help;
    const char *metavar;       /* shown in --help, e.g. "ADDR" */
};

#define AL_OPT(n, t, st, field, def, meta, help) \
    { (n), (t), offsetof(st, field), (def), (help), (meta) }

struct al_opts_result {
    char **args;               /* positional arguments (borrowed from argv) */
    int nargs;
    bool help;                 /* --help was given */
};

/* Loads every option of table (terminated by { 0 }) into cfg. argv[0] is the
 * command name and is skipped. On error prints "airlock: ..." to stderr and
 * returns -EINVAL. Unknown flags are errors. */
_must_check_ int al_opts_load(const struct al_opt *table, void *cfg, int argc, char **argv,
                              struct al_opts_result *res);
void al_opts_free(const struct al_opt *table, void *cfg);
/* Prints "usage" then one line per option with its default and env name. */
void al_opts_help(const struct al_opt *table, const char *usage, const char *desc);
