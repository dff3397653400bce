/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int64_t al_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t al_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *al_rfc3339(int64_t us, char buf[static AL_RFC3339_MAX])
{
    time_t sec = (time_t) (us / 1000000);
    long frac = (long) (us % 1000000);
    struct tm tm;

    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    gmtime_r(&sec, &tm);
    /* Not strftime's %Y: it does not pad years before 1000 to the four
     * digits RFC 3339 requires, and al_rfc3339_parse would reject them. */
    char tmp[96];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    size_t n = strnlen(tmp, AL_RFC3339_MAX - 1);
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return buf;
}

static int digits(const char **p, int n, int *ret)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char) (*p)[i]))
            return -EINVAL;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *ret = v;
    return 0;
}

static int64_t days_from_civil(int y, int m, int d)
{
    /* Howard Hinnant's algorithm, proleptic Gregorian. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int al_rfc3339_parse(const char *s, int64_t *ret_us)
{
    int Y, M, D, h, m, sec, oh = 0, om = 0;
    int64_t frac = 0;
    const char *p = s;

    if (digits(&p, 4, &Y) < 0 || *p++ != '-' || digits(&p, 2, &M) < 0 || *p++ != '-' ||
        digits(&p, 2, &D) < 0)
        return -EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -EINVAL;
    p++;
    if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &m) < 0 || *p++ != ':' ||
        digits(&p, 2, &sec) < 0)
        return -EINVAL;
    if (*p == '.') {
        int n = 0;
        p++;
        if (!isdigit((unsigned char) *p))
            return -EINVAL;
        for (; isdigit((unsigned char) *p); p++, n++)
            if (n < 6)
                frac = frac * 10 + (*p - '0');
        for (; n < 6; n++)
            frac *= 10;
    }
    int sign = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0)
            return -EINVAL;
    } else
        return -EINVAL;
    if (*p)
        return -EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 || oh > 23 || om > 59)
        return -EINVAL;
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap))
        return -EINVAL;
    int64_t t = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec;
    t -= sign * (oh * 3600 + om * 60);
    *ret_us = t * 1000000 + frac;
    return 0;
}

void al_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            abort();
        }
        p += r;
        n -= (size_t) r;
    }
}

char *al_id_new(const char *prefix)
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char rnd[24];
    size_t pl = strlen(prefix);
    char *id = al_xmalloc(pl + 1 + sizeof(rnd) + 1);

    al_random(rnd, sizeof(rnd));
    memcpy(id, prefix, pl);
    id[pl] = '_';
    for (size_t i = 0; i < sizeof(rnd); i++) {
        /* Rejection-free: 248 = 4*62, so values >= 248 are re-drawn. */
        while (rnd[i] >= 248)
            al_random(&rnd[i], 1);
        id[pl + 1 + i] = b62[rnd[i] % 62];
    }
    id[pl + 1 + sizeof(rnd)] = '\0';
    return id;
}

char *al_secret_new(const char *prefix)
{
    unsigned char rnd[32];
    al_random(rnd, sizeof(rnd));
    _cleanup_free_ char *enc = al_b64url_encode(rnd, sizeof(rnd));
    return al_xasprintf("%s%s", prefix, enc);
}

char *al_b64url_encode(const void *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = data;
    char *out = al_xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;

    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t) in[i] << 16;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int al_b64_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_n)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -EINVAL;
    unsigned char *out = al_xmalloc(len / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    for (size_t i = 0; i < len; i++) {
        int v = b64_val((unsigned char) s[i]);
        if (v < 0) {
            free(out);
            return -EINVAL;
        }
        acc = acc << 6 | (uint32_t) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (acc >> bits & 0xff);
        }
    }
    out[o] = '\0';
    *ret = out;
    *ret_n = o;
    return 0;
}

void al_hex(const void *data, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int al_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    int64_t v = 0;
    bool neg = false;

    if (!s || !*s)
        return -EINVAL;
    if (*s == '-') {
        neg = true;
        s++;
        if (!*s)
            return -EINVAL;
    }
    for (; *s; s++) {
        if (!isdigit((unsigned char) *s))
            return -EINVAL;
        if (v > (INT64_MAX - (*s - '0')) / 10)
            return -ERANGE;
        v = v * 10 + (*s - '0');
    }
    if (neg)
        v = -v;
    if (v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

int al_parse_duration_us(const char *s, int64_t *ret_us)
{
    static const struct { const char *suffix; int64_t mul; } units[] = {
        { "us", 1 }, { "ms", 1000 }, { "s", 1000000 }, { "m", 60000000 }, { "h", 3600000000LL },
        { "", 1000000 },
    };
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 15)
        return -EINVAL;
    for (size_t i = 0; i < AL_ELEMENTSOF(units); i++)
        if (strcmp(s + n, units[i].suffix) == 0) {
            char num[16];
            int64_t v;
            memcpy(num, s, n);
            num[n] = '\0';
            int r = al_parse_i64(num, 0, INT64_MAX / units[i].mul, &v);
            if (r < 0)
                return r;
            *ret_us = v * units[i].mul;
            return 0;
        }
    return -EINVAL;
}

int al_file_replace(const char *path, const void *data, size_t n, unsigned mode)
{
    char tmp[4096];
    int r = 0;

    if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    (void) unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t) mode);
    if (fd < 0)
        return -errno;
    for (size_t off = 0; off < n && r == 0;) {
        ssize_t w = write(fd, (const char *) data + off, n - off);
        if (w < 0 && errno != EINTR)
            r = -errno;
        else if (w > 0)
            off += (size_t) w;
    }
    if (r == 0 && (fchmod(fd, (mode_t) mode) < 0 || fsync(fd) < 0))
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        (void) unlink(tmp);
    return r;
}
