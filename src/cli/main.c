/* SPDX-License-Identifier: Apache-2.0 */
/* The airlock binary: one table of subcommands. */
#include <stdio.h>
#include <string.h>

#include "../gateway/gateway.h"
#include "../hub/hub.h"
#include "../relay/relay.h"
#include "../sandbox/runner.h"
#include "../worker/worker.h"
#include "cli.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    { "hub", cmd_hub, "run the control plane (API, work queue, sessions, agent loop) on SQLite" },
    { "worker", al_worker_main, "serve sessions' tool calls from an environment's work queue (also: worker run)" },
    { "sandbox-runner", al_runner_main, "internal: the per-session tool runner the worker starts" },
    { "mcp-demo-server", cmd_mcp_demo_server, "internal: the small private MCP server `airlock up` runs" },
    { "up", cmd_up, "start the embedded default: a hub and a worker under ./var, and a demo session" },
    { "env", cmd_env, "environments and environment keys: create, list, get, archive, delete, key ..." },
    { "agent", cmd_agent, "agents: create, list, get" },
    { "session", cmd_session, "sessions: create, list, get, send, confirm, tail" },
    { "work", cmd_work, "the work queue of an environment: list, stats, stop, healthcheck" },
    { "skill", cmd_skill, "skills: create from a zip or tar archive, list" },
    { "tunnel", cmd_tunnel, "MCP tunnels: create, list, get, archive, token, cert ..." },
    { "relay", al_relay_main, "run the public edge of the MCP tunnels (SNI routing, never decrypts)" },
    { "gateway", al_gateway_main, "run the private side of an MCP tunnel (dials the relay, inner TLS, audit)" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: airlock COMMAND [ARGS...]\n\n"
               "airlock runs AI agents' tool execution inside your own perimeter.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'airlock COMMAND --help' for a command's options.\n");
}

int cmd_hub(int argc, char **argv)
{
    return hub_main(argc, argv);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "airlock: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
