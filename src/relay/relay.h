/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock relay`: the public edge of the MCP tunnels (docs/internals/TUNNEL.md). */
#pragma once

int al_relay_main(int argc, char **argv);
