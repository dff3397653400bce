/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/lib/archive/skill_archive.c: archives are built in memory with
 * libarchive's write API, then inspected. */
#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "al_test_archive.h"

#include "src/lib/archive/skill_archive.h"

#define BUF_MAX (1u << 20)
static unsigned char buf[BUF_MAX];

static const char skill_md[] =
    "---\n"
    "name: pdf\n"
    "description: Extract text and tables from PDF files.\n"
    "---\n"
    "# PDF\n";

#define TAR ARCHIVE_FORMAT_TAR_PAX_RESTRICTED
#define ZIP ARCHIVE_FORMAT_ZIP
#define NONE ARCHIVE_FILTER_NONE
#define build(format, filter, ...)                                                       \
    ({                                                                                   \
        const struct member m_[] = { __VA_ARGS__ };                                      \
        build_into(buf, sizeof(buf), (format), (filter), m_, sizeof(m_) / sizeof(m_[0])); \
    })

static int inspect(size_t n, struct al_skill_info *info)
{
    int r = al_skill_archive_inspect(buf, n, info);
    if (r < 0)
        assert_true(info->error[0] != '\0');
    return r;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

/* ---- al_skill_member_check ---------------------------------------------- */

static void test_member_check(void **state)
{
    (void) state;
    static const struct {
        const char *name;
        enum al_member_verdict reg, dir, special;
    } cases[] = {
        { "SKILL.md", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_EXCLUDED },
        { "a/b/c.py", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_EXCLUDED },
        { "dir/", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_EXCLUDED },
        { "./x", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_EXCLUDED },
        { ".", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_EXCLUDED },
        { "a..b/..c/d..", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_EXCLUDED },
        { ".../x", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_EXCLUDED },
        { "-rf", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_EXCLUDED },
        { "sp ace~!@$%&*()=+[]{};:'\",<>?|`", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_EXCLUDED },
        { "caf\xc3\xa9.md", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_REFUSED },
        { "a^b", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_REFUSED },
        { "a#b", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_REFUSED },
        { "a\\b", AL_MEMBER_OK, AL_MEMBER_OK, AL_MEMBER_REFUSED },
        { "", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "..", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "../", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "../evil", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "a/../b", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "a/..", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "a//../b", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "a\\..\\b", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "/etc/x", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "/", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "\\x", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "a\nb", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "a\tb", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "a\x7f", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
        { "\x1b[31m", AL_MEMBER_REFUSED, AL_MEMBER_REFUSED, AL_MEMBER_REFUSED },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("member %zu: \"%s\"\n", i, cases[i].name);
        assert_int_equal(al_skill_member_check(cases[i].name, true, false), cases[i].reg);
        assert_int_equal(al_skill_member_check(cases[i].name, false, true), cases[i].dir);
        assert_int_equal(al_skill_member_check(cases[i].name, false, false), cases[i].special);
    }
    assert_int_equal(al_skill_member_check(NULL, true, false), AL_MEMBER_REFUSED);
    assert_int_equal(al_skill_member_check(NULL, false, false), AL_MEMBER_REFUSED);
}

/* ---- whole archives ----------------------------------------------------- */

static void test_tar_symlink_excluded(void **state)
{
    struct al_skill_info info;
    (void) state;
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md }, { "scripts/", K_DIR, NULL },
                     { "scripts/run.sh", K_FILE, "#!/bin/sh\n" }, { "link", K_SYMLINK, "SKILL.md" });

    assert_int_equal(inspect(n, &info), 0);
    assert_int_equal(info.members, 3);
    assert_int_equal(info.excluded, 1);
    assert_string_equal(info.name, "pdf");
    assert_string_equal(info.description, "Extract text and tables from PDF files.");
    assert_null(info.directory);
    al_skill_info_done(&info);
    assert_null(info.name);
    al_skill_info_done(&info);   /* idempotent */
    al_skill_info_done(NULL);
}

static void test_tar_dotdot_refused(void **state)
{
    struct al_skill_info info;
    (void) state;
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md }, { "../evil", K_FILE, "x" });

    assert_int_equal(inspect(n, &info), -EPERM);
    assert_contains(info.error, "\"../evil\"");
    assert_contains(info.error, "unsafe archive member");
    assert_null(info.name);
    al_skill_info_done(&info);

    n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md }, { "a/b/../../../evil", K_SYMLINK, "x" });
    assert_int_equal(inspect(n, &info), -EPERM);
    assert_contains(info.error, "a/b/../../../evil");
}

