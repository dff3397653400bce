/* SPDX-License-Identifier: Apache-2.0 */
/* The grep tool (spec §6.8): the first rg on the session's PATH whose real
 * path is outside the workdir, run as the SDK runs it; without one, a walk
 * that matches lines with PCRE2 the way the SDK's fallback does with a JS
 * RegExp. Deliberate differences: the fallback's regex dialect is PCRE2's,
 * not ECMAScript's, so some patterns differ and "grep: invalid regex: ..."
 * carries PCRE2's message, not V8's; catastrophic backtracking hits PCRE2's
 * match limit (the line counts as not matching) instead of running into
 * the 60 s limit. rg's output is decoded in one piece; Node decodes each
 * pipe chunk separately, which can split a character at a chunk edge. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "fsutil.h"
#include "../lib/base/buf.h"
#include "../lib/base/utf8.h"

#define GREP_OUTPUT_LIMIT   (100 * 1024)
#define GREP_TIMEOUT_MS     60000
#define GREP_MAX_LINE       2000
#define GREP_WALK_MAX_DEPTH 40
#define GREP_WALK_MAX       50000
#define GREP_CHUNK          (64 * 1024)
#define GREP_STDERR_MAX     (64 * 1024)

/* UTF-16 length of valid UTF-8 (what JS's .length counts). */
static size_t u16len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) s[i];
        if ((ch & 0xc0) != 0x80)
            k += ch >= 0xf0 ? 2 : 1;
    }
    return k;
}

/* Byte length of the prefix of s holding at most units UTF-16 units. */
static size_t u16prefix(const char *s, size_t n, size_t units)
{
    size_t k = 0, i = 0;
    while (i < n) {
        unsigned char ch = (unsigned char) s[i];
        size_t w = ch >= 0xf0 ? 2 : 1, len = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
        if (k + w > units)
            break;
        k += w;
        i += len;
    }
    return AL_MIN(i, n);
}

