/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "runner.h"

int al_runner_main(int argc, char **argv)
{
    fprintf(stderr, "airlock sandbox-runner: not built yet\n");
    return 2;
}