static void test_tar_absolute_refused(void **state)
{
    struct al_skill_info info;
    (void) state;
    size_t n = build(TAR, NONE, { "/etc/x", K_FILE, "x" }, { "SKILL.md", K_FILE, skill_md });

    assert_int_equal(inspect(n, &info), -EPERM);
    assert_contains(info.error, "\"/etc/x\"");
}

static void test_tar_control_char_refused(void **state)
{
    struct al_skill_info info;
    (void) state;
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md }, { "a\x1b]0;x", K_FILE, "x" });

    assert_int_equal(inspect(n, &info), -EPERM);
    assert_contains(info.error, "\"a?]0;x\"");   /* never echoes control bytes */
}

static void test_zip_wrapper(void **state)
{
    struct al_skill_info info;
    (void) state;
    size_t n = build(ZIP, NONE, { "pdf/", K_DIR, NULL }, { "pdf/SKILL.md", K_FILE, skill_md },
                     { "pdf/scripts/extract.py", K_FILE, "print(1)\n" });

    assert_true(n > 4 && memcmp(buf, "PK\3\4", 4) == 0);
    assert_int_equal(inspect(n, &info), 0);
    assert_string_equal(info.directory, "pdf");
    assert_string_equal(info.name, "pdf");
    assert_string_equal(info.description, "Extract text and tables from PDF files.");
    assert_int_equal(info.members, 3);
    assert_int_equal(info.excluded, 0);
    al_skill_info_done(&info);
}

/* The wrapper is implied by member paths, "./" prefixes resolve away, and an
 * excluded member at the top level does not break the wrapper (the worker
 * never extracts it). */
static void test_tar_wrapper_variants(void **state)
{
    struct al_skill_info info;
    (void) state;
    size_t n = build(TAR, NONE, { "./", K_DIR, NULL }, { "./my-skill/SKILL.md", K_FILE, skill_md },
                     { "./my-skill//ref/a.md", K_FILE, "a" }, { "top-link", K_SYMLINK, "my-skill" });

    assert_int_equal(inspect(n, &info), 0);
    assert_string_equal(info.directory, "my-skill");
    assert_int_equal(info.excluded, 1);
    al_skill_info_done(&info);

    n = build(TAR, NONE, { "./", K_DIR, NULL }, { "./SKILL.md", K_FILE, skill_md });
    assert_int_equal(inspect(n, &info), 0);
    assert_null(info.directory);
    assert_string_equal(info.name, "pdf");
    al_skill_info_done(&info);
}

static void test_compressed_tar(void **state)
{
    static const int filters[] = {
        ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_ZSTD,
    };
    struct al_skill_info info;
    (void) state;

    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        size_t n = build(TAR, filters[i], { "pdf/SKILL.md", K_FILE, skill_md },
                         { "pdf/link", K_SYMLINK, "SKILL.md" });
        print_message("filter %d: %zu bytes\n", filters[i], n);
        assert_int_equal(inspect(n, &info), 0);
        assert_string_equal(info.directory, "pdf");
        assert_string_equal(info.name, "pdf");
        assert_int_equal(info.excluded, 1);
        al_skill_info_done(&info);
    }
}

static void test_not_an_archive(void **state)
{
    struct al_skill_info info;
    (void) state;

    static const char text[] = "this is not an archive at all, just some text\n";
    memcpy(buf, text, sizeof(text));
    assert_int_equal(inspect(sizeof(text) - 1, &info), -EBADMSG);
    for (size_t i = 0; i < 4096; i++)
        buf[i] = (unsigned char) (i * 2654435761u >> 13);
    assert_int_equal(inspect(4096, &info), -EBADMSG);
    assert_int_equal(al_skill_archive_inspect(buf, 0, &info), -EBADMSG);
    assert_int_equal(al_skill_archive_inspect(NULL, 0, &info), -EBADMSG);

    /* A truncated archive is damaged, not a different archive. */
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md }, { "big", K_FILE, skill_md });
    assert_int_equal(inspect(n - 1200, &info), -EBADMSG);
}

/* The SDK worker picks unzip or tar from the first four bytes. */
static void test_zip_must_start_with_header(void **state)
{
    struct al_skill_info info;
    unsigned char tmp[4096];
    (void) state;
    size_t n = build(ZIP, NONE, { "SKILL.md", K_FILE, skill_md });

    assert_true(n + 16 < sizeof(tmp));
    memset(tmp, 'x', 16);
    memcpy(tmp + 16, buf, n);
    memcpy(buf, tmp, n + 16);
    assert_int_equal(inspect(n + 16, &info), -EBADMSG);
    assert_contains(info.error, "local file header");

    n = build(ZIP, ARCHIVE_FILTER_GZIP, { "SKILL.md", K_FILE, skill_md });
    assert_int_equal(inspect(n, &info), -EBADMSG);
}

