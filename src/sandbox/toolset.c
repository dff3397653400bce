/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "toolset.h"

void al_tool_result_done(struct al_tool_result *r)
{
    free(r->text);
    r->text = NULL;
    r->len = 0;
}

void al_tool_result_set(struct al_tool_result *r, bool is_error, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    r->is_error = is_error;
    r->text = s;
    r->len = (size_t) n;
}

/* A handful at most: the shell and one helper program at a time. */
#define OWNED_MAX 16

static pthread_mutex_t owned_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t owned[OWNED_MAX];
static int spawning;
static int wake_fd = -1;

void al_child_set_wake(int efd)
{
    pthread_mutex_lock(&owned_mu);
    wake_fd = efd;
    pthread_mutex_unlock(&owned_mu);
}

void al_child_spawning(void)
{
    pthread_mutex_lock(&owned_mu);
    spawning++;
    pthread_mutex_unlock(&owned_mu);
}

void al_child_own(pid_t pid)
{
    uint64_t one = 1;
    int fd;

    pthread_mutex_lock(&owned_mu);
    if (spawning > 0)
        spawning--;
    for (size_t i = 0; pid > 0 && i < OWNED_MAX; i++)
        if (owned[i] == 0) {
            owned[i] = pid;
            break;
        }
    fd = wake_fd;
    pthread_mutex_unlock(&owned_mu);
    /* An orphan that died during the spawn is reaped now. */
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
        /* the reaper is gone: nothing to wake */
    }
}

void al_child_disown(pid_t pid)
{
    pthread_mutex_lock(&owned_mu);
    for (size_t i = 0; i < OWNED_MAX; i++)
        if (owned[i] == pid)
            owned[i] = 0;
    pthread_mutex_unlock(&owned_mu);
}

bool al_child_reapable(pid_t pid)
{
    bool ok;

    pthread_mutex_lock(&owned_mu);
    ok = spawning == 0;
    for (size_t i = 0; i < OWNED_MAX && ok; i++)
        ok = owned[i] != pid;
    pthread_mutex_unlock(&owned_mu);
    return ok;
}
