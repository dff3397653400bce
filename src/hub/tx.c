/* SPDX-License-Identifier: Apache-2.0 */
/* Group commit. Every request served in one pass of the event loop writes
 * inside one store transaction (the "pass"), each request or loop step in a
 * savepoint of its own. Replies and event publication are held until the
 * pass commits at the end of the loop pass: a client never sees a 2xx, and
 * a stream never sees an event, that a crash could take back, yet many
 * requests share one commit and the WAL pages they all touch. */
#include <event2/event.h>

#include "../lib/base/log.h"
#include "hub.h"

#define TX_MAX_DEPTH 16

static void pass_end(evutil_socket_t fd, short what, void *arg)
{
    struct hub *h = arg;
    if (!h->pass_open)
        return;
    h->pass_open = false;
    if (h->tx_depth != 0) {
        /* A level left open is a bug; its writes still belong to this pass. */
        al_log(AL_ERROR, "tx.unbalanced", AL_I64("depth", h->tx_depth));
        h->tx_depth = 0;
    }
    int e = 0;
    while (e == 0 && al_store_in_transaction(h->store))
        e = al_store_commit(h->store);
    h->m.passes++;
    if (e < 0) {
        al_log(AL_ERROR, "tx.pass_failed", AL_ERR(e));
        events_discard(h);
        al_http_server_release(h->http, false);
        return;
    }
    events_publish_pending(h);
    al_http_server_release(h->http, true);
}

void hub_tx_init(struct hub *h)
{
    h->pass_ev = event_new(h->base, -1, 0, pass_end, h);
}

void hub_tx_done(struct hub *h)
{
    pass_end(-1, 0, h);
    if (h->pass_ev)
        event_free(h->pass_ev);
    h->pass_ev = NULL;
}

int hub_pass_begin(struct hub *h)
{
    if (h->pass_open || !h->pass_ev)
        return 0;
    int e = al_store_begin(h->store);
    if (e < 0)
        return e;
    h->pass_open = true;
    al_http_server_hold(h->http);
    event_active(h->pass_ev, EV_TIMEOUT, 0);
    return 0;
}

int hub_tx_begin(struct hub *h)
{
    if (h->tx_depth == TX_MAX_DEPTH)
        return -E2BIG;
    int e = hub_pass_begin(h);
    if (e == 0)
        e = al_store_begin(h->store);
    if (e < 0)
        return e;
    h->tx_marks[h->tx_depth++] = h->pending ? json_array_size(h->pending) : 0;
    return 0;
}

int hub_tx_end(struct hub *h, int e)
{
    if (h->tx_depth == 0)
        return e < 0 ? e : -EINVAL;   /* the begin failed */
    size_t mark = h->tx_marks[--h->tx_depth];
    if (e == 0)
        e = al_store_commit(h->store);
    else
        al_store_rollback(h->store);
    if (e < 0)
        /* Forget the events this level appended; earlier ones stay. */
        while (h->pending && json_array_size(h->pending) > mark)
            json_array_remove(h->pending, json_array_size(h->pending) - 1);
    return e;
}
