/* SPDX-License-Identifier: Apache-2.0 */
/* The libFuzzer entry point every fuzz/fuzz_<t>.c defines, and CHECK(): an
 * invariant that aborts (so libFuzzer and the replay runner report it) in
 * every build type, unlike assert(). Test code only. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                              \
    do {                                                                      \
        if (!(x)) {                                                           \
            (void) fprintf(stderr, "%s:%d: invariant failed: %s\n",           \
                           __FILE__, __LINE__, #x);                           \
            abort();                                                          \
        }                                                                     \
    } while (0)
