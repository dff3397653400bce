/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/sandbox/skills.c: archives are built in memory with
 * libarchive's writer (tar, tar.gz, zip), extracted into a temporary
 * workdir and checked on disk; refused or failing archives must leave
 * nothing behind and never write outside the workdir. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "al_test_archive.h"

#include "al_test.h"
#include "src/lib/archive/skill_archive.h"
#include "src/sandbox/skills.h"

#define BUF_MAX (1u << 20)
static unsigned char buf[BUF_MAX];

/* A private tree per test: <root>/work is the workdir, <root>/outside is
 * where a planted link points. */
struct fixture {
    char root[256];
    char work[300];
    char outside[300];
    int workdir_fd;
};

static const char skill_md[] = "---\nname: pdf\ndescription: PDF tools.\n---\n# PDF\n";

#define TAR ARCHIVE_FORMAT_TAR_PAX_RESTRICTED
#define ZIP ARCHIVE_FORMAT_ZIP
#define NONE ARCHIVE_FILTER_NONE
#define GZIP ARCHIVE_FILTER_GZIP
#define build(format, filter, ...)                                                       \
    ({                                                                                   \
        const struct member m_[] = { __VA_ARGS__ };                                      \
        build_into(buf, sizeof(buf), (format), (filter), m_, sizeof(m_) / sizeof(m_[0])); \
    })

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    al_test_mkdtemp(f->root);
    (void) snprintf(f->work, sizeof(f->work), "%s/work", f->root);
    (void) snprintf(f->outside, sizeof(f->outside), "%s/outside", f->root);
    assert_int_equal(mkdir(f->work, 0700), 0);
    assert_int_equal(mkdir(f->outside, 0700), 0);
    f->workdir_fd = open(f->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(f->workdir_fd >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    (void) close(f->workdir_fd);
    al_test_rm_rf(f->root);
    free(f);
    return 0;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack ? haystack : "(null)", needle);
}

/* Installs buf[0..n) as skills/<dir>; returns the result, checks *why. */
static int install(struct fixture *f, const char *dir, size_t n, char **ret_why)
{
    char *why = NULL;
    int r = al_skill_install(f->workdir_fd, dir, buf, n, &why);

    if (r < 0) {
        assert_non_null(why);
        assert_null(strstr(why, f->root));   /* no host path */
    } else
        assert_null(why);
    if (ret_why)
        *ret_why = why;
    else
        free(why);
    return r;
}

