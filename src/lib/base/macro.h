/* SPDX-License-Identifier: Apache-2.0 */
/* Small language helpers used everywhere: cleanup attributes, ownership
 * moves, array sizes. libc only; safe to include from any module. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f)     __attribute__((cleanup(f)))
#define _must_check_     __attribute__((warn_unused_result))
#define _unused_         __attribute__((unused))
#define _printf_(a, b)   __attribute__((format(printf, a, b)))

#define AL_ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define AL_MIN(a, b)     ((a) < (b) ? (a) : (b))
#define AL_MAX(a, b)     ((a) > (b) ? (a) : (b))

static inline void al_freep(void *p) { free(*(void **) p); }
static inline void al_closep(int *fd) { if (*fd >= 0) (void) close(*fd); }
#define _cleanup_free_   _cleanup_(al_freep)
#define _cleanup_close_  _cleanup_(al_closep)

/* Move ownership out of a cleanup-managed variable. */
#define TAKE_PTR(p)  ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd)  ({ int _fd = (fd); (fd) = -1; _fd; })

/* Abort on allocation failure: out of memory is not a recoverable state for
 * a daemon whose requests are bounded. */
#define _nonnull_ret_ __attribute__((returns_nonnull))
_nonnull_ret_ void *al_xmalloc(size_t n);
_nonnull_ret_ void *al_xcalloc(size_t n, size_t m);
_nonnull_ret_ void *al_xrealloc(void *p, size_t n);
_nonnull_ret_ char *al_xstrdup(const char *s);
_nonnull_ret_ char *al_xstrndup(const char *s, size_t n);
_nonnull_ret_ _printf_(1, 2) char *al_xasprintf(const char *fmt, ...);
