/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock gateway`: the private side of the MCP tunnels (docs/internals/TUNNEL.md). */
#pragma once

int al_gateway_main(int argc, char **argv);
