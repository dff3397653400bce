/* SPDX-License-Identifier: Apache-2.0 */
/* The gateway's per-stream side (stream.h). First cut: the interface links;
 * the implementation follows. Loop thread only. */
#include <errno.h>
#include <stdlib.h>

#include "../lib/base/buf.h"
#include "../lib/base/log.h"
#include "stream.h"

struct gw_ctx *gw_ctx_new(struct event_base *base, const struct gw_stream_config *cfg)
{
    (void) base;
    (void) cfg;
    al_log(AL_ERROR, "gateway.stream_unimplemented");
    return NULL;
}

void gw_ctx_free(struct gw_ctx *ctx) { (void) ctx; }
int gw_ctx_reload_cert(struct gw_ctx *ctx) { (void) ctx; return -ENOSYS; }
void gw_ctx_set_tunnel_hostname(struct gw_ctx *ctx, const char *hostname) { (void) ctx; (void) hostname; }
void gw_ctx_metrics(struct gw_ctx *ctx, struct al_buf *out) { (void) ctx; (void) out; }

struct gw_stream *gw_stream_open(struct gw_ctx *ctx, const struct gw_stream_meta *meta,
                                 const struct gw_pipe_ops *ops, void *pipe)
{
    (void) ctx; (void) meta; (void) ops; (void) pipe;
    return NULL;
}

void gw_stream_input(struct gw_stream *s, const void *data, size_t len) { (void) s; (void) data; (void) len; }
void gw_stream_input_eof(struct gw_stream *s) { (void) s; }
void gw_stream_reset(struct gw_stream *s) { (void) s; }
void gw_stream_output_drained(struct gw_stream *s) { (void) s; }

int gw_direct_listen(struct gw_ctx *ctx, const char *addr, char *bound, size_t boundlen)
{
    (void) ctx; (void) addr; (void) bound; (void) boundlen;
    return -ENOSYS;
}
