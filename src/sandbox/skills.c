/* SPDX-License-Identifier: Apache-2.0 */
/* Skill extraction in the runner (spec §7). One pass of the shared reader
 * (src/lib/archive: the hub's member rules and caps) writes regular files
 * and directories into a private staging directory under <workdir>/skills/,
 * relative to dirfds, never following a symlink and never replacing
 * anything it did not create: an agent in the same sandbox may plant links
 * there concurrently, and then extraction fails instead of escaping. The
 * staged tree (or its single wrapper directory) is renamed into place.
 * Blocking file system calls; libc, base and libarchive only. */
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/archive/skill_archive.h"
#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "skills.h"

#define SKILLS_DIR        "skills"
#define STAGE_PREFIX      ".staging-"
#define STAGE_NAME_MAX    (sizeof(STAGE_PREFIX) + 16)
/* GNU tar opens a member by its whole name below -C, so a longer name
 * cannot be extracted by the SDK worker either. */
#define MEMBER_NAME_MAX   (PATH_MAX - 1)
#define MEMBER_DEPTH_MAX  128
/* Each level of a removal holds one fd. */
#define RM_DEPTH_MAX      256
#define COPY_CHUNK        ((size_t) 64 << 10)

struct extract {
    struct al_skill_reader rd;
    int stage_fd;
    char *buf;        /* COPY_CHUNK bytes */
    char *top;        /* first component of the first extracted member */
    bool nested;      /* some extracted member has more than one component */
    bool many_tops;
    char **why;
};

static void closedirp(DIR **d)
{
    if (*d)
        (void) closedir(*d);
}

static void extract_done(struct extract *x)
{
    al_skill_reader_done(&x->rd);
    if (x->stage_fd >= 0)
        (void) close(x->stage_fd);
    free(x->buf);
    free(x->top);
}

_printf_(3, 4) static int failf(char **why, int r, const char *fmt, ...)
{
    char msg[320];
    va_list ap;

    va_start(ap, fmt);
    (void) vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    free(*why);
    *why = al_xstrdup(msg);
    return r;
}

static const char *ename(int r)
{
    const char *n = al_errno_name(-r);
    return n ? n : "error";
}

static bool dir_name_ok(const char *dir)
{
    return dir && dir[0] && strcmp(dir, ".") != 0 && strcmp(dir, "..") != 0 && !strchr(dir, '/') &&
           strlen(dir) <= NAME_MAX;
}