static void test_no_skill_md(void **state)
{
    struct al_skill_info info;
    (void) state;
    size_t n = build(TAR, NONE, { "README.md", K_FILE, "hi" }, { "src/", K_DIR, NULL });

    assert_int_equal(inspect(n, &info), -ENOENT);
    assert_contains(info.error, "SKILL.md");
    assert_null(info.name);

    /* Too deep: only the wrapper's own SKILL.md counts. */
    n = build(TAR, NONE, { "pdf/sub/SKILL.md", K_FILE, skill_md });
    assert_int_equal(inspect(n, &info), -ENOENT);
    assert_contains(info.error, "\"pdf\"");

    /* Two top-level directories: no wrapper, and no SKILL.md at the top. */
    n = build(TAR, NONE, { "a/SKILL.md", K_FILE, skill_md }, { "b/SKILL.md", K_FILE, skill_md });
    assert_int_equal(inspect(n, &info), -ENOENT);

    /* A directory or a symlink named SKILL.md is not a SKILL.md. */
    n = build(TAR, NONE, { "SKILL.md/", K_DIR, NULL }, { "x", K_FILE, "x" });
    assert_int_equal(inspect(n, &info), -ENOENT);
    n = build(TAR, NONE, { "SKILL.md", K_SYMLINK, "README.md" }, { "README.md", K_FILE, skill_md });
    assert_int_equal(inspect(n, &info), -ENOENT);
    assert_int_equal(info.excluded, 1);

    /* An empty archive. */
    n = build(TAR, NONE, { "./", K_DIR, NULL });
    assert_int_equal(inspect(n, &info), -ENOENT);
}

static void test_tar_hardlink_excluded(void **state)
{
    struct al_skill_info info;
    (void) state;
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md }, { "copy.md", K_HARDLINK, "SKILL.md" },
                     { "pipe", K_FIFO, NULL });

    assert_int_equal(inspect(n, &info), 0);
    assert_int_equal(info.members, 1);
    assert_int_equal(info.excluded, 2);
    assert_string_equal(info.name, "pdf");
    al_skill_info_done(&info);

    n = build(ARCHIVE_FORMAT_TAR_USTAR, NONE, { "SKILL.md", K_FILE, skill_md },
              { "copy.md", K_HARDLINK, "SKILL.md" });
    assert_int_equal(inspect(n, &info), 0);
    assert_int_equal(info.excluded, 1);
    al_skill_info_done(&info);
}

static void test_special_name_refused(void **state)
{
    struct al_skill_info info;
    (void) state;
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md }, { "l^nk", K_SYMLINK, "SKILL.md" });

    assert_int_equal(inspect(n, &info), -EPERM);
    assert_contains(info.error, "special member \"l^nk\"");

    n = build(ARCHIVE_FORMAT_TAR_USTAR, NONE, { "SKILL.md", K_FILE, skill_md },
              { "caf\xc3\xa9", K_SYMLINK, "SKILL.md" });
    assert_int_equal(inspect(n, &info), -EPERM);
    assert_contains(info.error, "\"caf??\"");

    /* A regular file may have such a name. */
    n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md }, { "a#b^c", K_FILE, "x" });
    assert_int_equal(inspect(n, &info), 0);
    al_skill_info_done(&info);
}

/* Zip names flagged UTF-8 are readable whatever the caller's locale. */
static void test_zip_utf8_names(void **state)
{
    struct al_skill_info info;
    size_t n;
    (void) state;

    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        skip();
    n = build(ZIP, NONE, { "caf\xc3\xa9/", K_DIR, NULL }, { "caf\xc3\xa9/SKILL.md", K_FILE, skill_md },
              { "caf\xc3\xa9/\xe2\x9c\x93.txt", K_FILE, "x" });
    assert_non_null(setlocale(LC_CTYPE, "C"));
    assert_int_equal(inspect(n, &info), 0);
    assert_string_equal(info.directory, "caf\xc3\xa9");
    assert_int_equal(info.members, 3);
    al_skill_info_done(&info);
}

