/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock up`: the embedded default. For now it runs the hub on
 * 127.0.0.1:8080 with its store under ./var/hub; the worker, relay and
 * gateway join it as they are built. */
#include <stdio.h>
#include <string.h>

#include "../hub/hub.h"
#include "cli.h"

int cmd_up(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: airlock up [HUB OPTIONS]\n\n"
                   "Start the embedded default: a hub listening on 127.0.0.1:8080 with its SQLite store and\n"
                   "API key under ./var/hub. Options are those of 'airlock hub' (see airlock hub --help).\n");
            return 0;
        }
    char *args[64];
    int n = 0;
    args[n++] = "hub";
    args[n++] = "--data-dir";
    args[n++] = "./var/hub";
    for (int i = 1; i < argc && n < 63; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    fprintf(stderr, "airlock up: hub on 127.0.0.1:8080 (store and API key in ./var/hub); Ctrl-C stops it\n");
    return hub_main(n, args);
}
