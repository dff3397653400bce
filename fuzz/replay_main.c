/* SPDX-License-Identifier: Apache-2.0 */
/* Replays fuzz inputs without libFuzzer, so every build (gcc included) runs
 * each target over its committed corpus under whatever sanitizers it was
 * built with. Arguments are files, or directories whose regular files are
 * replayed in name order (not recursively; dot files are skipped). Each
 * input sits in a buffer of exactly its size, so an over-read is caught.
 * Exits 1 when an argument cannot be read or nothing was replayed; a bug in
 * the target shows up as a sanitizer report or an abort(). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Optional in a target, as with libFuzzer. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int replay_file(const char *path, size_t *count)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;

    if (fd < 0 || fstat(fd, &sb) < 0) {
        fprintf(stderr, "replay: %s: %m\n", path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t size = (size_t) sb.st_size, got = 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        abort();
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "replay: %s: short read\n", path);
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t) n;
    }
    close(fd);
    fprintf(stderr, "Running: %s (%zu bytes)\n", path, size);
    (void) LLVMFuzzerTestOneInput(buf, size);
    free(buf);
    (*count)++;
    return 0;
}

static int replay_dir(const char *dir, size_t *count)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort), ret = 0;

    if (n < 0) {
        fprintf(stderr, "replay: %s: %m\n", dir);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat sb;

        if (names[i]->d_name[0] != '.' && ret == 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
                ret = replay_file(path, count);
        }
        free(names[i]);
    }
    free(names);
    return ret;
}

int main(int argc, char **argv)
{
    size_t count = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        (void) LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) < 0) {
            fprintf(stderr, "replay: %s: %m\n", argv[i]);
            return 1;
        }
        if ((S_ISDIR(sb.st_mode) ? replay_dir(argv[i], &count) : replay_file(argv[i], &count)) < 0)
            return 1;
    }
    if (count == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    fprintf(stderr, "replay: %zu inputs ok\n", count);
    return 0;
}
