/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock up`: the embedded default. A supervisor, not a daemon: it starts
 * a hub (SQLite under DATA/hub), an MCP tunnel (a relay, a small private MCP
 * server and a gateway, with a test PKI under DATA/tunnel) and a worker
 * (sessions under DATA/worker) as child processes, makes the API objects
 * they need, runs a demo session and prints its timeline, then waits for
 * Ctrl-C / SIGTERM and stops the worker (it drains), the hub, the gateway,
 * the relay and the MCP server, in that order. Single threaded; each
 * child's log goes to DATA/<child>.log. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/base/log.h"
#include "../lib/base/opt.h"
#include "../lib/base/util.h"
#include "cli-internal.h"
#include "cli.h"
#include "up-internal.h"

#define UP_READY_TIMEOUT_MS   60000     /* a hub or worker under ASan on a slow machine */
#define UP_WORKER_STOP_MS     45000     /* the worker's --drain plus its slack */
#define UP_HUB_STOP_MS        15000
#define UP_TUNNEL_STOP_MS     45000     /* the gateway's and the relay's --drain-timeout plus slack */
#define UP_MCP_STOP_MS        5000
#define UP_API_TIMEOUT_MS     30000
#define UP_WORKER_DRAIN       "30s"

#define O(n, t, f, def, meta, help) AL_OPT(n, t, struct up_cfg, f, def, meta, help)
static const struct al_opt up_opts[] = {
    O("listen", AL_OPT_STR, listen, "127.0.0.1:8080", "ADDR", "the hub's HTTP address (port 0 picks a free one)"),
    O("data-dir", AL_OPT_STR, data_dir, "./var", "DIR",
      "state: DIR/hub (store, api.key), DIR/worker (sessions), DIR/tunnel (PKI, token), DIR/*.log"),
    O("no-demo", AL_OPT_BOOL, no_demo, NULL, NULL, "start everything but the demo session"),
    O("exit-after-demo", AL_OPT_BOOL, exit_after_demo, NULL, NULL,
      "stop everything and exit once the demo's turn has ended (0 on end_turn); for tests"),
    { 0 },
};
#undef O

static const char up_desc[] =
    "Start the embedded default: a hub on SQLite, an environment worker, an MCP tunnel (a relay, a gateway\n"
    "and a small private MCP server behind it, with a test PKI under DIR/tunnel), and a demo session of a\n"
    "scripted agent that looks a ticket up with the private MCP tool through the tunnel, then writes,\n"
    "runs, edits, greps and reads a file in its workspace and leaves a report in its outputs directory;\n"
    "its timeline is printed as it happens. The environment \"airlock-up\", the agent \"airlock-up-demo\"\n"
    "and the tunnel \"airlock-up\" are reused on later runs; each run makes a new environment key (passed\n"
    "to the worker in its environment, revoked when up stops) and a new demo session. Runs until Ctrl-C\n"
    "or SIGTERM, then stops the worker (it drains), the hub, the gateway, the relay and the MCP server,\n"
    "and exits 0 if all of them exited cleanly.";

static int mkdir_p(const char *path)
{
    _cleanup_free_ char *p = al_xstrdup(path);

    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return -errno;
            *s = '/';
        }
    return mkdir(p, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

static int read_api_key(struct up *u)
{
    char buf[512];
    _cleanup_close_ int fd = open(u->key_file, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

    if (n <= 0) {
        fprintf(stderr, "airlock up: cannot read the hub's API key from %s\n", u->key_file);
        return -EIO;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    u->client.credential = al_xstrdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

/* Explains why the hub did not come up: a clear line for the usual cause. */
static void hub_failed(struct up *u)
{
    if (up_child_log_has(&u->hub, "\"err\":\"EADDRINUSE\""))
        fprintf(stderr, "airlock up: %s is already in use (another airlock up or hub?); stop it or pass "
                        "--listen HOST:PORT\n", u->cfg.listen);
    else if (u->stop_signals == 0)
        fprintf(stderr, "airlock up: the hub did not start\n");
    if (u->stop_signals == 0)
        up_child_log_tail(&u->hub, 8);
}

static int start_hub(struct up *u)
{
    _cleanup_free_ char *dir = al_xasprintf("%s/hub", u->dir);
    char *argv[] = { "airlock", "hub", "--listen", u->cfg.listen, "--data-dir", dir, "--tunnel-domain",
                     UP_TUNNEL_DOMAIN, "--tunnel-relay", u->relay_client, "--ready-fd", "3", NULL };
    char *none[] = { NULL };
    _cleanup_free_ char **env = up_child_env(none);
    int rd = -1;

    u->hub.log_path = al_xasprintf("%s/hub.log", u->dir);
    int r = up_child_spawn(u, &u->hub, argv, env, &rd);
    if (r < 0) {
        fprintf(stderr, "airlock up: cannot start the hub: %s\n", al_errno_name(-r) ?: "error");
        return r;
    }
    u->client.base_url = up_read_ready(u, &u->hub, rd, UP_READY_TIMEOUT_MS);
    if (!u->client.base_url) {
        hub_failed(u);
        return -ECHILD;
    }
    u->client.timeout_ms = UP_API_TIMEOUT_MS;
    printf("airlock up: hub listening on %s (log: %s)\n", u->client.base_url, u->hub.log_path);
    return read_api_key(u);
}

/* The key reaches the worker in its environment only: never argv (visible
 * in ps) and never a file. Our copy is wiped once the worker runs. */
static int start_worker(struct up *u)
{
    _cleanup_free_ char *root = al_xasprintf("%s/worker", u->dir);
    _cleanup_free_ char *e_url = al_xasprintf("ANTHROPIC_BASE_URL=%s", u->client.base_url);
    _cleanup_free_ char *e_env = al_xasprintf("ANTHROPIC_ENVIRONMENT_ID=%s", u->env_id);
    _cleanup_free_ char *e_key = al_xasprintf("ANTHROPIC_ENVIRONMENT_KEY=%s", u->env_key);
    char *argv[] = { "airlock", "worker", "--root", root, "--max-sessions", "4", "--drain", UP_WORKER_DRAIN,
                     "--ready-fd", "3", NULL };
    char *extra[] = { e_url, e_env, e_key, NULL };
    _cleanup_free_ char **env = up_child_env(extra);
    int rd = -1;

    u->worker.log_path = al_xasprintf("%s/worker.log", u->dir);
    int r = up_child_spawn(u, &u->worker, argv, env, &rd);
    explicit_bzero(e_key, strlen(e_key));
    explicit_bzero(u->env_key, strlen(u->env_key));
    if (r < 0) {
        fprintf(stderr, "airlock up: cannot start the worker: %s\n", al_errno_name(-r) ?: "error");
        return r;
    }
    _cleanup_free_ char *ready = up_read_ready(u, &u->worker, rd, UP_READY_TIMEOUT_MS);
    if (!ready) {
        if (u->stop_signals == 0) {
            fprintf(stderr, "airlock up: the worker did not start\n");
            up_child_log_tail(&u->worker, 8);
        }
        return -ECHILD;
    }
    printf("airlock up: worker polling environment %s (sessions under %s, log: %s)\n", u->env_id, root,
           u->worker.log_path);
    return 0;
}

static void print_summary(struct up *u)
{
    printf("\nairlock is up.\n");
    printf("  hub          %s\n", u->client.base_url);
    printf("  API key      %s   (export AIRLOCK_API_KEY=$(cat %s))\n", u->key_file, u->key_file);
    printf("  environment  %s   agent %s\n", u->env_id, u->agent_id);
    if (u->session_id) {
        printf("  session      %s   (airlock session tail %s)\n", u->session_id, u->session_id);
        printf("  workspace    %s\n", u->workspace);
        printf("  report       %s\n", u->report_path);
    }
    up_tunnel_summary(u);
    printf("  logs         %s, %s,\n               %s, %s, %s\n", u->hub.log_path, u->worker.log_path,
           u->relay.log_path, u->gateway.log_path, u->mcp.log_path);
    if (!u->cfg.exit_after_demo)
        printf("Ctrl-C stops the worker, the hub, the gateway, the relay and the MCP server.\n");
    fflush(stdout);
}

/* The relay's client address first (the hub is told where it is), then
 * the hub, the tunnel's API objects and PKI, the agent (which needs the
 * tunnel's hostname), the relay, MCP server and gateway, the worker. */
static int start_all(struct up *u)
{
    int r = up_tunnel_reserve(u);

    if (r >= 0)
        r = start_hub(u);
    if (r >= 0)
        r = up_tunnel_setup(u);
    if (r >= 0)
        r = up_demo_objects(u);
    if (r >= 0)
        printf("airlock up: environment %s (airlock-up), agent %s (airlock-up-demo, airlock-scripted)\n",
               u->env_id, u->agent_id);
    if (r >= 0)
        r = up_tunnel_start(u);
    if (r >= 0)
        r = start_worker(u);
    if (r >= 0 && !u->cfg.no_demo) {
        r = up_demo_session(u);
        if (r >= 0) {
            printf("airlock up: demo session %s\n\n", u->session_id);
            r = up_child_fork(u, &u->demo, up_demo_follow);
        }
    }
    if (r >= 0 && u->cfg.no_demo)
        print_summary(u);
    return r;
}

/* Waits for the demo's end, a stop signal, or a child's death. Returns 0 to
 * stop normally, < 0 for a failure. */
static int supervise(struct up *u)
{
    for (;;) {
        if (u->stop_signals > 0)
            return 0;
        struct up_child *daemons[] = { &u->hub, &u->worker, &u->relay, &u->mcp, &u->gateway };
        for (size_t i = 0; i < AL_ELEMENTSOF(daemons); i++) {
            struct up_child *c = daemons[i];
            if (!c->exited)
                continue;
            fprintf(stderr, "airlock up: the %s stopped unexpectedly\n", c->name);
            (void) up_child_ok(c);
            up_child_log_tail(c, 8);
            return -ECHILD;
        }
        if (u->demo.exited) {
            u->demo.exited = false;          /* reported once */
            bool ok = up_child_ok(&u->demo);
            if (ok)
                print_summary(u);
            else
                fprintf(stderr, "airlock up: the demo session did not end its turn cleanly (see %s)\n",
                        u->worker.log_path);
            if (u->cfg.exit_after_demo)
                return ok ? 0 : -EPROTO;
        }
        if (u->cfg.no_demo && u->cfg.exit_after_demo)
            return 0;
        int r = up_wait(u, -1, 60000);
        if (r < 0 && r != -EINTR && r != -ECHILD)
            return r;
    }
}

/* The worker first, so that it finishes its tools and posts their results
 * while the hub still answers; then the key it held; then the hub, whose
 * MCP connections through the tunnel close with it, so that the gateway's
 * drain has no stream left to wait for; then the gateway (before the
 * relay: a relay going away makes gateways dial again), the relay and the
 * MCP server behind the gateway. */
static int stop_all(struct up *u)
{
    int r = 0;

    if (u->demo.pid > 0)
        (void) kill(u->demo.pid, SIGKILL);    /* only a reader of the stream */
    while (u->demo.pid > 0)
        (void) up_wait(u, -1, 1000);
    if (u->worker.pid > 0 && up_child_stop(u, &u->worker, UP_WORKER_STOP_MS) < 0)
        r = -ECHILD;
    if (u->hub.pid > 0) {
        up_demo_key_revoke(u);
        if (up_child_stop(u, &u->hub, UP_HUB_STOP_MS) < 0)
            r = -ECHILD;
    }
    if (u->gateway.pid > 0 && up_child_stop(u, &u->gateway, UP_TUNNEL_STOP_MS) < 0)
        r = -ECHILD;
    if (u->relay.pid > 0 && up_child_stop(u, &u->relay, UP_TUNNEL_STOP_MS) < 0)
        r = -ECHILD;
    if (u->mcp.pid > 0 && up_child_stop(u, &u->mcp, UP_MCP_STOP_MS) < 0)
        r = -ECHILD;
    return r;
}

static void up_free(struct up *u)
{
    if (u->sigfd >= 0)
        (void) close(u->sigfd);
    if (u->client.credential)
        explicit_bzero(u->client.credential, strlen(u->client.credential));
    if (u->env_key)
        explicit_bzero(u->env_key, strlen(u->env_key));
    free(u->client.credential);
    free(u->client.base_url);
    free(u->env_key);
    free(u->dir);
    free(u->exe);
    free(u->key_file);
    free(u->env_id);
    free(u->agent_id);
    free(u->key_id);
    free(u->session_id);
    free(u->report_path);
    free(u->workspace);
    free(u->hub.log_path);
    free(u->worker.log_path);
    up_tunnel_free(u);
    al_opts_free(up_opts, &u->cfg);
}

static int up_prepare(struct up *u)
{
    int r = mkdir_p(u->cfg.data_dir);

    if (r < 0 || !(u->dir = realpath(u->cfg.data_dir, NULL))) {
        fprintf(stderr, "airlock up: cannot create --data-dir %s: %s\n", u->cfg.data_dir,
                al_errno_name(r < 0 ? -r : errno) ?: "error");
        return -EINVAL;
    }
    u->exe = realpath("/proc/self/exe", NULL);
    if (!u->exe) {
        fprintf(stderr, "airlock up: cannot find this binary in /proc/self/exe\n");
        return -ENOENT;
    }
    u->key_file = al_xasprintf("%s/hub/api.key", u->dir);
    r = up_signals_open(u);
    if (r < 0)
        fprintf(stderr, "airlock up: cannot set up signals: %s\n", al_errno_name(-r) ?: "error");
    return r;
}

int cmd_up(int argc, char **argv)
{
    struct up u = { .sigfd = -1, .relay_hold_fd = -1, .hub = { .name = "hub", .pid = -1 },
                    .worker = { .name = "worker", .pid = -1 }, .relay = { .name = "relay", .pid = -1 },
                    .mcp = { .name = "MCP server", .pid = -1 }, .gateway = { .name = "gateway", .pid = -1 },
                    .demo = { .name = "demo timeline", .pid = -1 } };
    struct al_opts_result res = { 0 };
    int r;

    if (al_opts_load(up_opts, &u.cfg, argc, argv, &res) < 0) {
        al_opts_free(up_opts, &u.cfg);
        return 2;
    }
    free(res.args);
    if (res.help || res.nargs > 0) {
        al_opts_help(up_opts, "airlock up [OPTIONS]", up_desc);
        al_opts_free(up_opts, &u.cfg);
        return res.help ? 0 : 2;
    }
    struct sigaction ign = { .sa_handler = SIG_IGN };
    sigaction(SIGPIPE, &ign, NULL);
    r = up_prepare(&u);
    if (r >= 0)
        r = start_all(&u);
    if (r >= 0)
        r = supervise(&u);
    else if (u.stop_signals > 0)
        r = 0;                               /* interrupted while starting: not a failure */
    if (u.stop_signals > 0)
        printf("\nairlock up: stopping the worker, the hub, the gateway, the relay and the MCP server\n");
    fflush(stdout);
    int rs = stop_all(&u);
    if (r >= 0 && rs < 0)
        r = rs;
    if (r >= 0 && (u.stop_signals > 0 || u.cfg.exit_after_demo))
        printf("airlock up: stopped\n");
    up_free(&u);
    return r < 0 ? 1 : 0;
}
