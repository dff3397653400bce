/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logging: one JSON object per line on stderr (or a file).
 * Fields: ts, lvl, svc, event, then typed key/values, then src. The level is
 * checked before any argument is evaluated. Never log secrets or bodies.
 * Not thread-safe beyond a single write(2) per line. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

enum al_log_level { AL_DEBUG, AL_INFO, AL_WARN, AL_ERROR, AL_FATAL };

enum al_kv_type { AL_KV_STR, AL_KV_I64, AL_KV_U64, AL_KV_BOOL, AL_KV_ERRNO, AL_KV_F64 };

struct al_kv {
    const char *key;
    enum al_kv_type type;
    union {
        const char *s;
        int64_t i;
        uint64_t u;
        bool b;
        double d;
    };
};

#define AL_STR(k, v)  ((struct al_kv){ .key = (k), .type = AL_KV_STR, .s = (v) })
#define AL_I64(k, v)  ((struct al_kv){ .key = (k), .type = AL_KV_I64, .i = (int64_t)(v) })
#define AL_U64(k, v)  ((struct al_kv){ .key = (k), .type = AL_KV_U64, .u = (uint64_t)(v) })
#define AL_BOOL(k, v) ((struct al_kv){ .key = (k), .type = AL_KV_BOOL, .b = (v) })
#define AL_F64(k, v)  ((struct al_kv){ .key = (k), .type = AL_KV_F64, .d = (v) })
/* r is a negative errno code, as returned by our functions. */
#define AL_ERR(r)     ((struct al_kv){ .key = "err", .type = AL_KV_ERRNO, .i = -(int64_t)(r) })

extern enum al_log_level al_log_min;

void al_log_emit(enum al_log_level lvl, const char *event, const char *file, int line,
                 const struct al_kv *kv, size_t n);

#define al_log(lvl, event, ...)                                               \
    do {                                                                      \
        if ((lvl) >= al_log_min) {                                            \
            const struct al_kv al__kv[] = { { 0 }, ##__VA_ARGS__ };           \
            al_log_emit((lvl), (event), __FILE__, __LINE__,                   \
                        al__kv + 1, AL_ELEMENTSOF(al__kv) - 1);               \
        }                                                                     \
    } while (0)

/* Log once, where the error is handled, and hand the code back. */
#define al_log_errno(lvl, r, event, ...)                                      \
    ({ int al__r = (r); al_log((lvl), (event), AL_ERR(al__r), ##__VA_ARGS__); al__r; })

/* svc names the daemon ("hub", "worker", ...). fd is where lines go (2 by default). */
void al_log_setup(const char *svc, enum al_log_level min, int fd);
int al_log_level_parse(const char *s, enum al_log_level *ret);
/* The symbolic name of a positive errno value ("ENOENT"), or NULL. */
const char *al_errno_name(int e);
