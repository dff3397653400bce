/* SPDX-License-Identifier: Apache-2.0 */
/* sandbox file tools: confinement (.., absolute, symlinks in and out,
 * dangling, loops, a symlink swapped in after the check), the SDK's texts,
 * caps, modes, CRLF and unicode, glob and grep (rg and the PCRE2 fallback).
 * Expected texts were checked against the SDK's Node toolset. */
#include "al_test.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/fsutil.h"
#include "sandbox/globpat.h"
#include "sandbox/toolset.h"

static char g_dir[256];
static char g_root[4096];
static struct al_tool_ctx g_ctx;
static const char *g_env_norg[] = { "PATH=/nonexistent", NULL };
static const char *g_env_rg[] = { "PATH=/usr/bin:/bin", NULL };

static void put(const char *rel, const char *data)
{
    char p[4400];
    snprintf(p, sizeof(p), "%s/%s", g_root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static int setup(void **state)
{
    al_test_mkdtemp(g_dir);
    assert_non_null(realpath(g_dir, g_root));
    g_ctx = (struct al_tool_ctx){ .root_fd = open(g_root, O_PATH | O_DIRECTORY | O_CLOEXEC),
                                  .root = g_root, .cancel_fd = -1, .env = g_env_norg };
    char p[4400];
    snprintf(p, sizeof(p), "%s/a/b", g_root);
    assert_int_equal(mkdir(p, 0755) == 0 || (snprintf(p, sizeof(p), "%s/a", g_root), mkdir(p, 0755) == 0), 1);
    snprintf(p, sizeof(p), "%s/a/b", g_root);
    (void) mkdir(p, 0755);
    put("f.txt", "one\ntwo\r\nthree\nfour");
    put("a/x.js", "let x = 1;\n");
    put("a/b/y.js", "let y = 2;\n");
    put("u.txt", "h\xc3\xa9llo \xf0\x9f\x98\x80\n");
    return 0;
}

static int teardown(void **state)
{
    close(g_ctx.root_fd);
    al_test_rm_rf(g_dir);
    return 0;
}

static void call(int (*tool)(const struct al_tool_ctx *, const json_t *, struct al_tool_result *),
                 const char *json, bool want_err, const char *want)
{
    json_t *in = json_loads(json, 0, NULL);
    struct al_tool_result r = { 0 };
    assert_non_null(in);
    ASSERT_OK(tool(&g_ctx, in, &r));
    if (r.is_error != want_err)
        print_error("%s: is_error %d: %s\n", json, r.is_error, r.text);
    assert_int_equal(r.is_error, want_err);
    ASSERT_STR_EQ(r.text, want);
    al_tool_result_done(&r);
    json_decref(in);
}

static void test_read(void **state)
{
    call(al_tool_read, "{\"file_path\":\"f.txt\"}", false, "one\ntwo\r\nthree\nfour");
    call(al_tool_read, "{\"file_path\":\"f.txt\",\"view_range\":[2,3]}", false, "two\r\nthree");
    call(al_tool_read, "{\"file_path\":\"f.txt\",\"view_range\":[3,-1]}", false, "three\nfour");
    call(al_tool_read, "{\"file_path\":\"f.txt\",\"view_range\":[0,1]}", false, "one");
    call(al_tool_read, "{\"file_path\":\"f.txt\",\"view_range\":[5,9]}", false, "");
    call(al_tool_read, "{\"file_path\":\"f.txt\",\"view_range\":[3,2]}", false, "");
    call(al_tool_read, "{\"file_path\":\"f.txt\",\"view_range\":[1]}", true, "read: view_range must be [start_line, end_line]");
    call(al_tool_read, "{\"file_path\":\"u.txt\"}", false, "h\xc3\xa9llo \xf0\x9f\x98\x80\n");
    call(al_tool_read, "{}", true, "read: file_path is required");
    call(al_tool_read, "{\"file_path\":\"nope\"}", true, "read: nope: no such file or directory");
    call(al_tool_read, "{\"file_path\":\"a\"}", true, "read: a is not a regular file");
    call(al_tool_read, "{\"file_path\":\"f.txt/x\"}", true, "read: f.txt/x: not a directory");
    put("bin", "x\xff\xfey\n");
    call(al_tool_read, "{\"file_path\":\"bin\"}", false, "x\xef\xbf\xbd\xef\xbf\xbdy\n");
}

static void test_read_caps(void **state)
{
    char p[4400];
    snprintf(p, sizeof(p), "%s/big", g_root);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < 300000; i++)
        fputc('a', f);
    fputs("\nline 2\nline 3\n", f);
    fclose(f);
    call(al_tool_read, "{\"file_path\":\"big\"}", true,
         "read: big is 300015 bytes, exceeds 262144-byte limit. Use the view_range parameter to read "
         "specific line ranges, e.g. view_range: [1, 500].");
    call(al_tool_read, "{\"file_path\":\"big\",\"view_range\":[2,3]}", false, "line 2\nline 3");
    call(al_tool_read, "{\"file_path\":\"big\",\"view_range\":[1,2]}", true,
         "read: view_range [1, 2] of big exceeds 262144-byte limit. Narrow the view_range to read a "
         "smaller portion.");
    call(al_tool_read, "{\"file_path\":\"big\",\"view_range\":[1,1]}", true,
         "read: line 1 of big alone exceeds 262144-byte limit. The read tool cannot return part of a "
         "line, so view_range cannot narrow this further.");
    call(al_tool_edit, "{\"file_path\":\"big\",\"old_string\":\"a\",\"new_string\":\"b\"}", true,
         "edit: big is 300015 bytes, exceeds 262144-byte limit. The edit tool loads the whole file and "
         "cannot modify a file this large.");
    unlink(p);
}

static void test_confine(void **state)
{
    char p[4400];
    call(al_tool_read, "{\"file_path\":\"../x\"}", true, "path \"../x\" is outside the session's working directory");
    call(al_tool_read, "{\"file_path\":\"/etc/passwd\"}", true,
         "path \"/etc/passwd\" is outside the session's working directory");
    call(al_tool_read, "{\"file_path\":\"a/../f.txt\"}", false, "one\ntwo\r\nthree\nfour");
    call(al_tool_read, "{\"file_path\":\"a\\\"b\\n\"}", true, "read: a\"b\n: no such file or directory");
    _cleanup_free_ char *abs = al_xasprintf("{\"file_path\":\"%s/f.txt\"}", g_root);
    call(al_tool_read, abs, false, "one\ntwo\r\nthree\nfour");
    snprintf(p, sizeof(p), "%s/outl", g_root);
    assert_int_equal(symlink("/etc", p), 0);
    call(al_tool_read, "{\"file_path\":\"outl/passwd\"}", true,
         "path \"outl/passwd\" is outside the session's working directory");
    call(al_tool_write, "{\"file_path\":\"outl/x\",\"content\":\"x\"}", true,
         "path \"outl/x\" is outside the session's working directory");
    snprintf(p, sizeof(p), "%s/dang", g_root);
    assert_int_equal(symlink("/nonexistent-al/x", p), 0);
    call(al_tool_write, "{\"file_path\":\"dang\",\"content\":\"x\"}", true,
         "path \"dang\" is outside the session's working directory");
    snprintf(p, sizeof(p), "%s/inl", g_root);
    assert_int_equal(symlink("a", p), 0);
    call(al_tool_read, "{\"file_path\":\"inl/x.js\"}", false, "let x = 1;\n");
    snprintf(p, sizeof(p), "%s/loop1", g_root);
    assert_int_equal(symlink("loop2", p), 0);
    snprintf(p, sizeof(p), "%s/loop2", g_root);
    assert_int_equal(symlink("loop1", p), 0);
    call(al_tool_read, "{\"file_path\":\"loop1\"}", true, "path \"loop1\": too many levels of symbolic links");
}

/* Swaps directory "sw" for a symlink to outside between the check and the
 * open: openat2(RESOLVE_NO_SYMLINKS) must refuse, nothing written outside. */
static char g_out[256];
static void swap_hook(const char *abs)
{
    char p[4400], q[4400];
    snprintf(p, sizeof(p), "%s/sw", g_root);
    snprintf(q, sizeof(q), "%s/sw.old", g_root);
    if (rename(p, q) == 0)
        assert_int_equal(symlink(g_out, p), 0);
}

static void test_race(void **state)
{
    char p[4400];
    al_test_mkdtemp(g_out);
    snprintf(p, sizeof(p), "%s/sw", g_root);
    assert_int_equal(mkdir(p, 0700), 0);
    al_fstools_race_hook = swap_hook;
    call(al_tool_write, "{\"file_path\":\"sw/evil\",\"content\":\"x\"}", true,
         "write: sw/evil: too many levels of symbolic links");
    al_fstools_race_hook = NULL;
    snprintf(p, sizeof(p), "%s/evil", g_out);
    assert_int_equal(access(p, F_OK), -1);
    al_test_rm_rf(g_out);
}

static void test_write_edit(void **state)
{
    char p[4400];
    struct stat st;
    call(al_tool_write, "{\"file_path\":\"new/d/n.txt\",\"content\":\"h\\u00e9llo\"}", false,
         "wrote 6 bytes to new/d/n.txt");
    snprintf(p, sizeof(p), "%s/new/d/n.txt", g_root);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(p, sizeof(p), "%s/new/d", g_root);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);
    call(al_tool_write, "{\"file_path\":\"f.txt/x\",\"content\":\"x\"}", true, "write: f.txt/x: i/o error (EEXIST)");
    call(al_tool_write, "{\"file_path\":\"a\",\"content\":\"x\"}", true, "write: a: is a directory");
    call(al_tool_write, "{\"content\":\"x\"}", true, "write: file_path is required");
    call(al_tool_write, "{\"file_path\":\"empty\"}", false, "wrote 0 bytes to empty");

    put("e.txt", "aXa\r\nXX\n");
    snprintf(p, sizeof(p), "%s/e.txt", g_root);
    assert_int_equal(chmod(p, 0751), 0);
    call(al_tool_edit, "{\"file_path\":\"e.txt\",\"old_string\":\"X\",\"new_string\":\"$&\"}", true,
         "edit: old_string appears 3 times in e.txt (must be unique)");
    call(al_tool_edit, "{\"file_path\":\"e.txt\",\"old_string\":\"XX\",\"new_string\":\"$&\"}", false,
         "edited e.txt (1 replacement(s))");
    call(al_tool_read, "{\"file_path\":\"e.txt\"}", false, "aXa\r\n$&\n");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0751);
    call(al_tool_edit, "{\"file_path\":\"e.txt\",\"old_string\":\"a\",\"new_string\":\"\\u00e9\",\"replace_all\":true}",
         false, "edited e.txt (2 replacement(s))");
    call(al_tool_read, "{\"file_path\":\"e.txt\"}", false, "\xc3\xa9X\xc3\xa9\r\n$&\n");
    call(al_tool_edit, "{\"file_path\":\"e.txt\",\"old_string\":\"Q\",\"new_string\":\"y\"}", true,
         "edit: old_string not found in e.txt");
    call(al_tool_edit, "{\"file_path\":\"e.txt\",\"old_string\":\"\",\"new_string\":\"y\"}", true,
         "edit: old_string is required");
    call(al_tool_edit, "{\"file_path\":\"a\",\"old_string\":\"x\",\"new_string\":\"y\"}", true,
         "edit: a is not a regular file");
    call(al_tool_edit, "{\"file_path\":\"nope\",\"old_string\":\"x\",\"new_string\":\"y\"}", true,
         "edit: nope: no such file or directory");
}