/* lstat of work/<rel>: the type and permission bits, or 0 when absent. */
static mode_t mode_of(struct fixture *f, const char *rel)
{
    struct stat st;
    if (fstatat(f->workdir_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        assert_int_equal(errno, ENOENT);
        return 0;
    }
    return st.st_mode & (S_IFMT | 07777);
}

static void assert_file(struct fixture *f, const char *rel, const char *content, mode_t perm)
{
    char got[4096];
    int fd = openat(f->workdir_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        fail_msg("%s: missing (errno %d)", rel, errno);
    n = read(fd, got, sizeof(got));
    (void) close(fd);
    assert_true(n >= 0);
    ASSERT_MEM_EQ(got, (size_t) n, content, strlen(content));
    ASSERT_I64_EQ(mode_of(f, rel), S_IFREG | perm);
}

/* Entries of work/<rel> other than "." and "..". */
static size_t count_entries(struct fixture *f, const char *rel)
{
    int fd = openat(f->workdir_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;
    struct dirent *de;
    size_t n = 0;

    assert_true(fd >= 0);
    d = fdopendir(fd);
    assert_non_null(d);
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    (void) closedir(d);
    return n;
}

/* Nothing under skills/ but what the test expects, in particular no
 * staging directory. */
static void assert_skills_holds(struct fixture *f, size_t n)
{
    ASSERT_I64_EQ(count_entries(f, "skills"), n);
}

static size_t outside_entries(struct fixture *f)
{
    DIR *d = opendir(f->outside);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    (void) closedir(d);
    return n;
}

/* ---- extraction --------------------------------------------------------- */

static void check_wrapper_tree(struct fixture *f)
{
    assert_file(f, "skills/pdf/SKILL.md", skill_md, 0644);
    assert_file(f, "skills/pdf/scripts/run.sh", "#!/bin/sh\n", 0755);
    assert_file(f, "skills/pdf/scripts/user-x.py", "x", 0755);
    assert_file(f, "skills/pdf/data.txt", "data", 0644);
    ASSERT_I64_EQ(mode_of(f, "skills"), S_IFDIR | 0700);
    ASSERT_I64_EQ(mode_of(f, "skills/pdf"), S_IFDIR | 0700);
    ASSERT_I64_EQ(mode_of(f, "skills/pdf/scripts"), S_IFDIR | 0700);
    ASSERT_I64_EQ(mode_of(f, "skills/pdf/pdf"), 0);
    ASSERT_I64_EQ(mode_of(f, "skills/pdf/link"), 0);
    ASSERT_I64_EQ(mode_of(f, "skills/pdf/hard"), 0);
    ASSERT_I64_EQ(mode_of(f, "skills/pdf/fifo"), 0);
    assert_skills_holds(f, 1);
    ASSERT_I64_EQ(count_entries(f, "."), 1);
}

/* pdf/... wrapper with exec bits, a symlink, a hardlink and a fifo, as a
 * tar, a tar.gz and (without the fifo) a zip. */
static void test_wrapper_stripped(void **state)
{
    struct fixture *f = *state;
    static const int variants[][2] = { { TAR, NONE }, { TAR, GZIP }, { ZIP, NONE } };

    for (size_t i = 0; i < AL_ELEMENTSOF(variants); i++) {
        bool zip = variants[i][0] == ZIP;
        size_t n = build(variants[i][0], variants[i][1],
                         { "pdf/", K_DIR, NULL, 0755 },
                         { "pdf/SKILL.md", K_FILE, skill_md, 0664 },
                         { "pdf/scripts/run.sh", K_FILE, "#!/bin/sh\n", 0775 },
                         { "pdf/scripts/user-x.py", K_FILE, "x", 0100 },
                         { "pdf/data.txt", K_FILE, "data", 0600 },
                         { "pdf/link", K_SYMLINK, "/etc/passwd", 0 },
                         { "pdf/hard", zip ? K_SYMLINK : K_HARDLINK, "pdf/data.txt", 0 },
                         { zip ? "pdf/data.txt" : "pdf/fifo", zip ? K_FILE : K_FIFO,
                           zip ? "data" : NULL, 0 });
        print_message("variant %zu: %zu bytes\n", i, n);
        ASSERT_OK(install(f, "pdf", n, NULL));
        check_wrapper_tree(f);
        ASSERT_OK(al_skill_remove(f->workdir_fd, "pdf"));
        ASSERT_I64_EQ(mode_of(f, "skills/pdf"), 0);
        assert_skills_holds(f, 0);
    }
}

/* Several top-level names, or one with nothing below it: not stripped. */
static void test_no_wrapper(void **state)
{
    struct fixture *f = *state;
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md, 0 }, { "a/b.txt", K_FILE, "b", 0 });

    ASSERT_OK(install(f, "x", n, NULL));
    assert_file(f, "skills/x/SKILL.md", skill_md, 0644);
    assert_file(f, "skills/x/a/b.txt", "b", 0644);

    n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md, 0 });
    ASSERT_OK(install(f, "x", n, NULL));
    assert_file(f, "skills/x/SKILL.md", skill_md, 0644);
    ASSERT_I64_EQ(mode_of(f, "skills/x/a"), 0);

    n = build(TAR, NONE, { "pdf/", K_DIR, NULL, 0 });
    ASSERT_OK(install(f, "x", n, NULL));
    ASSERT_I64_EQ(mode_of(f, "skills/x/pdf"), S_IFDIR | 0700);

    /* "./pdf/..." as `tar -C dir .` writes it: the wrapper is pdf. */
    n = build(TAR, GZIP, { "./", K_DIR, NULL, 0 }, { "./pdf/", K_DIR, NULL, 0 }, { "./pdf/SKILL.md", K_FILE, skill_md, 0 });
    ASSERT_OK(install(f, "x", n, NULL));
    assert_file(f, "skills/x/SKILL.md", skill_md, 0644);

    /* Only special members: an empty skill directory, as the SDK leaves. */
    n = build(TAR, NONE, { "link", K_SYMLINK, "/etc", 0 });
    ASSERT_OK(install(f, "x", n, NULL));
    ASSERT_I64_EQ(count_entries(f, "skills/x"), 0);
    assert_skills_holds(f, 1);
}

