/* SPDX-License-Identifier: Apache-2.0 */
/* The gateway's per-stream side: one client connection's bytes (ciphertext
 * of the inner TLS) in and out, terminated with the operator's certificate,
 * routed by the inner SNI to an upstream, proxied as HTTP/1.1 unchanged, and
 * audited. The transport (an HTTP/2 CONNECT stream from the relay, or a
 * plain socket on the direct listener) implements struct gw_pipe_ops.
 * See docs/internals/TUNNEL.md §4. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct gw_ctx;
struct gw_stream;

/* Configuration of the stream side, filled from the gateway's flags. */
struct gw_stream_config {
    char **routes;            /* "NAME=URL" entries, NULL-terminated; URL http://host:port[/prefix] */
    const char *cert_file;    /* inner TLS certificate chain (PEM) */
    const char *key_file;     /* its private key (PEM) */
    const char *allowed_ips;  /* comma-separated CIDRs; NULL = loopback + RFC 1918 (+ ::1, fc00::/7) */
    const char *audit_path;   /* JSON Lines file, "-" = stdout, NULL = no audit */
    const char *audit_key_file; /* HMAC key for argument digests; NULL = generated per process */
    const char *audit_key_id; /* recorded with each digest, e.g. "k1" */
    size_t audit_queue_max;   /* bounded audit queue (records); beyond it records are dropped+counted */
    const char *tunnel_hostname; /* learned from the relay's 101; NULL for the direct listener */
};

/* Metadata of one stream (from the CONNECT headers, or the socket). */
struct gw_stream_meta {
    const char *tunnel_id;    /* may be NULL (direct listener) */
    const char *sni;          /* the SNI the relay read, may be NULL */
    const char *client_addr;  /* "ip:port" / "[v6]:port" */
    uint64_t stream_id;       /* for logs */
    const char *conn_label;   /* e.g. "c-2" */
};

/* What the transport offers the stream. All calls on the loop thread. */
struct gw_pipe_ops {
    /* Queue ciphertext toward the client. Never fails for lack of space:
     * the stream itself stops reading its upstream while queued() is above
     * its high watermark. Returns 0, or -errno when the pipe is gone. */
    int (*write)(void *pipe, const void *data, size_t len);
    /* Bytes accepted by write() and not yet handed to the kernel/peer. */
    size_t (*queued)(void *pipe);
    /* The stream has passed on n bytes of input (flow-control credit). */
    void (*consumed)(void *pipe, size_t n);
    /* The stream is finished: abort=false ends the output cleanly (half
     * close after queued data), abort=true resets. No callbacks into the
     * stream happen after this returns; the pipe forgets the stream. */
    void (*close)(void *pipe, bool abort);
};

/* Context shared by every stream of the process. Loads the certificate,
 * parses routes and allowed IPs; on error returns NULL after logging a
 * clear message. */
struct gw_ctx *gw_ctx_new(struct event_base *base, const struct gw_stream_config *cfg);
void gw_ctx_free(struct gw_ctx *ctx);
/* Reloads certificate and key (SIGHUP); existing streams keep the old ones.
 * Returns 0 or -errno (the old pair stays in use). */
int gw_ctx_reload_cert(struct gw_ctx *ctx);
/* Sets the tunnel hostname learned from the relay (routes match NAME.<hostname>). */
void gw_ctx_set_tunnel_hostname(struct gw_ctx *ctx, const char *hostname);
/* Prometheus text for the stream side (streams, TLS handshakes, upstream
 * errors, MCP requests, audit records/dropped), appended to out. */
struct al_buf;
void gw_ctx_metrics(struct gw_ctx *ctx, struct al_buf *out);

/* A new stream. Returns NULL on allocation failure only. */
struct gw_stream *gw_stream_open(struct gw_ctx *ctx, const struct gw_stream_meta *meta,
                                 const struct gw_pipe_ops *ops, void *pipe);
/* Ciphertext from the client. The stream calls ops->consumed() for these
 * bytes once it has passed them on (possibly later). */
void gw_stream_input(struct gw_stream *s, const void *data, size_t len);
/* The client half-closed (END_STREAM / EOF). */
void gw_stream_input_eof(struct gw_stream *s);
/* The client reset or the transport died: tear down at once, close the
 * upstream, write the audit lines of unfinished requests (aborted). The
 * stream does not call ops->close() afterwards. */
void gw_stream_reset(struct gw_stream *s);
/* The transport drained below its low watermark: resume reading upstream. */
void gw_stream_output_drained(struct gw_stream *s);

/* The direct listener (benchmark path D1 and local checks): accept TLS
 * connections on addr and serve each as a stream through the same code.
 * Returns 0 or -errno. */
int gw_direct_listen(struct gw_ctx *ctx, const char *addr, char *bound, size_t boundlen);
