/* SPDX-License-Identifier: Apache-2.0 */
/* Test archives built in memory with libarchive's writer, for the unit
 * tests of the skill archive rules and of skill extraction. Include after
 * <cmocka.h>; test code only. */
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <string.h>

/* Member lists name three fields and leave perm (the default) out. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

enum kind { K_FILE, K_DIR, K_SYMLINK, K_HARDLINK, K_FIFO };

struct member {
    const char *name;
    enum kind kind;
    const char *data;   /* file contents, or the link target */
    unsigned perm;      /* 0: 0644 for files, 0755 for directories */
};

/* Writes the members as format (ARCHIVE_FORMAT_*) through filter
 * (ARCHIVE_FILTER_*) into out; returns the archive's size. */
static inline void add_member(struct archive *a, const struct member *m)
{
    struct archive_entry *e = archive_entry_new();
    size_t len = m->kind == K_FILE && m->data ? strlen(m->data) : 0;

    assert_non_null(e);
    archive_entry_set_pathname(e, m->name);
    archive_entry_set_perm(e, m->perm ? m->perm : m->kind == K_DIR ? 0755 : 0644);
    archive_entry_set_mtime(e, 1700000000, 0);
    switch (m->kind) {
    case K_FILE:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, (la_int64_t) len);
        break;
    case K_DIR:
        archive_entry_set_filetype(e, AE_IFDIR);
        break;
    case K_SYMLINK:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, m->data);
        break;
    case K_HARDLINK:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, m->data);
        archive_entry_set_size(e, 0);
        break;
    case K_FIFO:
        archive_entry_set_filetype(e, AE_IFIFO);
        break;
    }
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    if (len)
        assert_int_equal(archive_write_data(a, m->data, len), (la_ssize_t) len);
    archive_entry_free(e);
}

static inline size_t build_into(unsigned char *out, size_t cap, int format, int filter,
                         const struct member *m, size_t nm)
{
    struct archive *a = archive_write_new();
    size_t used = 0;

    assert_non_null(a);
    assert_int_equal(archive_write_set_format(a, format), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
    assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    assert_int_equal(archive_write_open_memory(a, out, cap, &used), ARCHIVE_OK);
    for (size_t i = 0; i < nm; i++)
        add_member(a, &m[i]);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    assert_int_equal(archive_write_free(a), ARCHIVE_OK);
    return used;
}