/* The modes are the normalised ones whatever the umask. */
static void test_modes_ignore_umask(void **state)
{
    struct fixture *f = *state;
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md, 0 }, { "bin/x", K_FILE, "x", 0700 });
    mode_t old = umask(0777);
    int r = install(f, "u", n, NULL);

    (void) umask(old);
    ASSERT_OK(r);
    ASSERT_I64_EQ(mode_of(f, "skills"), S_IFDIR | 0700);
    ASSERT_I64_EQ(mode_of(f, "skills/u"), S_IFDIR | 0700);
    ASSERT_I64_EQ(mode_of(f, "skills/u/bin"), S_IFDIR | 0700);
    assert_file(f, "skills/u/SKILL.md", skill_md, 0644);
    assert_file(f, "skills/u/bin/x", "x", 0755);
}

static void test_duplicate_member_replaced(void **state)
{
    struct fixture *f = *state;
    size_t n = build(TAR, NONE, { "s/SKILL.md", K_FILE, "old", 0 }, { "s/SKILL.md", K_FILE, "new", 0755 });

    ASSERT_OK(install(f, "s", n, NULL));
    assert_file(f, "skills/s/SKILL.md", "new", 0755);
}

/* A backslash is an ordinary byte in a regular file's name, but a special
 * member named with one cannot be excluded verbatim: refused. */
static void test_backslash_names(void **state)
{
    struct fixture *f = *state;
    char *why;
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md, 0 }, { "a\\b.txt", K_FILE, "ab", 0 });

    ASSERT_OK(install(f, "bs", n, NULL));
    assert_file(f, "skills/bs/a\\b.txt", "ab", 0644);

    n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md, 0 }, { "a\\b", K_SYMLINK, "SKILL.md", 0 });
    ASSERT_RET(install(f, "bs", n, &why), -EPERM);
    assert_contains(why, "refusing to extract unsafe archive special member");
    free(why);
    ASSERT_I64_EQ(mode_of(f, "skills/bs"), 0);   /* the old one went first */
    assert_skills_holds(f, 0);
}

/* ---- refusals leave nothing behind --------------------------------------- */

static void check_refused(struct fixture *f, size_t n, int want, const char *text)
{
    char *why;

    ASSERT_RET(install(f, "bad", n, &why), want);
    assert_contains(why, text);
    free(why);
    ASSERT_I64_EQ(mode_of(f, "skills/bad"), 0);
    assert_skills_holds(f, 0);
    ASSERT_I64_EQ(count_entries(f, "."), 1);
    ASSERT_I64_EQ(outside_entries(f), 0);
    ASSERT_I64_EQ(mode_of(f, "../evil"), 0);
}

static void test_unsafe_members_refused(void **state)
{
    struct fixture *f = *state;
    const char *unsafe = "refusing to extract unsafe archive member";

    check_refused(f, build(TAR, NONE, { "SKILL.md", K_FILE, skill_md, 0 }, { "../evil", K_FILE, "x", 0 }),
                  -EPERM, unsafe);
    check_refused(f, build(TAR, GZIP, { "SKILL.md", K_FILE, skill_md, 0 }, { "a/../../evil", K_DIR, NULL, 0 }),
                  -EPERM, unsafe);
    check_refused(f, build(TAR, NONE, { "SKILL.md", K_FILE, skill_md, 0 }, { "/abs", K_FILE, "x", 0 }),
                  -EPERM, unsafe);
    check_refused(f, build(ZIP, NONE, { "SKILL.md", K_FILE, skill_md, 0 }, { "..\\evil", K_FILE, "x", 0 }),
                  -EPERM, unsafe);
    check_refused(f, build(ZIP, NONE, { "SKILL.md", K_FILE, skill_md, 0 }, { "-l", K_SYMLINK, "x", 0 }),
                  -EPERM, "special member");
}

static void test_not_an_archive(void **state)
{
    struct fixture *f = *state;

    memcpy(buf, "hello, this is not an archive at all", 36);
    check_refused(f, 36, -EBADMSG, "not a zip or tar archive");
    memcpy(buf, "PK\3\4garbage", 11);
    check_refused(f, 11, -EBADMSG, "archive");
    check_refused(f, 0, -EBADMSG, "empty");
}

/* A ustar header claiming a 3 GiB member after a good one: refused before
 * anything is decompressed, and the first member's file is gone. */
