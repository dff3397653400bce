/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock up` internals shared by up.c (options and the supervisor's
 * sequence), up_proc.c (child processes, signals, logs), up_demo.c (the
 * API objects and the demo session) and up_tunnel.c (the MCP tunnel: PKI,
 * the tunnel's API objects, the relay, the demo MCP server and the
 * gateway). One thread; signals arrive on a signalfd, never as handlers. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "../lib/http/client.h"

struct up_cfg {
    char *listen;            /* the hub's --listen */
    char *data_dir;          /* as given; hub/, worker/ and the logs go under it */
    bool no_demo, exit_after_demo;
};

/* A child process. pid is -1 when it is not running; status is its wait
 * status once reaped (exited is then true). */
struct up_child {
    const char *name;        /* "hub", "worker", "relay", "gateway", "MCP server", "demo timeline" */
    pid_t pid;
    bool exited;
    int status;
    char *log_path;          /* owned; NULL: the child writes to our stdout/stderr */
    off_t log_start;         /* the log's size when this run started it */
};

struct up {
    struct up_cfg cfg;
    char *dir;               /* absolute data dir */
    char *exe;               /* this binary, for the children */
    int sigfd;               /* SIGINT, SIGTERM, SIGCHLD */
    int stop_signals;        /* SIGINT/SIGTERM received so far */
    struct up_child hub, worker, relay, mcp, gateway, demo;
    struct al_client client; /* base_url: the hub's; credential: its API key */
    char *key_file;          /* DIR/hub/api.key */
    char *env_id, *agent_id, *key_id, *session_id, *report_path, *workspace;
    char *env_key;           /* secret: only until the worker has it */
    /* The tunnel (up_tunnel.c). */
    int relay_hold_fd;       /* keeps the relay's client port ours until the relay listens on it */
    char *relay_client;      /* "127.0.0.1:PORT": the relay's client listener (the hub's --tunnel-relay) */
    char *relay_gateway;     /* the relay's gateway listener, from its ready line */
    char *mcp_url;           /* the demo MCP server's base URL (the gateway's route) */
    char *tunnel_dir;        /* DIR/tunnel: PKI, token, audit key */
    char *tunnel_id, *tunnel_host;
    char *mcp_server_url;    /* https://tickets.<tunnel host>/mcp */
    char *audit_path;        /* DIR/gateway-audit.jsonl */
    off_t audit_start;       /* its size when this run started the gateway */
};

#define UP_TUNNEL_DOMAIN "tunnels.localhost"
#define UP_MCP_SERVER    "tickets"          /* the agent's MCP server name and the gateway's route */

/* ---- up_proc.c ---------------------------------------------------------- */

/* Blocks SIGINT, SIGTERM and SIGCHLD and opens u->sigfd for them. */
_must_check_ int up_signals_open(struct up *u);
/* Starts `airlock ARGV` (u->exe; argv[0] is "airlock") with envp in a
 * process group of its own that gets SIGTERM if we die. Its stdout and
 * stderr are appended to c->log_path, its stdin is /dev/null. With
 * ret_ready, fd 3 of the child is a pipe whose read end *ret_ready gets
 * (the child's --ready-fd). */
_must_check_ int up_child_spawn(struct up *u, struct up_child *c, char *const argv[], char *const envp[],
                                int *ret_ready);
/* Runs fn(u) in a forked child (same process group, our stdout) that
 * _exits with fn's value. */
_must_check_ int up_child_fork(struct up *u, struct up_child *c, int (*fn)(struct up *u));
/* Waits up to timeout_ms for fd (or -1 for none) to be readable. Returns 1
 * when it is, 0 on timeout, -EINTR when SIGINT/SIGTERM arrived, -ECHILD when
 * one of our children exited (see their exited fields). */
int up_wait(struct up *u, int fd, int64_t timeout_ms);
/* Reads a child's --ready-fd line (the URL) into a new string; NULL if the
 * child exited or timed out first. Takes and closes fd. */
char *up_read_ready(struct up *u, struct up_child *c, int fd, int64_t timeout_ms);
/* SIGTERM, wait up to timeout_ms (another stop signal is passed on as a
 * second SIGTERM), then SIGKILL. Returns 0 if it exited 0 or was not
 * running, -ECHILD otherwise (the reason printed). */
int up_child_stop(struct up *u, struct up_child *c, int64_t timeout_ms);
/* Whether a child's status means a clean exit; prints why not. */
bool up_child_ok(const struct up_child *c);
/* Prints the last lines this run wrote to a child's log on stderr. */
void up_child_log_tail(const struct up_child *c, int lines);
/* Whether this run's part of the log contains s. */
bool up_child_log_has(const struct up_child *c, const char *s);
/* environ without AIRLOCK_* and ANTHROPIC_*, plus extra (NULL-terminated;
 * borrowed). The array is owned by the caller, its strings are not. */
char **up_child_env(char *const extra[]);

/* ---- up_demo.c ---------------------------------------------------------- */

/* The first element of GET path's list (all pages) whose name is name, that
 * is not archived and for which match (may be NULL) holds; a new reference
 * in *ret, NULL when there is none. */
_must_check_ int up_find_named(struct up *u, const char *path, const char *name, bool (*match)(json_t *o),
                               json_t **ret);

/* Finds or creates the self_hosted environment "airlock-up" and the agent
 * "airlock-up-demo" (its tools and mcp_servers brought up to date: the
 * tunnel's MCP server u->mcp_server_url), then creates a fresh environment
 * key (u->env_key). */
_must_check_ int up_demo_objects(struct up *u);
/* Revokes the key made by up_demo_objects (shutdown, hub still running). */
void up_demo_key_revoke(struct up *u);
/* Creates the demo session and sends its message (u->session_id, paths). */
_must_check_ int up_demo_session(struct up *u);
/* The demo child's body: the timeline until the turn ends (0 on end_turn). */
int up_demo_follow(struct up *u);

/* ---- up_tunnel.c -------------------------------------------------------- */

/* Before the hub starts: picks the relay's client address (a free loopback
 * port, held bound until the relay listens on it) so that the hub can be
 * told where the relay is. */
_must_check_ int up_tunnel_reserve(struct up *u);
/* With the hub up: the tunnel "airlock-up" (found or created), the PKI
 * under DIR/tunnel (kept while valid), the operator CA registered on the
 * tunnel, the connector token in DIR/tunnel/token (0600). */
_must_check_ int up_tunnel_setup(struct up *u);
/* Starts the relay, the demo MCP server and the gateway, each once ready. */
_must_check_ int up_tunnel_start(struct up *u);
/* Prints the summary's tunnel lines: the MCP server's URL, the audit log
 * and the last tools/call line this run's gateway wrote (waiting briefly
 * for it, as the gateway writes audit lines from a thread). */
void up_tunnel_summary(struct up *u);
void up_tunnel_free(struct up *u);
