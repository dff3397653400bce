/* SPDX-License-Identifier: Apache-2.0 */
/* SSE per the WHATWG event-stream grammar, restricted to what the platform
 * uses: "event" and "data" fields; "id" and "retry" are read and ignored. */
#include <string.h>

#include "../base/util.h"
#include "sse.h"

char *al_sse_frame(const char *name, const char *data, size_t data_len, size_t *ret_len)
{
    size_t nl = strlen(name);
    if (strpbrk(name, "\r\n"))
        return NULL;
    /* Worst case every byte is a line break: "data: " + "\n" per byte. */
    size_t cap = 7 + nl + 1 + (data_len + 1) * 7 + 2;
    char *out = al_xmalloc(cap);
    size_t o = 0;

    memcpy(out + o, "event: ", 7);
    o += 7;
    memcpy(out + o, name, nl);
    o += nl;
    out[o++] = '\n';
    size_t i = 0;
    do {
        size_t start = i;
        while (i < data_len && data[i] != '\n' && data[i] != '\r')
            i++;
        memcpy(out + o, "data: ", 6);
        o += 6;
        memcpy(out + o, data + start, i - start);
        o += i - start;
        out[o++] = '\n';
        if (i < data_len) {
            if (data[i] == '\r' && i + 1 < data_len && data[i + 1] == '\n')
                i++;
            i++;
            if (i == data_len) {
                /* A trailing line break means one more, empty, data line. */
                memcpy(out + o, "data: \n", 7);
                o += 7;
            }
        }
    } while (i < data_len);
    out[o++] = '\n';
    out[o] = '\0';
    *ret_len = o;
    return out;
}

void al_sse_reader_init(struct al_sse_reader *r)
{
    *r = (struct al_sse_reader){ 0 };
}

void al_sse_reader_done(struct al_sse_reader *r)
{
    free(r->line);
    free(r->event);
    free(r->data);
    *r = (struct al_sse_reader){ 0 };
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need > AL_SSE_MAX_EVENT)
        return -EMSGSIZE;
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    *p = al_xrealloc(*p, n);
    *cap = n;
    return 0;
}

static int dispatch(struct al_sse_reader *r, al_sse_event_cb cb, void *ud)
{
    int ret = 0;
    if (r->have_data) {
        if (grow(&r->data, &r->data_cap, r->data_len + 1) < 0)
            return -EMSGSIZE;
        r->data[r->data_len] = '\0';
        ret = cb(r->event, r->data, r->data_len, ud);
    }
    free(r->event);
    r->event = NULL;
    r->data_len = 0;
    r->have_data = false;
    return ret < 0 ? ret : 0;
}

static int process_line(struct al_sse_reader *r, const char *line, size_t len, al_sse_event_cb cb, void *ud)
{
    if (len == 0)
        return dispatch(r, cb, ud);
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', len);
    size_t fl = colon ? (size_t) (colon - line) : len;
    const char *v = colon ? colon + 1 : line + len;
    size_t vl = colon ? len - fl - 1 : 0;
    if (vl > 0 && *v == ' ') {
        v++;
        vl--;
    }
    if (fl == 5 && memcmp(line, "event", 5) == 0) {
        free(r->event);
        r->event = al_xstrndup(v, vl);
    } else if (fl == 4 && memcmp(line, "data", 4) == 0) {
        size_t need = r->data_len + (r->have_data ? 1 : 0) + vl + 1;
        if (grow(&r->data, &r->data_cap, need) < 0)
            return -EMSGSIZE;
        if (r->have_data)
            r->data[r->data_len++] = '\n';
        memcpy(r->data + r->data_len, v, vl);
        r->data_len += vl;
        r->have_data = true;
    }
    return 0;
}

int al_sse_reader_feed(struct al_sse_reader *r, const char *buf, size_t len, al_sse_event_cb cb, void *ud)
{
    static const unsigned char bom[3] = { 0xEF, 0xBB, 0xBF };

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (!r->bom_checked) {
            /* The BOM may only appear at the very start of the stream, and
             * may arrive split over several calls. Until the first byte
             * that does not continue it, every byte so far is a BOM prefix
             * held in line, so line_len says how much of it was seen. */
            if ((unsigned char) c == bom[r->line_len]) {
                if (r->line_len == 2) {
                    r->line_len = 0;
                    r->bom_checked = true;
                    continue;
                }
            } else
                r->bom_checked = true;
        }
        if (r->last_cr) {
            r->last_cr = false;
            if (c == '\n')
                continue;
        }
        if (c == '\r' || c == '\n') {
            r->last_cr = c == '\r';
            int ret = process_line(r, r->line ? r->line : "", r->line_len, cb, ud);
            r->line_len = 0;
            if (ret < 0)
                return ret;
            continue;
        }
        /* The rest of the line, up to the next CR or LF, in one copy. */
        const char *p = buf + i;
        size_t n = len - i;
        const char *nl = memchr(p, '\n', n);
        size_t span = nl ? (size_t) (nl - p) : n;
        const char *cr = memchr(p, '\r', span);
        if (cr)
            span = (size_t) (cr - p);
        if (!r->bom_checked)
            span = 1;                   /* still deciding about a BOM: byte by byte */
        if (grow(&r->line, &r->line_cap, r->line_len + span) < 0)
            return -EMSGSIZE;
        memcpy(r->line + r->line_len, p, span);
        r->line_len += span;
        i += span - 1;
    }
    return 0;
}