static const char *env_get(const char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (; env && *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static bool within_folded(const char *root, const char *p)
{
    size_t n = strlen(root);
    if (strcasecmp(root, p) == 0)
        return true;
    return strncasecmp(root, p, n) == 0 && p[n] == '/';
}

/* findExecutable('rg', [workdir]) over ctx's PATH. Owned real path. */
static char *find_rg(const struct al_tool_ctx *c)
{
    const char *path = env_get(c->env, "PATH");
    _cleanup_free_ char *copy = al_xstrdup(path ? path : "");
    char *save = NULL;

    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        if (dir[0] != '/')
            continue;
        _cleanup_free_ char *norm = al_path_resolve("/", dir);
        if (strcmp(norm, dir) != 0)
            continue;
        _cleanup_free_ char *cand = al_xasprintf("%s/rg", strcmp(dir, "/") == 0 ? "" : dir);
        struct stat st;
        if (access(cand, X_OK) < 0 || stat(cand, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        char *real = realpath(cand, NULL);
        if (!real)
            continue;
        if (!within_folded(c->root, real))
            return real;
        free(real);
    }
    return NULL;
}

static int run_rg(const struct al_tool_ctx *c, const char *rg, const char *pattern, const char *path,
                  struct al_tool_result *r)
{
    int op[2] = { -1, -1 }, ep[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    char *argv[] = { "rg", "--no-config", "-n", "--no-heading", "-e", (char *) pattern, "--", (char *) path, NULL };
    struct al_buf out = { .max = 4 * GREP_OUTPUT_LIMIT + 8 }, err = { .max = GREP_STDERR_MAX };
    pid_t pid;
    bool truncated = false, aborted = false;
    int e, status = 0;

    if (pipe2(op, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(ep, O_CLOEXEC) < 0) {
        e = -errno;
        (void) close(op[0]);
        (void) close(op[1]);
        return e;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, op[1], 1);
    posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
    al_child_spawning();
    e = posix_spawn(&pid, rg, &fa, NULL, argv, (char *const *) c->env);
    al_child_own(e == 0 ? pid : -1);
    posix_spawn_file_actions_destroy(&fa);
    (void) close(op[1]);
    (void) close(ep[1]);
    if (e != 0) {
        (void) close(op[0]);
        (void) close(ep[0]);
        char buf[48];
        al_tool_result_set(r, true, "grep: rg failed: spawn %s %s", rg, al_fs_errmsg(e, buf));
        return 0;
    }
    int fds[2] = { op[0], ep[0] };
    while (fds[0] >= 0 || fds[1] >= 0) {
        struct pollfd p[3] = {
            { .fd = fds[0], .events = POLLIN }, { .fd = fds[1], .events = POLLIN },
            { .fd = c->cancel_fd, .events = POLLIN },
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[2].revents) {
            aborted = true;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (!p[i].revents)
                continue;
            char buf[16384];
            ssize_t n = read(fds[i], buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                (void) close(fds[i]);
                fds[i] = -1;
                continue;
            }
            struct al_buf *b = i == 0 ? &out : &err;
            if (al_buf_append(b, buf, AL_MIN((size_t) n, b->max - b->len)) < 0)
                continue;      /* cannot happen: the length is capped to what fits */
            if (i == 0 && u16len(out.data, out.len) > GREP_OUTPUT_LIMIT) {
                truncated = true;
                break;
            }
        }
        if (truncated)
            break;
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            (void) close(fds[i]);
    if (truncated || aborted)
        (void) kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    al_child_disown(pid);
    if (aborted) {
        al_tool_result_set(r, true, "grep: aborted");
    } else if (truncated) {
        size_t n;
        _cleanup_free_ char *t = al_utf8_repair(out.data, out.len, &n);
        size_t keep = u16prefix(t, n, GREP_OUTPUT_LIMIT);
        al_tool_result_set(r, false, "%.*s\n[output truncated at %d bytes]", (int) keep, t, GREP_OUTPUT_LIMIT);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        r->is_error = false;
        r->text = al_utf8_repair(out.data ? out.data : "", out.len, &r->len);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
        al_tool_result_set(r, false, "no matches");
    } else if (err.len) {
        size_t n;
        _cleanup_free_ char *t = al_utf8_repair(err.data, err.len, &n);
        al_tool_result_set(r, true, "grep: rg failed: %s", t);
    } else if (WIFEXITED(status)) {
        al_tool_result_set(r, true, "grep: rg failed: exit %d", WEXITSTATUS(status));
    } else {
        al_tool_result_set(r, true, "grep: rg failed: exit null");
    }
    al_buf_clear(&out);
    al_buf_clear(&err);
    return 0;
}

struct search {
    pcre2_code *re;
    pcre2_match_data *md;
    pcre2_match_context *mc;
    struct al_buf out;
    long budget;
    size_t hits;
    size_t remaining;
    struct timespec deadline;
    int cancel_fd;
    bool stop, timed_out, aborted;
};

static bool check_stop(struct search *s)
{
    struct timespec now;
    struct pollfd p = { .fd = s->cancel_fd, .events = POLLIN };
    if (s->stop)
        return true;
    if (s->cancel_fd >= 0 && poll(&p, 1, 0) > 0) {
        s->aborted = s->stop = true;
        return true;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > s->deadline.tv_sec ||
        (now.tv_sec == s->deadline.tv_sec && now.tv_nsec >= s->deadline.tv_nsec)) {
        s->timed_out = s->stop = true;
        return true;
    }
    return false;
}

static void push_line(struct search *s, const char *text, size_t n)
{
    s->budget -= (long) u16len(text, n) + 1;
    const char *add = text;
    size_t an = n;
    if (s->budget < 0) {
        add = "[output truncated at 102400 bytes]";
        an = strlen(add);
        s->stop = true;
    }
    if ((s->hits++ && al_buf_append(&s->out, "\n", 1) < 0) || al_buf_append(&s->out, add, an) < 0)
        abort();
}

static void test_line(struct search *s, const char *file, size_t lineno, const char *l, size_t n)
{
    if (s->stop || u16len(l, n) > GREP_MAX_LINE)
        return;
    int rc = pcre2_match(s->re, (PCRE2_SPTR) l, n, 0, 0, s->md, s->mc);
    if (rc < 0)
        return;
    _cleanup_free_ char *line = al_xasprintf("%s:%zu:", file, lineno);
    size_t hn = strlen(line);
    line = al_xrealloc(line, hn + n + 1);
    memcpy(line + hn, l, n);
    line[hn + n] = '\0';
    push_line(s, line, hn + n);
}

/* Length of an incomplete UTF-8 sequence at the end of b (to carry). */
static size_t utf8_tail(const char *b, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char ch = (unsigned char) b[n - k];
        if ((ch & 0xc0) == 0x80)
            continue;
        size_t need = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

/* readline over a utf8 read stream: lines end at \n, \r\n or \r; a chunk
 * with a NUL ends the file after its complete lines. */
static void grep_file(struct search *s, const char *file)
{
    _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    struct al_buf line = { .max = SIZE_MAX / 2 };
    char raw[GREP_CHUNK + 4];
    size_t carry = 0, lineno = 0;
    bool cr = false, eof = false;

    if (fd < 0)
        return;
    while (!eof && !check_stop(s)) {
        ssize_t n = read(fd, raw + carry, GREP_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            eof = true;
            n = 0;
        }
        size_t total = carry + (size_t) n, keep = eof ? 0 : utf8_tail(raw, total), tn;
        _cleanup_free_ char *t = al_utf8_repair(raw, total - keep, &tn);
        memmove(raw, raw + total - keep, keep);
        carry = keep;
        bool nul = memchr(t, '\0', tn) != NULL;
        for (size_t i = 0; i < tn && !s->stop; i++) {
            char ch = t[i];
            if (cr && ch == '\n') {
                cr = false;
                continue;
            }
            cr = false;
            if (ch == '\n' || ch == '\r') {
                cr = ch == '\r';
                test_line(s, file, ++lineno, line.data ? line.data : "", line.len);
                line.len = 0;
                continue;
            }
            if (al_buf_append(&line, &ch, 1) < 0)
                abort();
        }
        if (nul)
            goto out;
    }
    if (eof && line.len && !s->stop)
        test_line(s, file, ++lineno, line.data, line.len);
out:
    al_buf_clear(&line);
}

static int dirent_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static bool walk(struct search *s, const char *dir, int depth)
{
    struct dirent **list = NULL;
    bool ok = true;

    if (depth > GREP_WALK_MAX_DEPTH)
        return true;
    if (check_stop(s))
        return false;
    int n = scandir(dir, &list, NULL, dirent_cmp);
    if (n < 0)
        return true;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (!ok || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, ".git") == 0 ||
            strcmp(name, "node_modules") == 0)
            continue;
        if (s->remaining-- == 0 || check_stop(s)) {
            ok = false;
            continue;
        }
        _cleanup_free_ char *child = al_xasprintf("%s/%s", strcmp(dir, "/") == 0 ? "" : dir, name);
        unsigned char t = list[i]->d_type;
        if (t == DT_UNKNOWN) {
            struct stat st;
            t = lstat(child, &st) < 0 ? DT_UNKNOWN : S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        if (t == DT_DIR)
            ok = walk(s, child, depth + 1);
        else if (t == DT_REG) {
            grep_file(s, child);
            ok = !s->stop;
        }
    }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return ok;
}

static int walk_grep(const struct al_tool_ctx *c, const char *pattern, const char *root, struct al_tool_result *r)
{
    int ec;
    PCRE2_SIZE eo;
    struct search s = { .budget = GREP_OUTPUT_LIMIT, .remaining = GREP_WALK_MAX, .cancel_fd = c->cancel_fd,
                        .out = { .max = SIZE_MAX / 2 } };

    s.re = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_ALT_BSUX, &ec, &eo, NULL);
    if (!s.re) {
        PCRE2_UCHAR msg[256];
        (void) pcre2_get_error_message(ec, msg, sizeof(msg));
        al_tool_result_set(r, true, "grep: invalid regex: %s", (const char *) msg);
        return 0;
    }
    s.md = pcre2_match_data_create_from_pattern(s.re, NULL);
    s.mc = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(s.mc, 10000000);
    clock_gettime(CLOCK_MONOTONIC, &s.deadline);
    s.deadline.tv_sec += GREP_TIMEOUT_MS / 1000;

    struct stat st;
    if (stat(root, &st) == 0 && S_ISREG(st.st_mode))
        grep_file(&s, root);
    else
        (void) walk(&s, root, 0);
    pcre2_match_context_free(s.mc);
    pcre2_match_data_free(s.md);
    pcre2_code_free(s.re);

    if (s.aborted) {
        al_tool_result_set(r, true, "grep: aborted");
    } else if (s.timed_out && s.hits == 0) {
        al_tool_result_set(r, true, "grep: timed out after %ds", GREP_TIMEOUT_MS / 1000);
    } else {
        if (s.timed_out)
            push_line(&s, "[the search was cut short after 60000 ms]", 41);
        if (s.hits == 0) {
            al_tool_result_set(r, false, "no matches");
        } else {
            r->is_error = false;
            r->text = al_utf8_repair(s.out.data, s.out.len, &r->len);
        }
    }
    al_buf_clear(&s.out);
    return 0;
}

int al_tool_grep(const struct al_tool_ctx *c, const json_t *input, struct al_tool_result *r)
{
    const json_t *pv = json_object_get(input, "pattern");
    const json_t *sv = json_object_get(input, "path");
    const char *pattern = json_is_string(pv) ? json_string_value(pv) : NULL;
    const char *sp = json_is_string(sv) ? json_string_value(sv) : NULL;
    _cleanup_free_ char *root = NULL, *rg = NULL;

    if (!pattern || !*pattern) {
        al_tool_result_set(r, true, "grep: pattern is required");
        return 0;
    }
    if (sp && *sp) {
        if (al_confine(c, sp, &root, r))
            return 0;
    } else {
        root = al_xstrdup(c->root);
    }
    rg = find_rg(c);
    if (rg)
        return run_rg(c, rg, pattern, root, r);
    return walk_grep(c, pattern, root, r);
}