/* unzip would parse "-x" as an option; tar gets it after "--". */
static void test_zip_dash_special(void **state)
{
    struct al_skill_info info;
    (void) state;
    size_t n = build(ZIP, NONE, { "SKILL.md", K_FILE, skill_md }, { "-link", K_SYMLINK, "SKILL.md" });

    assert_int_equal(inspect(n, &info), -EPERM);
    assert_contains(info.error, "-link");

    n = build(ZIP, NONE, { "SKILL.md", K_FILE, skill_md }, { "link", K_SYMLINK, "SKILL.md" });
    assert_int_equal(inspect(n, &info), 0);
    assert_int_equal(info.excluded, 1);
    al_skill_info_done(&info);

    n = build(TAR, NONE, { "SKILL.md", K_FILE, skill_md }, { "-link", K_SYMLINK, "SKILL.md" });
    assert_int_equal(inspect(n, &info), 0);
    assert_int_equal(info.excluded, 1);
    al_skill_info_done(&info);
}

static void test_too_many_members(void **state)
{
    struct al_skill_info info;
    const size_t nm = AL_SKILL_MAX_MEMBERS + 1;
    struct member *m = calloc(nm, sizeof(*m));
    char (*names)[16] = calloc(nm, sizeof(*names));
    size_t cap = 16u << 20;
    unsigned char *big = malloc(cap);
    (void) state;

    assert_non_null(m);
    assert_non_null(names);
    assert_non_null(big);
    for (size_t i = 0; i < nm; i++) {
        (void) snprintf(names[i], sizeof(names[i]), "f%zu", i);
        m[i] = (struct member){ i ? names[i] : "SKILL.md", K_FILE, i ? NULL : skill_md };
    }
    size_t n = build_into(big, cap, ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_GZIP, m, nm);
    assert_int_equal(al_skill_archive_inspect(big, n, &info), -E2BIG);
    assert_contains(info.error, "members");

    n = build_into(big, cap, ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_GZIP, m, nm - 1);
    assert_int_equal(al_skill_archive_inspect(big, n, &info), 0);
    assert_int_equal(info.members, AL_SKILL_MAX_MEMBERS);
    al_skill_info_done(&info);
    free(big);
    free(names);
    free(m);
}

/* The SDK worker's listing is capped at 1 MiB, so long names add up. */
static void test_names_cap(void **state)
{
    struct al_skill_info info;
    const size_t nm = 200, len = 6000;
    struct member *m = calloc(nm, sizeof(*m));
    char *names = calloc(nm, len + 1);
    size_t cap = 4u << 20;
    unsigned char *big = malloc(cap);
    (void) state;

    assert_non_null(m);
    assert_non_null(names);
    assert_non_null(big);
    for (size_t i = 0; i < nm; i++) {
        char *name = names + i * (len + 1), prefix[16];
        int w = snprintf(prefix, sizeof(prefix), "%05zu/", i);
        memset(name, 'a', len);
        memcpy(name, prefix, (size_t) w);
        m[i] = (struct member){ i ? name : "SKILL.md", K_FILE, i ? NULL : skill_md };
    }
    size_t n = build_into(big, cap, TAR, ARCHIVE_FILTER_GZIP, m, nm);
    assert_int_equal(al_skill_archive_inspect(big, n, &info), -E2BIG);
    assert_contains(info.error, "names");

    n = build_into(big, cap, TAR, ARCHIVE_FILTER_GZIP, m, nm / 2);
    assert_int_equal(al_skill_archive_inspect(big, n, &info), 0);
    al_skill_info_done(&info);
    free(big);
    free(names);
    free(m);
}

/* A ustar header claiming a 3 GiB member, with no data after it: refused
 * before anything tries to skip (decompress) that much. */
static void test_declared_size_cap(void **state)
{
    struct al_skill_info info;
    unsigned sum = 0;
    (void) state;

    memset(buf, 0, 1024);
    memcpy(buf, "huge.bin", sizeof("huge.bin"));
    memcpy(buf + 100, "0000644", 8);
    memcpy(buf + 108, "0000000", 8);
    memcpy(buf + 116, "0000000", 8);
    memcpy(buf + 124, "30000000000", 12);   /* octal: 3 GiB */
    memcpy(buf + 136, "00000000000", 12);
    buf[156] = '0';
    memcpy(buf + 257, "ustar\0" "00", sizeof("ustar\0" "00"));
    memset(buf + 148, ' ', 8);
    for (size_t i = 0; i < 512; i++)
        sum += buf[i];
    (void) snprintf((char *) buf + 148, 8, "%06o", sum);
    assert_int_equal(inspect(1024, &info), -E2BIG);
    assert_contains(info.error, "MiB");
}

/* ---- front matter ------------------------------------------------------- */

