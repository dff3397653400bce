/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock worker`: the environment worker (spec §8). */
#pragma once

int al_worker_main(int argc, char **argv);