static int open_dir_nofollow(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* dfd/name as a directory of mode 0700, created if missing. An existing
 * symlink or file there fails (-ELOOP / -ENOTDIR / -EEXIST). */
static int mkdir_open(int dfd, const char *name)
{
    if (mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
        return -errno;
    int fd = open_dir_nofollow(dfd, name);
    if (fd >= 0 && fchmod(fd, 0700) < 0) {
        int r = -errno;
        (void) close(fd);
        return r;
    }
    return fd;
}

/* <workdir>/skills, never through a symlink; created 0700 when missing (an
 * existing one keeps its mode). */
static int open_skills(int workdir_fd, bool create)
{
    bool made = create && mkdirat(workdir_fd, SKILLS_DIR, 0700) == 0;
    int fd;

    if (create && !made && errno != EEXIST)
        return -errno;
    fd = open_dir_nofollow(workdir_fd, SKILLS_DIR);
    if (fd >= 0 && made && fchmod(fd, 0700) < 0) {
        int r = -errno;
        (void) close(fd);
        return r;
    }
    return fd;
}

static int rm_tree(int dfd, const char *name, unsigned depth);

/* Removes every entry of the directory fd (owned: closed here). */
static int empty_dir(int fd, unsigned depth)
{
    _cleanup_(closedirp) DIR *d = fdopendir(fd);

    if (!d) {
        int r = -errno;
        (void) close(fd);
        return r;
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de)
            return -errno;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = rm_tree(dirfd(d), de->d_name, depth + 1);
        if (r < 0)
            return r;
    }
}

/* rm -rf dfd/name without following a symlink: a link is unlinked, and a
 * directory is only entered through O_NOFOLLOW. Gone already is success. */
static int rm_tree(int dfd, const char *name, unsigned depth)
{
    int fd, r;

    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    if (depth >= RM_DEPTH_MAX)
        return -ELOOP;
    fd = open_dir_nofollow(dfd, name);
    if (fd < 0)
        return fd == -ENOENT ? 0 : fd;
    r = empty_dir(fd, depth);
    if (r < 0)
        return r;
    if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* A new private directory skills/.staging-<random>; its name in name. */
static int make_stage(int skills_fd, char name[static STAGE_NAME_MAX])
{
    for (int tries = 0; tries < 8; tries++) {
        unsigned char rnd[8];
        char hex[2 * sizeof(rnd) + 1];

        al_random(rnd, sizeof(rnd));
        al_hex(rnd, sizeof(rnd), hex);
        (void) snprintf(name, STAGE_NAME_MAX, "%s%s", STAGE_PREFIX, hex);
        if (mkdirat(skills_fd, name, 0700) == 0)
            return 0;
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

/* Splits a copy of name at '/' into its components, skipping empty and "."
 * ones (as extraction resolves them). Returns the count, or -ENAMETOOLONG. */
static int split_name(const char *name, char copy[static MEMBER_NAME_MAX + 1],
                      char *comp[static MEMBER_DEPTH_MAX])
{
    size_t len = strlen(name);
    int k = 0;

    if (len > MEMBER_NAME_MAX)
        return -ENAMETOOLONG;
    memcpy(copy, name, len + 1);
    for (char *p = copy, *save = NULL; (p = strtok_r(p, "/", &save)); p = NULL) {
        if (strcmp(p, ".") == 0)
            continue;
        if (k == MEMBER_DEPTH_MAX)
            return -ENAMETOOLONG;
        comp[k++] = p;
    }
    return k;
}

/* The SDK's archiveTopDir() over the extracted members: a single first
 * component shared by all, below which at least one member lies. */
static void note_top(struct extract *x, char *comp[], int k)
{
    if (!x->top)
        x->top = al_xstrdup(comp[0]);
    else if (strcmp(x->top, comp[0]) != 0)
        x->many_tops = true;
    if (k > 1)
        x->nested = true;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Writes the current member's data to a new file dfd/name. A member of the
 * same name extracted before is replaced, as tar and unzip -o do; anything
 * else in the way (a directory, a planted link's target) is not touched. */
static int write_file(struct extract *x, int dfd, const char *name, mode_t mode)
{
    _cleanup_close_ int fd = -1;
    ssize_t n;
    int r;

    if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
        return -errno;
    fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    while ((n = al_skill_reader_data(&x->rd, x->buf, COPY_CHUNK)) > 0)
        if ((r = write_all(fd, x->buf, (size_t) n)) < 0)
            return r;
    if (n < 0)
        return (int) n;
    if (fchmod(fd, mode) < 0)
        return -errno;
    return 0;
}

/* Creates the member's parent directories below the stage, then the
 * member itself. Returns 0 or -errno (-EBADMSG for a reader failure, whose
 * text is in x->rd.error). */
static int place_member(struct extract *x, struct archive_entry *e, char *comp[], int k)
{
    bool is_dir = archive_entry_filetype(e) == AE_IFDIR;
    _cleanup_close_ int dfd = fcntl(x->stage_fd, F_DUPFD_CLOEXEC, 3);
    int fd;

    if (dfd < 0)
        return -errno;
    for (int i = 0; i < k - 1; i++) {
        fd = mkdir_open(dfd, comp[i]);
        if (fd < 0)
            return fd;
        (void) close(dfd);
        dfd = fd;
    }
    if (is_dir) {
        fd = mkdir_open(dfd, comp[k - 1]);
        if (fd < 0)
            return fd;
        (void) close(fd);
        return 0;
    }
    return write_file(x, dfd, comp[k - 1], archive_entry_mode(e) & 0111 ? 0755 : 0644);
}

static int extract_member(struct extract *x, struct archive_entry *e, const char *name)
{
    char copy[MEMBER_NAME_MAX + 1], *comp[MEMBER_DEPTH_MAX], safe[96];
    int k = split_name(name, copy, comp), r;

    if (k < 0)
        return failf(x->why, k, "archive member name is too long or too deep: \"%s\"",
                     al_skill_safe_text(name, safe, sizeof(safe)));
    if (k == 0) {
        if (archive_entry_filetype(e) == AE_IFDIR)
            return 0;   /* "./": the staging root itself */
        return failf(x->why, -EBADMSG, "archive member \"%s\" has no file name",
                     al_skill_safe_text(name, safe, sizeof(safe)));
    }
    note_top(x, comp, k);
    r = place_member(x, e, comp, k);
    if (r == -EBADMSG || r == -E2BIG)
        return failf(x->why, r, "%s", x->rd.error);
    if (r < 0)
        return failf(x->why, r, "cannot extract archive member \"%s\" (%s)",
                     al_skill_safe_text(name, safe, sizeof(safe)), ename(r));
    return 0;
}

static int extract_all(struct extract *x, const void *data, size_t len)
{
    struct archive_entry *e;
    const char *name;
    enum al_member_verdict v;
    int r = al_skill_reader_open(&x->rd, data, len);

    while (r >= 0 && (r = al_skill_reader_next(&x->rd, &e, &name, &v)) > 0)
        if (v == AL_MEMBER_OK && (r = extract_member(x, e, name)) < 0)
            return r;   /* *why is set */
    if (r < 0)
        return failf(x->why, r, "%s", x->rd.error);
    return 0;
}

/* Extracts into the stage skills/<stage>, then renames the stage (or its
 * wrapper directory) to skills/<dir>. */
static int extract_and_place(int skills_fd, const char *stage, const char *dir, const void *data,
                             size_t len, char **why)
{
    _cleanup_(extract_done) struct extract x = { .stage_fd = -1, .why = why };
    int r;

    x.stage_fd = open_dir_nofollow(skills_fd, stage);
    if (x.stage_fd < 0)
        return failf(why, x.stage_fd, "cannot open the staging directory (%s)", ename(x.stage_fd));
    if (fchmod(x.stage_fd, 0700) < 0) {   /* whatever the umask; it may become <dir> */
        r = -errno;
        return failf(why, r, "cannot open the staging directory (%s)", ename(r));
    }
    x.buf = al_xmalloc(COPY_CHUNK);
    r = extract_all(&x, data, len);
    if (r < 0)
        return r;
    bool strip = x.top && x.nested && !x.many_tops;
    if (renameat(strip ? x.stage_fd : skills_fd, strip ? x.top : stage, skills_fd, dir) < 0) {
        r = -errno;
        return failf(why, r, "cannot move the skill into place (%s)", ename(r));
    }
    return 0;
}

int al_skill_install(int workdir_fd, const char *dir, const void *data, size_t len, char **why)
{
    _cleanup_close_ int skills_fd = -1;
    char stage[STAGE_NAME_MAX];
    int r;

    *why = NULL;
    if (!dir_name_ok(dir))
        return failf(why, -EINVAL, "skill directory name is not a single path component");
    skills_fd = open_skills(workdir_fd, true);
    if (skills_fd < 0)
        return failf(why, skills_fd, "cannot open the skills directory (%s)", ename(skills_fd));
    r = rm_tree(skills_fd, dir, 0);
    if (r < 0)
        return failf(why, r, "cannot remove the previous skill directory (%s)", ename(r));
    r = make_stage(skills_fd, stage);
    if (r < 0)
        return failf(why, r, "cannot create a staging directory (%s)", ename(r));
    r = extract_and_place(skills_fd, stage, dir, data, len, why);
    (void) rm_tree(skills_fd, stage, 0);
    return r;
}

int al_skill_remove(int workdir_fd, const char *dir)
{
    _cleanup_close_ int skills_fd = -1;

    if (!dir_name_ok(dir))
        return -EINVAL;
    skills_fd = open_skills(workdir_fd, false);
    if (skills_fd == -ENOENT)
        return 0;
    if (skills_fd < 0)
        return skills_fd;
    return rm_tree(skills_fd, dir, 0);
}
