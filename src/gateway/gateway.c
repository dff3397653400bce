/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder until the gateway lands (issue 5). */
#include <stdio.h>

#include "gateway.h"

int al_gateway_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "airlock gateway: not built yet\n");
    return 2;
}
