/* SPDX-License-Identifier: Apache-2.0 */
/* airlock-sandbox-runner: the per-session runner as a program of its own,
 * linked only against what the runner uses (libc, jansson, libseccomp,
 * PCRE2, libarchive), so a session's start does not load the hub's and the
 * worker's libraries. `airlock sandbox-runner` is the same code. */
#include "runner.h"

int main(int argc, char **argv)
{
    return al_runner_main(argc, argv);
}
