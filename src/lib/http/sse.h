/* SPDX-License-Identifier: Apache-2.0 */
/* Server-sent events: a frame encoder and an incremental reader. Both are
 * pure (no I/O); the reader keeps at most AL_SSE_MAX_EVENT bytes of one
 * pending event and reports -EMSGSIZE beyond that. Fuzzed as a round trip. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "../base/macro.h"

#define AL_SSE_MAX_EVENT (16u << 20)

/* Returns a new frame "event: NAME\ndata: LINE\n...\n\n" (caller frees) and
 * its length in *ret_len. data may contain newlines (CR, LF or CRLF); each
 * line becomes its own data: field, so the reader returns it joined by "\n".
 * name must not contain CR or LF (-EINVAL, NULL returned). */
char *al_sse_frame(const char *name, const char *data, size_t data_len, size_t *ret_len);

struct al_sse_reader {
    char *line;        /* partial line */
    size_t line_len, line_cap;
    char *event;       /* current event name or NULL */
    char *data;        /* accumulated data (joined with \n) */
    size_t data_len, data_cap;
    bool have_data;
    bool bom_checked;
    bool last_cr;      /* previous chunk ended in CR: swallow a leading LF */
};

/* Called once per dispatched event. name is NULL when the event had no
 * "event:" field. Return < 0 to stop; that value is returned by feed. */
typedef int (*al_sse_event_cb)(const char *name, const char *data, size_t data_len, void *ud);

void al_sse_reader_init(struct al_sse_reader *r);
void al_sse_reader_done(struct al_sse_reader *r);
/* Feeds bytes; returns 0, the callback's negative value, or -EMSGSIZE. */
_must_check_ int al_sse_reader_feed(struct al_sse_reader *r, const char *buf, size_t len,
                                    al_sse_event_cb cb, void *ud);