static void test_glob(void **state)
{
    _cleanup_free_ char *want = NULL;
    call(al_tool_glob, "{\"pattern\":\"/etc/*\"}", true,
         "glob: absolute pattern not permitted; pass a relative pattern (and optionally path)");
    call(al_tool_glob, "{\"pattern\":\"{a,..}/*\"}", true, "glob: \"..\" is not permitted in the pattern");
    call(al_tool_glob, "{\"pattern\":\"a\\\\..\\\\x\"}", true, "glob: \"..\" is not permitted in the pattern");
    call(al_tool_glob, "{}", true, "glob: pattern is required");
    call(al_tool_glob, "{\"pattern\":\"nomatch\"}", false, "no matches");
    want = al_xasprintf("%s/a/b/y.js", g_root);
    call(al_tool_glob, "{\"pattern\":\"**/y.js\"}", false, want);
    call(al_tool_glob, "{\"pattern\":\"a/b/[xy].js\"}", false, want);
    call(al_tool_glob, "{\"pattern\":\"a/{c,b}/?.js\"}", false, want);
    call(al_tool_glob, "{\"pattern\":\"y.js\",\"path\":\"a/b\"}", false, want);
    call(al_tool_glob, "{\"pattern\":\"*\",\"path\":\"../\"}", true, "path \"../\" is outside the session's working directory");

    assert_true(al_glob_segment_match("*.js", "x.js"));
    assert_false(al_glob_segment_match("*.js", ".x.js"));
    assert_true(al_glob_segment_match(".*", ".x"));
    assert_true(al_glob_segment_match("?.txt", "\xc3\xa9.txt"));
    assert_true(al_glob_segment_match("[!a-c].n", "1.n"));
    assert_true(al_glob_segment_match("[[:digit:]]", "7"));
    assert_true(al_glob_segment_match("[]]x", "]x"));
    assert_false(al_glob_segment_match("[", "a"));
    assert_false(al_glob_segment_match("*.JS", "x.js"));

    /* Extglobs, checked against Node 22's minimatch. */
    assert_true(al_glob_segment_match("+(a|aaa).txt", "aaa.txt"));
    assert_true(al_glob_segment_match("+(a|aaa).txt", "aa.txt"));
    assert_false(al_glob_segment_match("+(a|aaa).txt", "b.txt"));
    assert_true(al_glob_segment_match("@(a).txt", "a.txt"));
    assert_false(al_glob_segment_match("@(a).txt", "aa.txt"));
    assert_false(al_glob_segment_match("!(a).txt", "a.txt"));
    assert_true(al_glob_segment_match("!(a).txt", "aaa.txt"));
    assert_false(al_glob_segment_match("!(a).txt", ".b.txt"));
    assert_true(al_glob_segment_match("*(a|.b)", ".b"));          /* dots allowed inside */
    assert_true(al_glob_segment_match("?(a|b)c", "c"));
    assert_true(al_glob_segment_match("@(a|!(b))", "c"));
    assert_false(al_glob_segment_match("a!(b)c", "abc"));
    assert_true(al_glob_segment_match("a!(b)c", "axc"));
    assert_true(al_glob_segment_match("!(a|)", "a"));             /* minimatch's emptyExt */
    assert_true(al_glob_segment_match("@(@())", "@"));
    assert_true(al_glob_segment_match("@(a|b", "@(a|b"));         /* unclosed: literal */
    assert_false(al_glob_segment_match("+(!(a)b)c", "abc"));
    /* '?' is one UTF-16 unit unless a POSIX class brings the u flag. */
    assert_false(al_glob_segment_match("?", "\xf0\x9f\x98\x80"));
    assert_true(al_glob_segment_match("??", "\xf0\x9f\x98\x80"));
    assert_true(al_glob_segment_match("[[:alpha:]]?", "a\xf0\x9f\x98\x80"));
    assert_false(al_glob_segment_match("[[:punct:]]", "$"));       /* \p{P} */

    struct al_glob_re *re = NULL;
    _cleanup_free_ char *lit = NULL, *msg = NULL;
    ASSERT_OK(al_glob_seg_compile("!(a).txt", &lit, &re, &msg));
    ASSERT_STR_EQ(al_glob_re_source(re), "(?:(?!(?:a\\.txt(?:$|\\/)))(?!\\.)[^/]*?)\\.txt");
    re = al_glob_re_free(re);
    ASSERT_OK(al_glob_seg_compile("[a].txt", &lit, &re, &msg));
    ASSERT_STR_EQ(lit, "a.txt");
    assert_null(re);
    free(TAKE_PTR(lit));
    assert_int_equal(al_glob_seg_compile("[[:alpha:]] x", &lit, &re, &msg), -EINVAL);
    ASSERT_STR_EQ(msg, "Invalid regular expression: /^(?!\\.)[\\p{L}\\p{Nl}]\\ x$/u: Invalid escape");
    call(al_tool_glob, "{\"pattern\":\"a/[[:alpha:]] x\"}", true,
         "glob: Invalid regular expression: /^(?!\\.)[\\p{L}\\p{Nl}]\\ x$/u: Invalid escape");
    call(al_tool_glob, "{\"pattern\":\"a/+(b|c)/@(y).js\"}", false, want);
    call(al_tool_glob, "{\"pattern\":\"a/b/!(y).js\"}", false, "no matches");

    /* .git and node_modules are pruned, named literally or reached by
     * "**", wherever the runner's cwd is (Node checks under its cwd; we
     * check under the root, as when the worker runs in its workdir). */
    _cleanup_free_ char *p = al_xasprintf("%s/node_modules", g_root);
    assert_int_equal(mkdir(p, 0755), 0);
    put("node_modules/i.js", "x");
    call(al_tool_glob, "{\"pattern\":\"node_modules/i.js\"}", false, "no matches");
    call(al_tool_glob, "{\"pattern\":\"node_modules/*\"}", false, "no matches");
    call(al_tool_glob, "{\"pattern\":\"**/i.js\"}", false, "no matches");
    call(al_tool_glob, "{\"pattern\":\"y.js\",\"path\":\"a/b\"}", false, want);

    struct al_glob_set s = { 0 };
    _cleanup_free_ char *err = NULL;
    ASSERT_OK(al_glob_parse("{1..3}.n", &s, &err));
    assert_int_equal(s.n, 3);
    ASSERT_STR_EQ(s.v[2].parts[0].text, "3.n");
    al_glob_set_done(&s);
    ASSERT_OK(al_glob_parse("./a//**/**/*.js", &s, &err));
    assert_int_equal(s.n, 1);
    assert_int_equal(s.v[0].n, 4);
    assert_int_equal(s.v[0].parts[2].kind, AL_GLOB_GLOBSTAR);
    al_glob_set_done(&s);
}

