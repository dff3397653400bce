/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log's process-wide part (stream_internal.h): the HMAC key and
 * the writer. Lines are queued (bounded; beyond audit_queue_max they are
 * dropped and counted) and written by one writer thread, so a slow disk or
 * a blocked stdout never stalls the loop that forwards bytes. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "../lib/tls/crypto.h"
#include "stream_internal.h"

#define AUDIT_KEY_MAX 128

struct audit_line {
    struct audit_line *next;
    char *s;
};

struct audit_session {
    char *session, *info;
};

struct gw_audit {
    struct audit_session sessions[GW_AUDIT_SESSIONS_MAX];
    size_t next_session;
    unsigned char key[AUDIT_KEY_MAX];
    size_t keylen;
    char key_id[64];
    void (*sink)(void *arg, const char *line);
    void *sink_arg;
    int fd;
    bool own_fd, thread_started, stop;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct audit_line *head, *tail;
    size_t qlen, qmax;
    atomic_uint_fast64_t records, dropped;
};

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A file of hex digits (at least 32, surrounding whitespace ignored) is
 * decoded; any other content is the key as is (at least 16 bytes). */
static int load_key(struct gw_audit *a, const char *path, char *why, size_t whylen)
{
    unsigned char raw[AUDIT_KEY_MAX * 2 + 8];
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        (void) snprintf(why, whylen, "--audit-key-file %s: cannot open (%s)", path, al_errno_name(errno) ?: "error");
        return -errno;
    }
    n = read(fd, raw, sizeof(raw));
    if (n < 0) {
        (void) snprintf(why, whylen, "--audit-key-file %s: cannot read", path);
        return -EIO;
    }
    size_t b = 0, e = (size_t) n;
    while (b < e && isspace(raw[b]))
        b++;
    while (e > b && isspace(raw[e - 1]))
        e--;
    bool hex = e - b >= 32 && (e - b) % 2 == 0 && (e - b) / 2 <= AUDIT_KEY_MAX;
    for (size_t i = b; hex && i < e; i++)
        hex = hexval(raw[i]) >= 0;
    if (hex) {
        a->keylen = (e - b) / 2;
        for (size_t i = 0; i < a->keylen; i++)
            a->key[i] = (unsigned char) (hexval(raw[b + 2 * i]) << 4 | hexval(raw[b + 2 * i + 1]));
    } else if ((size_t) n >= 16 && (size_t) n <= AUDIT_KEY_MAX) {
        memcpy(a->key, raw, (size_t) n);
        a->keylen = (size_t) n;
    } else {
        (void) snprintf(why, whylen, "--audit-key-file %s: expected 32..256 hex digits or 16..128 raw bytes", path);
        return -EINVAL;
    }
    return 0;
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;   /* the line is lost; the loop must not care */
        }
        s += w;
        n -= (size_t) w;
    }
}

/* Appends line to out with "prev": the SHA-256 of the previous line as
 * written (hash chain: a removed or edited line breaks it), then stores
 * this line's digest in prev. *have says whether prev holds one. */
static void append_chained(struct al_buf *out, const char *line, unsigned char prev[AL_SHA256_LEN], bool *have)
{
    size_t n = strlen(line), start = out->len;
    char hex[2 * AL_SHA256_LEN + 1];

    if (n < 2 || line[n - 1] != '}')
        abort();   /* our own JSON objects only */
    al_hex(prev, AL_SHA256_LEN, hex);
    if (al_buf_append(out, line, n - 1) < 0 ||
        al_buf_append(out, ",\"prev\":", 8) < 0 ||
        (*have ? al_buf_append(out, "\"sha256:", 8) < 0 || al_buf_append(out, hex, strlen(hex)) < 0 ||
                     al_buf_append(out, "\"", 1) < 0
               : al_buf_append(out, "null", 4) < 0) ||
        al_buf_append(out, "}", 1) < 0)
        abort();
    al_sha256(out->data + start, out->len - start, prev);
    *have = true;
    if (al_buf_append(out, "\n", 1) < 0)
        abort();
}

static void *writer_main(void *arg)
{
    struct gw_audit *a = arg;
    struct al_buf out = { .max = SIZE_MAX };
    unsigned char prev[AL_SHA256_LEN] = { 0 };
    bool have_prev = false;

    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->head && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        struct audit_line *l = a->head;
        a->head = a->tail = NULL;
        a->qlen = 0;
        bool stop = a->stop;
        pthread_mutex_unlock(&a->mu);
        /* One write(2) per batch keeps lines whole and the syscalls few. */
        while (l) {
            struct audit_line *next = l->next;
            append_chained(&out, l->s, prev, &have_prev);
            free(l->s);
            free(l);
            l = next;
        }
        if (out.len)
            write_all(a->fd, out.data, out.len);
        out.len = 0;
        if (stop)
            break;
        pthread_mutex_lock(&a->mu);
    }
    al_buf_clear(&out);
    return NULL;
}

