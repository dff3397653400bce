/* SPDX-License-Identifier: Apache-2.0 */
/* An HTTP/2 mux connection over a bufferevent, carrying CONNECT streams of
 * raw bytes (docs/internals/TUNNEL.md §2, §3). The relay is the client
 * (opens streams), the gateway the server (answers them). This module is the
 * only one that includes nghttp2. Loop thread only.
 *
 * Flow control is manual both ways: bytes received on a stream are credited
 * back to the peer (WINDOW_UPDATE) only when the consumer calls
 * al_h2_stream_consume(); bytes written with al_h2_stream_write() sit in a
 * per-stream queue (allocated on first data) until the peer's window lets
 * them out. The connection writes to its bufferevent only while the output
 * is below a small watermark, so nothing is buffered beyond the windows.
 *
 * Callbacks may call any function here except al_h2_conn_free(). A stream's
 * callbacks stop after its on_close, or once the owner detaches it
 * (al_h2_stream_set_ud(st, NULL)): from then on its input is discarded and
 * credited at once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/macro.h"

struct event_base;
struct bufferevent;
struct al_h2_conn;
struct al_h2_stream;

/* Contract §2 settings. */
#define AL_H2_STREAM_WINDOW   (16u << 20)
#define AL_H2_CONN_WINDOW     (64u << 20)
#define AL_H2_MAX_FRAME       (16u << 10)
#define AL_H2_MAX_STREAMS     4096u
/* A stream's send queue above this is "full": producers stop reading. */
#define AL_H2_STREAM_QUEUE_HI (256u << 10)
#define AL_H2_STREAM_QUEUE_LO (64u << 10)

enum al_h2_role { AL_H2_CLIENT, AL_H2_SERVER };

struct al_h2_header {
    const char *name, *value;   /* NUL-terminated; borrowed */
    size_t namelen, valuelen;
};

struct al_h2_cbs {
    /* Server: a peer opened a stream; hdrs are its request headers (names
     * lower-case, pseudo-headers included), borrowed for the call. The owner
     * answers with al_h2_stream_respond() (now or later) or resets. */
    void (*on_request)(struct al_h2_stream *st, const struct al_h2_header *hdrs, size_t n,
                       void *conn_ud);
    /* Client: the response status of a stream opened with al_h2_stream_open(). */
    void (*on_response)(struct al_h2_stream *st, int status, void *ud);
    /* Bytes arrived; credit them with al_h2_stream_consume() once passed on. */
    void (*on_data)(struct al_h2_stream *st, const uint8_t *data, size_t len, void *ud);
    /* The peer half-closed (END_STREAM). */
    void (*on_eof)(struct al_h2_stream *st, void *ud);
    /* The send queue fell below AL_H2_STREAM_QUEUE_LO after being above it. */
    void (*on_drained)(struct al_h2_stream *st, void *ud);
    /* The stream is gone (both halves closed, reset, or connection lost):
     * error_code is the HTTP/2 code (0 = clean). st is freed on return. */
    void (*on_close)(struct al_h2_stream *st, uint32_t error_code, void *ud);
    /* The peer sent GOAWAY: open no new streams here. */
    void (*on_goaway)(struct al_h2_conn *c, void *conn_ud);
    /* A PING answered; rtt in µs. */
    void (*on_ping_rtt)(struct al_h2_conn *c, int64_t rtt_us, void *conn_ud);
    /* The connection is finished: err 0 after a clean drain, else -errno
     * (-ETIMEDOUT dead peer, -ECONNRESET, -EPROTO). Fires once, from a
     * deferred event (never from inside another callback); the owner calls
     * al_h2_conn_free() there or later. Streams got on_close before it. */
    void (*on_conn_close)(struct al_h2_conn *c, int err, void *conn_ud);
};

/* Takes ownership of bev (freed with the connection) and processes any bytes
 * already in its input. ping_interval_us > 0 sends PINGs; the peer is dead
 * when nothing arrived for dead_after_us after a PING (or, without PINGs,
 * for dead_after_us at all). Returns NULL on allocation failure (bev is then
 * freed too). */
