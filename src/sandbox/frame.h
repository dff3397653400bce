/* SPDX-License-Identifier: Apache-2.0 */
/* The worker <-> runner protocol on the session's socketpair (SOCK_STREAM).
 *
 * A frame is a 4-byte big-endian length L (1 <= L <= AL_FRAME_MAX_JSON)
 * followed by L bytes of one UTF-8 JSON object. When that object has an
 * integer member "payload": N (0 <= N <= AL_FRAME_MAX_PAYLOAD), exactly N raw
 * bytes follow the JSON. Anything else (a bad length, bad JSON, a payload
 * over the cap) is a protocol error: the reader closes the connection.
 *
 * Runner -> worker, once, when it is ready to serve:
 *   {"op":"ready","pid":P,"workdir":"<path the tools print>","outputs":"<path>"}
 * Worker -> runner requests, answered in order, one at a time (calls of a
 * session are serialised; the worker sends the next request only after the
 * previous answer, except "cancel"):
 *   {"id":N,"op":"tool","name":"bash|read|write|edit|glob|grep","input":{...}}
 *       -> {"id":N,"is_error":B,"text":"..."}      (an unknown name is is_error)
 *   {"id":N,"op":"skill_install","dir":"<dir name>","payload":LEN} + archive bytes
 *       -> {"id":N,"ok":true} | {"id":N,"ok":false,"error":"<text>"}
 *   {"id":N,"op":"skill_remove","dir":"<dir name>"}
 *       -> {"id":N,"ok":true} | {"id":N,"ok":false,"error":"<text>"}
 *   {"op":"cancel","id":N}      no answer of its own: the running request N
 *       ends early and answers as the SDK does when its abort signal fires
 *       ("bash: This operation was aborted", is_error); ignored when N is not
 *       running.
 * The worker ends a session by closing its end: the runner kills the shell
 * and everything it started and exits 0.
 *
 * Ids are the worker's (unsigned, < 2^53). This module only encodes and
 * decodes frames over blocking or non-blocking fds; libc and jansson only. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../lib/base/macro.h"

#define AL_FRAME_MAX_JSON    (16u << 20)
#define AL_FRAME_MAX_PAYLOAD (64u << 20)

/* One decoded frame; owned. */
struct al_frame {
    json_t *msg;          /* the JSON object */
    unsigned char *payload; /* NULL when none */
    size_t payload_len;
};

void al_frame_done(struct al_frame *f);

/* Encodes msg (and payload, whose length it sets as "payload" when
 * payload_len > 0 or payload != NULL) into one owned buffer. Returns 0 or
 * -EMSGSIZE / -EINVAL. */
_must_check_ int al_frame_encode(const json_t *msg, const void *payload, size_t payload_len,
                                 unsigned char **out, size_t *out_len);

/* Incremental decoder for a byte stream: feed what was read, take frames. */
struct al_frame_reader {
    unsigned char *buf;
    size_t len, cap;
};

void al_frame_reader_done(struct al_frame_reader *r);
/* Appends n bytes. Returns 0, or -EMSGSIZE when more than two maximal
 * frames would be buffered (a caller that does not take frames between
 * feeds). The caps on one frame are checked by al_frame_reader_next as
 * soon as its header, then its JSON, is complete, so an oversized frame
 * fails before its body is buffered, wherever the bytes were split. */
_must_check_ int al_frame_reader_feed(struct al_frame_reader *r, const void *p, size_t n);
/* Takes the next complete frame: 1 with *f filled (f->payload is non-NULL
 * exactly when the JSON has a "payload" member, even for 0 bytes), 0 when
 * more bytes are needed, -EPROTO on a malformed frame: a length of 0 or
 * over the cap, JSON that is not one object, invalid UTF-8, or a "payload"
 * member that is not an integer within the cap. The stream is then
 * unusable. */
_must_check_ int al_frame_reader_next(struct al_frame_reader *r, struct al_frame *f);

/* Blocking helpers for the runner: write a whole frame (EINTR-safe), or read
 * the next one (0 on clean EOF before any byte, 1 with a frame, negative
 * errno otherwise). */
_must_check_ int al_frame_write_fd(int fd, const json_t *msg, const void *payload, size_t payload_len);
_must_check_ int al_frame_read_fd(int fd, struct al_frame_reader *r, struct al_frame *f);
