/* SPDX-License-Identifier: Apache-2.0 */
/* libarchive, loaded when first used: the functions skill_archive.c calls,
 * each resolving the real one from libarchive.so.13 on its first call.
 * Linked into airlock-sandbox-runner only, in place of -larchive: a session
 * that installs no skill then never maps libarchive and the eleven
 * libraries it pulls in (libxml2, ICU, libstdc++, the compressors), which
 * made every runner's start, fork and memory larger. The runner loads it
 * inside its sandbox, from the read-only /usr it sees there.
 *
 * If the library cannot be loaded, archive_read_new() returns NULL (the
 * reader reports it) and the reason is logged once; the other functions
 * are only reached with an archive it returned. */
#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

#include "../base/log.h"

/* libarchive 3's soname; the unversioned name is the -dev symlink. */
static const char *const names[] = { "libarchive.so.13", "libarchive.so" };

static void *lib;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    const char *err = NULL;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !lib; i++) {
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib)
            err = dlerror();
    }
    if (!lib)
        al_log(AL_ERROR, "libarchive: cannot load it; skills cannot be installed", AL_STR("why", err ? err : "?"));
}

static void *sym(const char *name)
{
    (void) pthread_once(&once, load);
    return lib ? dlsym(lib, name) : NULL;
}

/* One wrapper: the real function, resolved once; `fail` when there is
 * none. */
#define LAZY(ret, name, params, args, fail)                                  \
    ret name params                                                          \
    {                                                                        \
        static __typeof__(name) *fn;                                         \
        if (!fn)                                                             \
            fn = (__typeof__(name) *) sym(#name);                            \
        return fn ? fn args : (fail);                                        \
    }

LAZY(struct archive *, archive_read_new, (void), (), NULL)
LAZY(int, archive_read_free, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_support_filter_bzip2, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_support_filter_compress, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_support_filter_gzip, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_support_filter_lz4, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_support_filter_lzip, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_support_filter_lzma, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_support_filter_xz, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_support_filter_zstd, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_support_format_tar, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_support_format_zip_seekable, (struct archive * a), (a), ARCHIVE_FATAL)
LAZY(int, archive_read_open_memory, (struct archive * a, const void *buf, size_t size), (a, buf, size),
     ARCHIVE_FATAL)
LAZY(int, archive_read_next_header, (struct archive * a, struct archive_entry **e), (a, e), ARCHIVE_FATAL)
LAZY(la_ssize_t, archive_read_data, (struct archive * a, void *buf, size_t size), (a, buf, size), ARCHIVE_FATAL)
LAZY(la_int64_t, archive_filter_bytes, (struct archive * a, int n), (a, n), -1)
LAZY(const char *, archive_error_string, (struct archive * a), (a), NULL)
LAZY(int, archive_format, (struct archive * a), (a), 0)
LAZY(const char *, archive_zlib_version, (void), (), NULL)
LAZY(const char *, archive_liblzma_version, (void), (), NULL)
LAZY(const char *, archive_bzlib_version, (void), (), NULL)
LAZY(const char *, archive_liblz4_version, (void), (), NULL)
LAZY(const char *, archive_libzstd_version, (void), (), NULL)
LAZY(__LA_MODE_T, archive_entry_filetype, (struct archive_entry * e), (e), 0)
LAZY(__LA_MODE_T, archive_entry_mode, (struct archive_entry * e), (e), 0)
LAZY(const char *, archive_entry_hardlink, (struct archive_entry * e), (e), NULL)
LAZY(const char *, archive_entry_pathname, (struct archive_entry * e), (e), NULL)
LAZY(const char *, archive_entry_pathname_utf8, (struct archive_entry * e), (e), NULL)
LAZY(la_int64_t, archive_entry_size, (struct archive_entry * e), (e), 0)
LAZY(int, archive_entry_size_is_set, (struct archive_entry * e), (e), 0)