static void test_declared_size_cap(void **state)
{
    struct fixture *f = *state;
    size_t n = build(ARCHIVE_FORMAT_TAR_USTAR, NONE, { "s/SKILL.md", K_FILE, skill_md, 0 });
    unsigned char *h;
    unsigned sum = 0;

    n -= 1024;   /* drop the end-of-archive blocks */
    h = buf + n;
    memset(h, 0, 1024);
    memcpy(h, "s/huge.bin", sizeof("s/huge.bin"));
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    memcpy(h + 124, "30000000000", 12);
    memcpy(h + 136, "00000000000", 12);
    h[156] = '0';
    memcpy(h + 257, "ustar\0" "00", sizeof("ustar\0" "00"));
    memset(h + 148, ' ', 8);
    for (size_t i = 0; i < 512; i++)
        sum += h[i];
    (void) snprintf((char *) h + 148, 8, "%06o", sum);
    check_refused(f, n + 1024, -E2BIG, "MiB");
}

static void test_too_many_members(void **state)
{
    struct fixture *f = *state;
    const size_t nm = AL_SKILL_MAX_MEMBERS + 1;
    struct member *m = calloc(nm, sizeof(*m));
    char (*names)[16] = calloc(nm, sizeof(*names));
    size_t cap = 16u << 20, n;
    unsigned char *big = malloc(cap);
    char *why;

    assert_non_null(m);
    assert_non_null(names);
    assert_non_null(big);
    for (size_t i = 0; i < nm; i++) {
        (void) snprintf(names[i], sizeof(names[i]), "d%zu/", i);
        m[i] = (struct member){ names[i], K_DIR, NULL, 0 };
    }
    n = build_into(big, cap, ARCHIVE_FORMAT_TAR_USTAR, GZIP, m, nm);
    ASSERT_RET(al_skill_install(f->workdir_fd, "many", big, n, &why), -E2BIG);
    assert_contains(why, "members");
    free(why);
    assert_skills_holds(f, 0);
    free(big);
    free(names);
    free(m);
}

/* A member that needs a directory where a file was extracted fails, and
 * the partial tree is removed. */
static void test_file_then_dir_fails_clean(void **state)
{
    struct fixture *f = *state;
    char *why;
    size_t n = build(TAR, NONE, { "s/x", K_FILE, "x", 0 }, { "s/x/y", K_FILE, "y", 0 });

    ASSERT_RET(install(f, "s", n, &why), -ENOTDIR);
    assert_contains(why, "cannot extract archive member \"s/x/y\"");
    free(why);
    assert_skills_holds(f, 0);
}

/* ---- the destination and skills/ ----------------------------------------- */

