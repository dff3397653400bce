/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between h2.c (the connection) and h2_stream.c (its streams).
 * Only these two files include it. */
#pragma once

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "h2.h"

/* The connection writes frames while its output holds less than this; the
 * write callback fires again below AL_H2_OUT_LO. */
#define AL_H2_OUT_HI (128u << 10)
#define AL_H2_OUT_LO (32u << 10)
#define AL_H2_IN_HI (1u << 20)
#define AL_H2_IO_CHUNK (256u << 10)
#define AL_H2_MAX_HDRS 24
#define AL_H2_HDR_SCRATCH 4096

struct al_h2_stream {
    struct al_h2_conn *conn;
    struct al_h2_stream *prev, *next;
    int32_t id;
    int status;              /* client: response :status */
    void *ud;
    struct evbuffer *out;    /* allocated on first write */
    size_t unconsumed;       /* received, not yet credited */
    bool out_eof;            /* END_STREAM requested */
    bool out_done;           /* END_STREAM or RST queued: no more writes */
    bool deferred;           /* the data provider returned DEFERRED */
    bool has_provider;       /* HEADERS submitted with a data provider */
    bool above_hi;
};

struct al_h2_conn {
    struct event_base *base;
    struct bufferevent *bev;
    void (*after_read)(struct bufferevent *bev);   /* al_h2_conn_set_after_read */
    nghttp2_session *ng;
    enum al_h2_role role;
    const struct al_h2_cbs *cbs;
    void *ud;
    struct al_h2_stream *streams;
    size_t nstreams;
    struct event *flush_ev, *timer_ev, *close_ev, *goaway_ev;
    int close_err;
    bool closing, notified, draining, eof;
    int64_t ping_interval, dead_after, last_recv, ping_sent, next_ping, rtt;
    uint64_t bytes_in, bytes_out;
    struct al_h2_header hdrs[AL_H2_MAX_HDRS];
    size_t nhdrs, scratch_len;
    char scratch[AL_H2_HDR_SCRATCH];
};

/* h2.c: frames go out on the next loop pass (one batch per pass). */
void h2_conn_schedule_flush(struct al_h2_conn *c);

/* h2_stream.c */
struct al_h2_stream *h2_stream_new(struct al_h2_conn *c, void *ud);
void h2_stream_unlink(struct al_h2_stream *st);
void h2_stream_free(struct al_h2_stream *st);
void h2_stream_unlink_free(struct al_h2_stream *st);
ssize_t h2_data_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                        nghttp2_data_source *src, void *user);
