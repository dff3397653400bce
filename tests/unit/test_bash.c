/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/sandbox/bash.c: a real /bin/bash per test. The
 * expected texts are the SDK Node toolset's, checked against it case by
 * case (see docs/internals/RUNNER.md). This process becomes a subreaper, as
 * the runner is, so escapers re-parent to it. */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "al_test.h"
#include "src/sandbox/toolset.h"

extern char **environ;

struct fixture {
    char dir[256];
    struct al_bash *b;
    struct al_tool_ctx ctx;
};

static int setup(void **state)
{
    struct fixture *fx = al_xcalloc(1, sizeof(*fx));

    al_test_mkdtemp(fx->dir);
    fx->b = al_bash_new(fx->dir, (const char *const *) environ);
    fx->ctx = (struct al_tool_ctx){ .root_fd = -1, .root = fx->dir, .cancel_fd = -1 };
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    fx->b = al_bash_free(fx->b);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    al_test_rm_rf(fx->dir);
    free(fx);
    return 0;
}

/* Runs input (JSON text) and checks the answer. */
static void run_expect(struct fixture *fx, const char *input, bool is_error, const char *want)
{
    json_t *in = json_loads(input, 0, NULL);
    struct al_tool_result r = { 0 };

    assert_non_null(in);
    ASSERT_OK(al_bash_call(fx->b, &fx->ctx, in, &r));
    if (r.is_error != is_error || r.len != strlen(want) || memcmp(r.text, want, r.len) != 0) {
        print_error("%s: got %s \"%.*s\", want %s \"%s\"\n", input, r.is_error ? "error" : "ok", (int) r.len,
                    r.text, is_error ? "error" : "ok", want);
        _fail(__FILE__, __LINE__);
    }
    al_tool_result_done(&r);
    json_decref(in);
}

static void cmd_expect(struct fixture *fx, const char *cmd, bool is_error, const char *want)
{
    json_t *in = json_pack("{s:s}", "command", cmd);
    char *text = json_dumps(in, 0);

    run_expect(fx, text, is_error, want);
    free(text);
    json_decref(in);
}

static void test_basic_texts(void **state)
{
    struct fixture *fx = *state;

    cmd_expect(fx, "printf abc", false, "abc");
    cmd_expect(fx, "echo", false, "");
    cmd_expect(fx, "true", false, "");
    cmd_expect(fx, "false", true, "exit 1");
    cmd_expect(fx, "echo out; (exit 4)", true, "out");
    cmd_expect(fx, "printf 'x\\n\\r\\n\\n'", false, "x\n\r");
    cmd_expect(fx, "echo a; echo b >&2; echo c", false, "a\nb\nc");
    cmd_expect(fx, "cat; read x; echo \"[$x]\"", false, "[]");
    run_expect(fx, "{}", true, "bash: command is required");
    run_expect(fx, "{\"command\":\"\"}", true, "bash: command is required");
    run_expect(fx, "{\"command\":0}", true, "bash: command is required");
    run_expect(fx, "{\"command\":\"echo $0\",\"timeout_ms\":0}", false, "/bin/bash");
}

static void test_nul_and_utf8(void **state)
{
    struct fixture *fx = *state;
    json_t *in = json_pack("{s:s}", "command", "printf 'a\\0b\\xff\\xe2\\x82x\\xf0\\x9f\\x98\\x80'");
    struct al_tool_result r = { 0 };

    ASSERT_OK(al_bash_call(fx->b, &fx->ctx, in, &r));
    /* Node's decoder: one U+FFFD per maximal ill-formed subpart. */
    ASSERT_MEM_EQ(r.text, r.len, "a\0b\xef\xbf\xbd\xef\xbf\xbdx\xf0\x9f\x98\x80", 14);
    al_tool_result_done(&r);
    json_decref(in);
}

static void test_ansi(void **state)
{
    struct fixture *fx = *state;

    cmd_expect(fx, "printf '\\033[31mred\\033[0m\\n\\n\\n'", false, "red");
    cmd_expect(fx, "printf '\\033[12\\033[0mX\\033[?25hY\\033[1;2 qZ'", false, "\033[12XYZ");
    cmd_expect(fx, "printf 'a\\033]0;t\\007b\\033[2Kc'", false, "a\033]0;t\007bc");
}