static void test_grep(void **state)
{
    for (int pass = 0; pass < 2; pass++) {
        g_ctx.env = pass ? g_env_rg : g_env_norg;
        /* rg keeps the \r of a CRLF line and the final newline */
        _cleanup_free_ char *want = al_xasprintf("%s/f.txt:2:two%s", g_root, pass ? "\r\n" : "");
        _cleanup_free_ char *want2 = al_xasprintf("%s/a/b/y.js:1:let y = 2;", g_root);
        call(al_tool_grep, "{\"pattern\":\"t.o\"}", false, want);
        call(al_tool_grep, "{\"pattern\":\"zzzz\"}", false, "no matches");
        call(al_tool_grep, "{}", true, "grep: pattern is required");
        call(al_tool_grep, "{\"pattern\":\"let y\",\"path\":\"a/b/y.js\"}", false, pass ? "1:let y = 2;\n" : want2);
    }
    g_ctx.env = g_env_norg;
    json_t *in = json_loads("{\"pattern\":\"(\"}", 0, NULL);
    struct al_tool_result r = { 0 };
    ASSERT_OK(al_tool_grep(&g_ctx, in, &r));
    assert_true(r.is_error);
    assert_int_equal(strncmp(r.text, "grep: invalid regex: ", 21), 0);
    al_tool_result_done(&r);
    json_decref(in);
    put("nul.txt", "ab\nab");
    _cleanup_free_ char *want3 = al_xasprintf("%s/nul.txt:1:ab\n%s/nul.txt:2:ab", g_root, g_root);
    call(al_tool_grep, "{\"pattern\":\"^ab$\",\"path\":\"nul.txt\"}", false, want3);
}

static void test_path_helpers(void **state)
{
    _cleanup_free_ char *a = al_path_resolve("/r", "a/../../b/./c/");
    ASSERT_STR_EQ(a, "/b/c");
    _cleanup_free_ char *b = al_path_resolve("/r", "/");
    ASSERT_STR_EQ(b, "/");
    assert_true(al_path_within("/r", "/r/x"));
    assert_false(al_path_within("/r", "/rx"));
    _cleanup_free_ char *q = al_js_quote("a\"\\\x01");
    ASSERT_STR_EQ(q, "\"a\\\"\\\\\\u0001\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_helpers),
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_read_caps),
        cmocka_unit_test(test_confine),
        cmocka_unit_test(test_race),
        cmocka_unit_test(test_write_edit),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_grep),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
