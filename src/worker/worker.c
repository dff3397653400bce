/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "worker.h"

int al_worker_main(int argc, char **argv)
{
    fprintf(stderr, "airlock worker: not built yet\n");
    return 2;
}
