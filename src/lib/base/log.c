/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-lines logger. Formats into a fixed stack buffer and writes each line
 * with one write(2), so lines from several processes sharing stderr do not
 * interleave. Over-long values are cut, never allocated for. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"

enum al_log_level al_log_min = AL_INFO;
static const char *log_svc = "airlock";
static int log_fd = 2;

static const char *const level_names[] = { "debug", "info", "warn", "error", "fatal" };

void al_log_setup(const char *svc, enum al_log_level min, int fd)
{
    log_svc = svc;
    al_log_min = min;
    log_fd = fd;
}

int al_log_level_parse(const char *s, enum al_log_level *ret)
{
    for (size_t i = 0; i < AL_ELEMENTSOF(level_names); i++)
        if (strcmp(s, level_names[i]) == 0) {
            *ret = (enum al_log_level) i;
            return 0;
        }
    return -EINVAL;
}

const char *al_errno_name(int e)
{
    switch (e) {
#define E(x) case x: return #x
    E(EPERM); E(ENOENT); E(ESRCH); E(EINTR); E(EIO); E(E2BIG); E(EBADF); E(ECHILD);
    E(EAGAIN); E(ENOMEM); E(EACCES); E(EFAULT); E(EBUSY); E(EEXIST); E(ENOTDIR);
    E(EISDIR); E(EINVAL); E(ENFILE); E(EMFILE); E(EFBIG); E(ENOSPC); E(ESPIPE); E(EROFS);
    E(EPIPE); E(ERANGE); E(ENAMETOOLONG); E(ENOSYS); E(ENOTEMPTY); E(ELOOP); E(ENODATA);
    E(ETIME); E(EPROTO); E(EBADMSG); E(EOVERFLOW); E(EMSGSIZE); E(EPROTONOSUPPORT);
    E(EADDRINUSE); E(EADDRNOTAVAIL); E(ENETUNREACH); E(ECONNABORTED); E(ECONNRESET);
    E(ENOBUFS); E(EISCONN); E(ENOTCONN); E(ETIMEDOUT); E(ECONNREFUSED); E(EHOSTUNREACH);
    E(EALREADY); E(EINPROGRESS); E(ECANCELED); E(ENOTSUP); E(ENOMSG); E(EILSEQ);
#undef E
    default: return NULL;
    }
}

struct line {
    char buf[4096];
    size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 2 - l->len;   /* keep space for "}\n" */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s) { put(l, s, strlen(s)); }

static void put_json_str(struct line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(l, "\"", 1);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char) *s;
        if (c == '"' || c == '\\') {
            char e[2] = { '\\', (char) c };
            put(l, e, 2);
        } else if (c < 0x20) {
            char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            put(l, e, 6);
        } else
            put(l, (const char *) &c, 1);
    }
    put(l, "\"", 1);
}

void al_log_emit(enum al_log_level lvl, const char *event, const char *file, int line,
                 const struct al_kv *kv, size_t n)
{
    struct line l = { .len = 0 };
    struct timeval tv;
    struct tm tm;
    char ts[48], num[64];

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t k = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof(ts) - k, ".%06ldZ", (long) tv.tv_usec);

    puts_(&l, "{\"ts\":\"");
    puts_(&l, ts);
    puts_(&l, "\",\"lvl\":\"");
    puts_(&l, level_names[lvl]);
    puts_(&l, "\",\"svc\":");
    put_json_str(&l, log_svc);
    puts_(&l, ",\"event\":");
    put_json_str(&l, event);
    for (size_t i = 0; i < n; i++) {
        puts_(&l, ",");
        put_json_str(&l, kv[i].key);
        puts_(&l, ":");
        switch (kv[i].type) {
        case AL_KV_STR:
            if (kv[i].s)
                put_json_str(&l, kv[i].s);
            else
                puts_(&l, "null");
            break;
        case AL_KV_I64:
            snprintf(num, sizeof(num), "%" PRId64, kv[i].i);
            puts_(&l, num);
            break;
        case AL_KV_U64:
            snprintf(num, sizeof(num), "%" PRIu64, kv[i].u);
            puts_(&l, num);
            break;
        case AL_KV_F64:
            snprintf(num, sizeof(num), "%.6g", kv[i].d);
            puts_(&l, num);
            break;
        case AL_KV_BOOL:
            puts_(&l, kv[i].b ? "true" : "false");
            break;
        case AL_KV_ERRNO: {
            const char *name = al_errno_name((int) kv[i].i);
            if (name)
                put_json_str(&l, name);
            else {
                snprintf(num, sizeof(num), "\"E%" PRId64 "\"", kv[i].i);
                puts_(&l, num);
            }
            break;
        }
        }
    }
    const char *base = strrchr(file, '/');
    snprintf(num, sizeof(num), "%s:%d", base ? base + 1 : file, line);
    puts_(&l, ",\"src\":");
    put_json_str(&l, num);
    l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    (void) !write(log_fd, l.buf, l.len);
}
