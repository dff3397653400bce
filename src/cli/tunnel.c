/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder until the tunnel admin verbs land (issue 5). */
#include <stdio.h>

#include "cli.h"

int cmd_tunnel(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "airlock tunnel: not built yet\n");
    return 2;
}
