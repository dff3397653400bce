/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's opt-in local admin address (--admin-listen): GET /healthz
 * and GET /metrics (Prometheus text). The worker listens on nothing else;
 * bind it to loopback. */
#include <stdio.h>

#include "../lib/base/log.h"
#include "../lib/http/server.h"
#include "../sandbox/sandbox.h"
#include "wk.h"

static void h_healthz(struct al_req *r, void *ud)
{
    al_reply_text(r, 200, "text/plain", "ok\n");
}

static void h_metrics(struct al_req *r, void *ud)
{
    const struct worker *w = ud;
    const char *level = w->isolation ? al_isolation_name((enum al_isolation) w->isolation) : "none";
    _cleanup_free_ char *text = al_xasprintf(
        "# HELP airlock_worker_isolation_level The isolation level sessions get (A strongest; none without a sandbox).\n"
        "# TYPE airlock_worker_isolation_level gauge\nairlock_worker_isolation_level{level=\"%s\"} 1\n"
        "# TYPE airlock_worker_sessions gauge\nairlock_worker_sessions %zu\n"
        "# TYPE airlock_worker_max_sessions gauge\nairlock_worker_max_sessions %lld\n"
        "# TYPE airlock_worker_items_claimed_total counter\nairlock_worker_items_claimed_total %llu\n"
        "# TYPE airlock_worker_tools_run_total counter\nairlock_worker_tools_run_total %llu\n"
        "# TYPE airlock_worker_results_posted_total counter\nairlock_worker_results_posted_total %llu\n"
        "# TYPE airlock_worker_draining gauge\nairlock_worker_draining %d\n"
        "# HELP airlock_worker_runner_zygote_up Whether the runner zygote is running now (a dead one is restarted at the next session).\n"
        "# TYPE airlock_worker_runner_zygote_up gauge\nairlock_worker_runner_zygote_up %d\n"
        "# HELP airlock_worker_runners_started_total Runners started, forked from the zygote or exec'd.\n"
        "# TYPE airlock_worker_runners_started_total counter\n"
        "airlock_worker_runners_started_total{via=\"zygote\"} %llu\n"
        "airlock_worker_runners_started_total{via=\"exec\"} %llu\n",
        level, w->n_items, (long long) w->cfg.max_sessions, (unsigned long long) w->items_claimed,
        (unsigned long long) w->tools_run, (unsigned long long) w->results_posted, w->draining ? 1 : 0,
        w->zygote_fd >= 0 ? 1 : 0, (unsigned long long) w->runners_zygote, (unsigned long long) w->runners_exec);
    al_reply_text(r, 200, "text/plain; version=0.0.4", text);
}

int wk_admin_start(struct worker *w)
{
    static struct al_route routes[] = {
        { "GET", "/healthz", h_healthz, 0 },
        { "GET", "/metrics", h_metrics, 0 },
        { 0 },
    };
    struct al_http_server_config cfg = { .routes = routes, .ud = w, .max_body = 1024, .max_body_hard = 4096,
                                         .idle_timeout_s = 30 };
    _cleanup_free_ char *bound = NULL;
    int r;

    if (!w->cfg.admin_listen)
        return 0;
    r = al_http_server_new(w->base, w->cfg.admin_listen, &cfg, &w->admin, &bound);
    if (r < 0)
        return al_log_errno(AL_ERROR, r, "cannot listen on the admin address", AL_STR("addr", w->cfg.admin_listen));
    al_log(AL_INFO, "admin address", AL_STR("url", bound));
    return 0;
}
