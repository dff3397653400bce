/* SPDX-License-Identifier: Apache-2.0 */
/* Subcommands of the airlock binary. Each takes argc/argv with argv[0] the
 * subcommand's own name and returns a process exit code. Admin verbs talk
 * to the hub's HTTP API like any client (base URL from --url /
 * AIRLOCK_URL, credential from --api-key / AIRLOCK_API_KEY or the hub's
 * data-dir key file). */
#pragma once

int cmd_hub(int argc, char **argv);
int cmd_up(int argc, char **argv);
int cmd_mcp_demo_server(int argc, char **argv);   /* internal: up's private MCP server (mcp_demo.c) */
int cmd_env(int argc, char **argv);       /* env create|list|get|archive|delete, env key create|list|revoke */
int cmd_agent(int argc, char **argv);     /* agent create|list|get */
int cmd_session(int argc, char **argv);   /* session create|list|get|send|tail */
int cmd_work(int argc, char **argv);      /* work list|stats|stop|healthcheck */
int cmd_skill(int argc, char **argv);     /* skill create|list */
int cmd_tunnel(int argc, char **argv);    /* tunnel create|list|get|archive|token|cert ... */