static void test_persistence(void **state)
{
    struct fixture *fx = *state;
    char want[512];

    cmd_expect(fx, "mkdir -p sub && cd sub && export V=1 && f() { echo fn; }", false, "");
    snprintf(want, sizeof(want), "%s/sub\n1\nfn", fx->dir);
    cmd_expect(fx, "pwd; echo $V; f", false, want);
    /* bash's own messages count lines as the SDK's wrapper makes them. */
    cmd_expect(fx, "bad_cmd_xyz", true, "/bin/bash: line 5: bad_cmd_xyz: command not found");
}

static void test_exit_terminates(void **state)
{
    struct fixture *fx = *state;

    cmd_expect(fx, "cd /; X=1", false, "");
    cmd_expect(fx, "echo hi; exit 3", true, "bash: bash session terminated");
    cmd_expect(fx, "fi", true, "bash: bash session terminated");   /* a syntax error ends bash too */
    cmd_expect(fx, "kill -9 $$", true, "bash: bash session terminated");
    /* A fresh shell: back in the workdir, state gone. */
    char want[512];
    snprintf(want, sizeof(want), "%s\n[]", fx->dir);
    cmd_expect(fx, "pwd; echo \"[$X]\"", false, want);
}

static void test_restart(void **state)
{
    struct fixture *fx = *state;

    cmd_expect(fx, "export V=1", false, "");
    run_expect(fx, "{\"restart\":true}", false, "bash session restarted");
    cmd_expect(fx, "echo \"[$V]\"", false, "[]");
    cmd_expect(fx, "export V=2", false, "");
    run_expect(fx, "{\"restart\":true,\"command\":\"echo \\\"[$V]\\\"\"}", false, "[]");
    run_expect(fx, "{\"restart\":1,\"command\":\"\"}", false, "bash session restarted");
}