struct al_h2_conn *al_h2_conn_new(struct event_base *base, struct bufferevent *bev,
                                  enum al_h2_role role, const struct al_h2_cbs *cbs, void *ud,
                                  int64_t ping_interval_us, int64_t dead_after_us);
/* Frees the connection at once: every open stream gets on_close first (with
 * CANCEL). NULL-safe; returns NULL. Not from inside this connection's
 * callbacks other than on_conn_close. */
struct al_h2_conn *al_h2_conn_free(struct al_h2_conn *c);
/* fn(bev) runs after each pass over the connection's input, and once now:
 * the TLS layer below uses it to process records it read ahead
 * (al_outer_kick_read). */
void al_h2_conn_set_after_read(struct al_h2_conn *c, void (*fn)(struct bufferevent *bev));
/* GOAWAY(NO_ERROR): no new streams; the connection finishes (on_conn_close
 * with 0) once open streams are done. A server first sends a shutdown notice
 * and the final GOAWAY one second later, so streams in flight are kept. */
void al_h2_conn_goaway(struct al_h2_conn *c);
/* Streams open on the connection (both directions). */
size_t al_h2_conn_streams(const struct al_h2_conn *c);
bool al_h2_conn_is_draining(const struct al_h2_conn *c);   /* GOAWAY sent or received */
int64_t al_h2_conn_rtt_us(const struct al_h2_conn *c);      /* last PING RTT, -1 unknown */
uint64_t al_h2_conn_bytes_in(const struct al_h2_conn *c);   /* DATA payload bytes */
uint64_t al_h2_conn_bytes_out(const struct al_h2_conn *c);

/* Client: opens a CONNECT stream with hdrs (":method CONNECT" and
 * ":authority" must be among them). Returns the stream or NULL (-errno in
 * *reterr: -ENOTCONN draining, -ENOBUFS stream limit, -EINVAL). */
struct al_h2_stream *al_h2_stream_open(struct al_h2_conn *c, const struct al_h2_header *hdrs,
                                       size_t n, void *ud, int *reterr);
/* Server: answers a stream with status; end_stream for error answers. */
_must_check_ int al_h2_stream_respond(struct al_h2_stream *st, int status, bool end_stream);
/* Queues bytes toward the peer. Returns 0, -EPIPE after al_h2_stream_end()
 * or once the stream is closing. Never refuses for space: callers watch
 * al_h2_stream_queued() against AL_H2_STREAM_QUEUE_HI. */
_must_check_ int al_h2_stream_write(struct al_h2_stream *st, const void *data, size_t len);
/* Moves the whole of an evbuffer (struct evbuffer *) into the queue. */
_must_check_ int al_h2_stream_write_evbuffer(struct al_h2_stream *st, void *evbuffer);
size_t al_h2_stream_queued(const struct al_h2_stream *st);
/* Half-close: END_STREAM after the queued bytes. */
void al_h2_stream_end(struct al_h2_stream *st);
/* RST_STREAM with code (0 = NO_ERROR, 8 = CANCEL, 1 = PROTOCOL_ERROR). */
void al_h2_stream_reset(struct al_h2_stream *st, uint32_t code);
/* Credits n received bytes back to the peer. */
void al_h2_stream_consume(struct al_h2_stream *st, size_t n);
void al_h2_stream_set_ud(struct al_h2_stream *st, void *ud);
int32_t al_h2_stream_id(const struct al_h2_stream *st);
struct al_h2_conn *al_h2_stream_conn(const struct al_h2_stream *st);

#define AL_H2_CANCEL 0x8u
#define AL_H2_PROTOCOL_ERROR 0x1u
#define AL_H2_REFUSED_STREAM 0x7u

/* TCP options of a tunnel socket: TCP_NODELAY, keepalive, TCP_USER_TIMEOUT
 * 30 s. Errors are ignored (not every socket is TCP). */
void al_h2_tune_socket(int fd);

/* An event base for a tunnel daemon: epoll with the change list, so a
 * write event added and removed within one loop pass (every flush of a
 * busy socket) costs no epoll_ctl. NULL on failure. */
struct event_base *al_h2_event_base_new(void);

const char *al_h2_version(void);
