/* SPDX-License-Identifier: Apache-2.0 */
/* The per-session tool runner: `airlock sandbox-runner`, started by the
 * worker once per session with the session's socketpair end as fd 3 (see
 * frame.h for the protocol). It owns the session's persistent bash and runs
 * the file tools itself. Start-up is a fixed sequence of phases so that the
 * sandbox layers (namespaces, mounts, seccomp, Landlock, cgroups) slot in
 * between "parse" and "serve" without touching the tools:
 *   parse options -> become subreaper, die with the parent -> sandbox set-up
 *   (isolation layers; none yet) -> open the workdir -> send "ready" -> serve.
 *
 *   airlock sandbox-runner --fd 3 --workdir DIR --outputs DIR
 */
#pragma once

int al_runner_main(int argc, char **argv);