static int inspect_md(const char *md, struct al_skill_info *info)
{
    size_t n = build(TAR, NONE, { "SKILL.md", K_FILE, md });
    return inspect(n, info);
}

static void check_md(const char *md, const char *name, const char *description)
{
    struct al_skill_info info;

    print_message("SKILL.md: %s\n", md);
    assert_int_equal(inspect_md(md, &info), 0);
    if (name)
        assert_string_equal(info.name, name);
    else
        assert_null(info.name);
    if (description)
        assert_string_equal(info.description, description);
    else
        assert_null(info.description);
    al_skill_info_done(&info);
}

static void test_front_matter(void **state)
{
    (void) state;
    check_md("---\nname:  spaced  \ndescription:\tTabbed\t\n---\n", "spaced", "Tabbed");
    check_md("---\r\nname: crlf\r\ndescription: \"Quoted: yes\"\r\n---\r\nbody\r\n", "crlf", "Quoted: yes");
    check_md("\xef\xbb\xbf---\nname: 'it''s'\ndescription: \"a \\\"b\\\" c\" # note\n---\n",
             "it's", "a \"b\" c");
    check_md("---\nname: plain # comment\ndescription: a#b is not a comment\n---\n",
             "plain", "a#b is not a comment");
    check_md("---\nlicense: MIT\nname: later\nmetadata:\n  name: nested\n---\n", "later", NULL);
    check_md("---\nname: x\ndescription: >\n  Folded across\n  two lines.\n\n  New paragraph.\n---\n",
             "x", "Folded across two lines.\nNew paragraph.");
    check_md("---\nname: x\ndescription: |-\n  line one\n    indented\n  line three\nextra: 1\n---\n",
             "x", "line one\n  indented\nline three");
    check_md("---\nname: x\ndescription: a plain\n  scalar that\n  continues\n...\n", "x",
             "a plain scalar that continues");
    check_md("---\nname: \"caf\xc3\xa9 \xe2\x9c\x93\"\n---\n", "caf\xc3\xa9 \xe2\x9c\x93", NULL);
    check_md("---\nname:\ndescription: \"\"\n---\n", NULL, NULL);
    check_md("---\nname: first\nname: second\n---\n", "second", NULL);
    check_md("---\nname:nospace\nnames: no\n---\n", NULL, NULL);
    /* Not front matter: no opening line, no closing line, not at the top. */
    check_md("name: x\n", NULL, NULL);
    check_md("---\nname: x\n", NULL, NULL);
    check_md("\n---\nname: x\n---\n", NULL, NULL);
    check_md("", NULL, NULL);
    /* Unusable text is dropped, not passed on. */
    check_md("---\nname: bad\xff\xfe\ndescription: ok\n---\n", NULL, "ok");
    check_md("---\nname: \"esc\\x1b\"\ndescription: \"bell\a\"\n---\n", "escx1b", NULL);
    check_md("---\nname: \xed\xa0\x80surrogate\n---\n", NULL, NULL);
}

/* Front matter is at the top, so a huge SKILL.md is read only up to the cap. */
static void test_large_skill_md(void **state)
{
    struct al_skill_info info;
    size_t len = AL_SKILL_MD_MAX + 100000;
    char *md = malloc(len + 1);
    (void) state;

    assert_non_null(md);
    memset(md, 'x', len);
    md[len] = '\0';
    memcpy(md, "---\nname: big\n---\n", 18);
    assert_int_equal(inspect_md(md, &info), 0);
    assert_string_equal(info.name, "big");
    al_skill_info_done(&info);
    free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_check),
        cmocka_unit_test(test_tar_symlink_excluded),
        cmocka_unit_test(test_tar_dotdot_refused),
        cmocka_unit_test(test_tar_absolute_refused),
        cmocka_unit_test(test_tar_control_char_refused),
        cmocka_unit_test(test_zip_wrapper),
        cmocka_unit_test(test_tar_wrapper_variants),
        cmocka_unit_test(test_compressed_tar),
        cmocka_unit_test(test_not_an_archive),
        cmocka_unit_test(test_zip_must_start_with_header),
        cmocka_unit_test(test_no_skill_md),
        cmocka_unit_test(test_tar_hardlink_excluded),
        cmocka_unit_test(test_special_name_refused),
        cmocka_unit_test(test_zip_utf8_names),
        cmocka_unit_test(test_zip_dash_special),
        cmocka_unit_test(test_too_many_members),
        cmocka_unit_test(test_names_cap),
        cmocka_unit_test(test_declared_size_cap),
        cmocka_unit_test(test_front_matter),
        cmocka_unit_test(test_large_skill_md),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
