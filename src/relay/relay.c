/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder until the relay lands (issue 5). */
#include <stdio.h>

#include "relay.h"

int al_relay_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "airlock relay: not built yet\n");
    return 2;
}
