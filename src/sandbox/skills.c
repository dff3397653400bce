/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder until the libarchive extractor lands. */
#include <errno.h>

#include "skills.h"

int al_skill_install(int workdir_fd, const char *dir, const void *data, size_t len, char **why)
{
    *why = al_xstrdup("skill extraction is not implemented yet");
    return -ENOSYS;
}

int al_skill_remove(int workdir_fd, const char *dir)
{
    return 0;
}
