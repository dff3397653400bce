/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for src/sandbox/skills.c. The input is installed as a
 * skill into a private temporary workdir (created once per process), then
 * removed. Checked each time:
 *   - success leaves exactly skills/s, a tree of regular files (one link,
 *     mode 0644 or 0755) and directories (0700) only, with SKILL.md on top
 *     whenever the hub's inspection accepts the archive;
 *   - failure leaves skills/ empty, with a reason;
 *   - an archive the inspection refuses for a member is never installed;
 *   - nothing but skills/ ever appears in the workdir, and removal empties
 *     skills/. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "lib/archive/skill_archive.h"
#include "sandbox/skills.h"

static int workdir_fd = -1;
static char workdir[256];

/* Each input leaves the workdir holding an empty skills/ at most. */
static void remove_workdir(void)
{
    (void) unlinkat(workdir_fd, "skills", AT_REMOVEDIR);
    (void) rmdir(workdir);
}

static int open_workdir(void)
{
    const char *tmp = getenv("TMPDIR");

    (void) snprintf(workdir, sizeof(workdir), "%s/al-fuzz-skill-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(workdir) != NULL);
    int fd = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(atexit(remove_workdir) == 0);
    return fd;
}

/* Entries of dfd other than "." and ".." (dfd is borrowed). */
static size_t count_entries(int dfd)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    size_t n = 0;
    struct dirent *de;
    DIR *d;

    CHECK(fd >= 0);
    d = fdopendir(fd);
    CHECK(d != NULL);
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    (void) closedir(d);
    return n;
}

/* Every entry below dfd is a plain file or a 0700 directory. */
static void check_tree(int dfd, unsigned depth)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *de;
    struct stat st;
    DIR *d;

    CHECK(depth < 200);
    CHECK(fd >= 0);
    d = fdopendir(fd);
    CHECK(d != NULL);
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        CHECK(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
        if (S_ISDIR(st.st_mode)) {
            CHECK((st.st_mode & 07777) == 0700);
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            CHECK(sub >= 0);
            check_tree(sub, depth + 1);
            (void) close(sub);
            continue;
        }
        CHECK(S_ISREG(st.st_mode));
        CHECK(st.st_nlink == 1);
        CHECK((st.st_mode & 07777) == 0644 || (st.st_mode & 07777) == 0755);
    }
    (void) closedir(d);
}

static void check_installed(int inspected)
{
    struct stat st;
    int skills = openat(workdir_fd, "skills", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    CHECK(skills >= 0);
    CHECK(count_entries(skills) == 1);
    CHECK(fstatat(skills, "s", &st, AT_SYMLINK_NOFOLLOW) == 0);
    CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
    int s = openat(skills, "s", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    CHECK(s >= 0);
    check_tree(s, 0);
    if (inspected == 0) {
        CHECK(fstatat(s, "SKILL.md", &st, AT_SYMLINK_NOFOLLOW) == 0);
        CHECK(S_ISREG(st.st_mode));
    }
    (void) close(s);
    (void) close(skills);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct al_skill_info info;
    char *why = NULL;

    if (workdir_fd < 0)
        workdir_fd = open_workdir();
    int inspected = al_skill_archive_inspect(data, size, &info);
    al_skill_info_done(&info);
    int r = al_skill_install(workdir_fd, "s", data, size, &why);

    CHECK(count_entries(workdir_fd) == 1);   /* skills/ only */
    if (r == 0) {
        CHECK(why == NULL);
        CHECK(inspected != -EPERM);
        check_installed(inspected);
    } else {
        CHECK(why != NULL && why[0] != '\0');
        CHECK(strstr(why, workdir) == NULL);   /* no host path */
        int skills = openat(workdir_fd, "skills", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        CHECK(skills >= 0);
        CHECK(count_entries(skills) == 0);
        (void) close(skills);
    }
    free(why);
    CHECK(al_skill_remove(workdir_fd, "s") == 0);
    int skills = openat(workdir_fd, "skills", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    CHECK(skills >= 0);
    CHECK(count_entries(skills) == 0);
    (void) close(skills);
    return 0;
}