static struct gw_audit *audit_alloc(const char *key_id)
{
    struct gw_audit *a = al_xcalloc(1, sizeof(*a));
    (void) snprintf(a->key_id, sizeof(a->key_id), "%s", key_id && *key_id ? key_id : "k0");
    a->fd = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    return a;
}

int gw_audit_new(const char *path, const char *key_file, const char *key_id,
                 size_t queue_max, struct gw_audit **ret, char *why, size_t whylen)
{
    struct gw_audit *a = audit_alloc(key_id);
    int r;

    a->qmax = queue_max ? queue_max : 4096;
    if (key_file) {
        r = load_key(a, key_file, why, whylen);
        if (r < 0) {
            gw_audit_free(a);
            return r;
        }
    } else {
        al_random(a->key, 32);
        a->keylen = 32;
        if (path)
            al_log(AL_WARN, "audit.key_random", AL_STR("detail", "no --audit-key-file: argument digests are not comparable across restarts"));
    }
    if (!path) {
        a->fd = -1;
    } else if (strcmp(path, "-") == 0) {
        a->fd = 1;
    } else {
        a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (a->fd < 0) {
            r = -errno;
            (void) snprintf(why, whylen, "--audit-log %s: cannot open (%s)", path, al_errno_name(-r) ?: "error");
            gw_audit_free(a);
            return r;
        }
        a->own_fd = true;
    }
    if (a->fd >= 0) {
        r = -pthread_create(&a->thread, NULL, writer_main, a);
        if (r < 0) {
            (void) snprintf(why, whylen, "cannot start the audit writer");
            gw_audit_free(a);
            return r;
        }
        a->thread_started = true;
    }
    *ret = a;
    return 0;
}

struct gw_audit *gw_audit_new_sink(const void *key, size_t keylen, const char *key_id,
                                   void (*sink)(void *arg, const char *line), void *arg)
{
    struct gw_audit *a = audit_alloc(key_id);
    a->keylen = AL_MIN(keylen, sizeof(a->key));
    memcpy(a->key, key, a->keylen);
    a->sink = sink;
    a->sink_arg = arg;
    return a;
}

struct gw_audit *gw_audit_free(struct gw_audit *a)
{
    if (!a)
        return NULL;
    if (a->thread_started) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    for (struct audit_line *l = a->head, *next; l; l = next) {
        next = l->next;
        free(l->s);
        free(l);
    }
    if (a->own_fd)
        (void) close(a->fd);
    for (size_t i = 0; i < GW_AUDIT_SESSIONS_MAX; i++) {
        free(a->sessions[i].session);
        free(a->sessions[i].info);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
    return NULL;
}

void gw_audit_emit_take(struct gw_audit *a, char *line)
{
    if (a->sink) {
        a->sink(a->sink_arg, line);
        free(line);
        atomic_fetch_add(&a->records, 1);
        return;
    }
    if (!a->thread_started) {
        free(line);
        return;
    }
    pthread_mutex_lock(&a->mu);
    if (a->qlen >= a->qmax) {
        pthread_mutex_unlock(&a->mu);
        free(line);
        atomic_fetch_add(&a->dropped, 1);
        return;
    }
    struct audit_line *l = al_xmalloc(sizeof(*l));
    l->next = NULL;
    l->s = line;
    if (a->tail)
        a->tail->next = l;
    else
        a->head = l;
    a->tail = l;
    a->qlen++;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    atomic_fetch_add(&a->records, 1);
}

uint64_t gw_audit_records(const struct gw_audit *a) { return atomic_load(&((struct gw_audit *) a)->records); }
uint64_t gw_audit_dropped(const struct gw_audit *a) { return atomic_load(&((struct gw_audit *) a)->dropped); }

char *gw_audit_hmac(const struct gw_audit *a, const void *data, size_t len)
{
    unsigned char d[AL_SHA256_LEN];
    char hex[2 * AL_SHA256_LEN + 1];

    al_hmac_sha256(a->key, a->keylen, data, len, d);
    al_hex(d, sizeof(d), hex);
    return al_xasprintf("hmac-sha256:%s:%s", a->key_id, hex);
}

void gw_audit_session_put(struct gw_audit *a, const char *session, const char *client_info)
{
    for (size_t i = 0; i < GW_AUDIT_SESSIONS_MAX; i++)
        if (a->sessions[i].session && strcmp(a->sessions[i].session, session) == 0) {
            free(a->sessions[i].info);
            a->sessions[i].info = al_xstrdup(client_info);
            return;
        }
    struct audit_session *e = &a->sessions[a->next_session];
    a->next_session = (a->next_session + 1) % GW_AUDIT_SESSIONS_MAX;
    free(e->session);
    free(e->info);
    e->session = al_xstrdup(session);
    e->info = al_xstrdup(client_info);
}

const char *gw_audit_session_get(const struct gw_audit *a, const char *session)
{
    for (size_t i = 0; i < GW_AUDIT_SESSIONS_MAX; i++)
        if (a->sessions[i].session && strcmp(a->sessions[i].session, session) == 0)
            return a->sessions[i].info;
    return NULL;
}