/* The old tree goes, including a link into outside/, which is not followed. */
static void test_existing_dest_replaced(void **state)
{
    struct fixture *f = *state;
    char target[320];
    size_t n;

    (void) snprintf(target, sizeof(target), "%s/keep", f->outside);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(mkdirat(f->workdir_fd, "skills", 0750), 0);
    assert_int_equal(mkdirat(f->workdir_fd, "skills/pdf", 0755), 0);
    assert_int_equal(mkdirat(f->workdir_fd, "skills/pdf/sub", 0755), 0);
    int fd = openat(f->workdir_fd, "skills/pdf/sub/old.txt", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    (void) close(fd);
    assert_int_equal(symlinkat(f->outside, f->workdir_fd, "skills/pdf/ln"), 0);

    n = build(TAR, GZIP, { "pdf/SKILL.md", K_FILE, skill_md, 0 });
    ASSERT_OK(install(f, "pdf", n, NULL));
    assert_file(f, "skills/pdf/SKILL.md", skill_md, 0644);
    ASSERT_I64_EQ(count_entries(f, "skills/pdf"), 1);
    ASSERT_I64_EQ(outside_entries(f), 1);
    ASSERT_I64_EQ(mode_of(f, "skills"), S_IFDIR | 0750);   /* an existing skills/ keeps its mode */

    /* The same through al_skill_remove, and a dest that is a link. */
    assert_int_equal(symlinkat(f->outside, f->workdir_fd, "skills/pdf/ln"), 0);
    ASSERT_OK(al_skill_remove(f->workdir_fd, "pdf"));
    ASSERT_I64_EQ(outside_entries(f), 1);
    assert_int_equal(symlinkat(f->outside, f->workdir_fd, "skills/pdf"), 0);
    ASSERT_OK(install(f, "pdf", n, NULL));
    ASSERT_I64_EQ(mode_of(f, "skills/pdf"), S_IFDIR | 0700);
    ASSERT_I64_EQ(outside_entries(f), 1);
    ASSERT_OK(al_skill_remove(f->workdir_fd, "pdf"));
    ASSERT_OK(al_skill_remove(f->workdir_fd, "pdf"));   /* gone already */
    assert_skills_holds(f, 0);
}

static void test_symlinked_skills_refused(void **state)
{
    struct fixture *f = *state;
    size_t n = build(TAR, NONE, { "pdf/SKILL.md", K_FILE, skill_md, 0 });
    char *why;

    assert_int_equal(symlinkat(f->outside, f->workdir_fd, "skills"), 0);
    int r = install(f, "pdf", n, &why);
    assert_true(r == -ELOOP || r == -ENOTDIR);
    assert_contains(why, "skills directory");
    free(why);
    ASSERT_I64_EQ(outside_entries(f), 0);
    r = al_skill_remove(f->workdir_fd, "pdf");
    assert_true(r == -ELOOP || r == -ENOTDIR);

    /* A file there is no better. */
    assert_int_equal(unlinkat(f->workdir_fd, "skills", 0), 0);
    int fd = openat(f->workdir_fd, "skills", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    (void) close(fd);
    ASSERT_RET(install(f, "pdf", n, NULL), -ENOTDIR);
    ASSERT_I64_EQ(outside_entries(f), 0);
}

static void test_bad_dir_names(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = { "", ".", "..", "a/b", "/abs" };
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md, 0 });

    for (size_t i = 0; i < AL_ELEMENTSOF(bad); i++) {
        ASSERT_RET(install(f, bad[i], n, NULL), -EINVAL);
        ASSERT_RET(al_skill_remove(f->workdir_fd, bad[i]), -EINVAL);
    }
    ASSERT_I64_EQ(count_entries(f, "."), 0);
    ASSERT_OK(al_skill_remove(f->workdir_fd, "never"));   /* no skills/ at all */
}

/* ---- the fuzz corpus as fixtures ------------------------------------------ */

static size_t load_seed(const char *name)
{
    char path[512];
    int fd;
    ssize_t n;

    const char *here = __FILE__, *tail = strstr(here, "tests/unit/");

    if (!tail)
        return 0;
    (void) snprintf(path, sizeof(path), "%.*sfuzz/corpus/fuzz_skill_member/%s", (int) (tail - here), here,
                    name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf));
    (void) close(fd);
    return n > 0 ? (size_t) n : 0;
}

static void test_corpus_seeds(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *seed;
        int want;
    } cases[] = {
        { "tar_wrapper.tar.gz", 0 },    { "zip_wrapper.zip", 0 },      { "tar_symlink.tar", 0 },
        { "zip_symlink.zip", 0 },       { "tar_hardlink_fifo.tar", 0 }, { "tar_pax_block.tar.xz", 0 },
        { "tar_no_skill.tar.bz2", 0 },  { "tar_dotdot.tar", -EPERM },  { "tar_absolute.tar", -EPERM },
        { "zip_dotdot.zip", -EPERM },   { "tar_bad_special.tar", -EPERM },
        { "zip_dash_symlink.zip", -EPERM },
    };

    for (size_t i = 0; i < AL_ELEMENTSOF(cases); i++) {
        size_t n = load_seed(cases[i].seed);
        if (!n)
            skip();
        print_message("seed %s\n", cases[i].seed);
        ASSERT_RET(install(f, "seed", n, NULL), cases[i].want);
        if (cases[i].want == 0)
            assert_true(S_ISDIR(mode_of(f, "skills/seed")));
        ASSERT_OK(al_skill_remove(f->workdir_fd, "seed"));
        assert_skills_holds(f, 0);
        ASSERT_I64_EQ(outside_entries(f), 0);
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_wrapper_stripped),
        T(test_no_wrapper),
        T(test_modes_ignore_umask),
        T(test_duplicate_member_replaced),
        T(test_backslash_names),
        T(test_unsafe_members_refused),
        T(test_not_an_archive),
        T(test_declared_size_cap),
        T(test_too_many_members),
        T(test_file_then_dir_fails_clean),
        T(test_existing_dest_replaced),
        T(test_symlinked_skills_refused),
        T(test_bad_dir_names),
        T(test_corpus_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