static bool gone_or_zombie(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    (void) close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

/* A SIGKILLed process takes a moment to become a zombie. */
static bool wait_gone(pid_t pid)
{
    for (int i = 0; i < 200; i++) {
        if (gone_or_zombie(pid))
            return true;
        (void) poll(NULL, 0, 10);
    }
    return false;
}

static pid_t read_pid(const char *dir, const char *name)
{
    char path[512], buf[32] = { 0 };
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
    (void) close(fd);
    return (pid_t) strtol(buf, NULL, 10);
}

/* A timeout kills the command and what escaped it (setsid in an orphaned
 * subshell re-parents to us), and keeps the shell with its state. */
static void test_timeout_keeps_state(void **state)
{
    struct fixture *fx = *state;
    char want[512];

    cmd_expect(fx, "mkdir -p d && cd d && export K=kept && g() { echo gfn; }", false, "");
    cmd_expect(fx, "(setsid sleep 1000 & echo $! > ../esc.pid)", false, "");
    pid_t esc = read_pid(fx->dir, "esc.pid");
    assert_false(gone_or_zombie(esc));
    run_expect(fx, "{\"command\":\"sleep 1000 & echo $! > ../bg.pid; sleep 30\",\"timeout_ms\":300}", true,
               "bash: bash command timed out after 300ms");
    pid_t bg = read_pid(fx->dir, "bg.pid");
    assert_true(wait_gone(esc));
    assert_true(wait_gone(bg));
    snprintf(want, sizeof(want), "%s/d\nkept\ngfn", fx->dir);
    cmd_expect(fx, "pwd; echo $K; g", false, want);
}

/* A builtin loop has no process to kill: the shell is replaced. */
static void test_timeout_builtin_loop(void **state)
{
    struct fixture *fx = *state;

    cmd_expect(fx, "export K=1", false, "");
    run_expect(fx, "{\"command\":\"while :; do :; done\",\"timeout_ms\":200}", true,
               "bash: bash command timed out after 200ms");
    cmd_expect(fx, "echo \"[$K]\"", false, "[]");
}

static void test_truncation(void **state)
{
    struct fixture *fx = *state;
    json_t *in = json_pack("{s:s}", "command", "head -c 200000 /dev/zero | tr '\\0' a; echo; echo; printf '\\033[1mB\\033[0m\\n'");
    struct al_tool_result r = { 0 };
    const char *prefix = "[output truncated]\n";

    /* The SDK keeps 102 400 units of output + "\n" + sentinel (53) + "0" +
     * "\n": 102 344 of the output, whose last lines are "", "", "B". */
    ASSERT_OK(al_bash_call(fx->b, &fx->ctx, in, &r));
    assert_false(r.is_error);
    ASSERT_I64_EQ(r.len, strlen(prefix) + 102332 + 3);
    ASSERT_MEM_EQ(r.text, strlen(prefix), prefix, strlen(prefix));
    ASSERT_MEM_EQ(r.text + r.len - 4, 4, "a\n\nB", 4);
    al_tool_result_done(&r);
    json_decref(in);

    /* Just under the limit: nothing cut. */
    in = json_pack("{s:s}", "command", "head -c 102344 /dev/zero | tr '\\0' a");
    ASSERT_OK(al_bash_call(fx->b, &fx->ctx, in, &r));
    ASSERT_I64_EQ(r.len, 102344);
    al_tool_result_done(&r);
    json_decref(in);
    in = json_pack("{s:s}", "command", "head -c 102344 /dev/zero | tr '\\0' a; (exit 12)");
    ASSERT_OK(al_bash_call(fx->b, &fx->ctx, in, &r));
    assert_true(r.is_error);
    ASSERT_I64_EQ(r.len, strlen(prefix) + 102343);
    al_tool_result_done(&r);
    json_decref(in);
}

/* Units, not bytes: an emoji is two; a cut inside one gives U+FFFD. */
static void test_truncation_utf16(void **state)
{
    struct fixture *fx = *state;
    json_t *in = json_pack("{s:s}", "command",
                           "for i in $(seq 1 60000); do printf '\\xf0\\x9f\\x98\\x80'; done; (exit 12)");
    struct al_tool_result r = { 0 };

    ASSERT_OK(al_bash_call(fx->b, &fx->ctx, in, &r));
    assert_true(r.is_error);
    /* 102 343 units kept: a lone low surrogate, then 51 171 emoji. */
    ASSERT_I64_EQ(r.len, 19 + 3 + 51171 * 4);
    ASSERT_MEM_EQ(r.text + 19, 7, "\xef\xbf\xbd\xf0\x9f\x98\x80", 7);
    al_tool_result_done(&r);
    json_decref(in);
}

static void test_huge_output_and_command(void **state)
{
    struct fixture *fx = *state;
    json_t *in = json_pack("{s:s}", "command", "seq 1 3000000");
    struct al_tool_result r = { 0 };

    ASSERT_OK(al_bash_call(fx->b, &fx->ctx, in, &r));
    assert_false(r.is_error);
    ASSERT_MEM_EQ(r.text + r.len - 8, 8, "\n3000000", 8);
    al_tool_result_done(&r);
    json_decref(in);

    /* A 1 MiB command while output flows back: no deadlock. */
    size_t n = 1u << 20;
    char *cmd = al_xmalloc(n + 64);
    int k = snprintf(cmd, 64, "seq 1 200000 >/dev/stderr; echo ");
    memset(cmd + k, 'x', n);
    memcpy(cmd + k + n, " | wc -c", sizeof(" | wc -c"));
    in = json_pack("{s:s}", "command", cmd);
    ASSERT_OK(al_bash_call(fx->b, &fx->ctx, in, &r));
    char want[32];
    snprintf(want, sizeof(want), "\n%zu", n + 1);
    ASSERT_MEM_EQ(r.text + r.len - strlen(want), strlen(want), want, strlen(want));
    al_tool_result_done(&r);
    json_decref(in);
    free(cmd);
}

static void test_cancel(void **state)
{
    struct fixture *fx = *state;
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec its = { .it_value = { .tv_nsec = 200 * 1000 * 1000 } };

    cmd_expect(fx, "export K=1", false, "");
    assert_true(tfd >= 0);
    assert_int_equal(timerfd_settime(tfd, 0, &its, NULL), 0);
    fx->ctx.cancel_fd = tfd;
    cmd_expect(fx, "sleep 30", true, "bash: This operation was aborted");
    /* Still cancelled: the next call does not start. */
    cmd_expect(fx, "echo no", true, "bash: This operation was aborted");
    fx->ctx.cancel_fd = -1;
    (void) close(tfd);
    cmd_expect(fx, "echo yes", false, "yes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_texts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_and_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ansi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_terminates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_keeps_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_builtin_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_utf16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_output_and_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };

    if (access("/bin/bash", X_OK) != 0)
        return 77;
    /* As the runner: orphans re-parent here, and SIGPIPE is ours to see. */
    (void) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
