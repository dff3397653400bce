/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the zygote's request parser (src/sandbox/zygote.c):
 * any bytes are split into argv or refused; a split never reads past the
 * message, and joining the strings back gives the message again. */
#include <string.h>

#include "fuzz.h"
#include "sandbox/zygote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[AL_ZYGOTE_MAX_ARGS + 1];
    char *msg;
    int argc;
    size_t off = 0;

    if (size > AL_ZYGOTE_MAX_MSG)
        return 0;
    msg = malloc(size ? size : 1);
    CHECK(msg);
    memcpy(msg, data, size);
    argc = al_zygote_split_args(msg, size, argv);
    if (argc < 0) {
        size_t nuls = 0;
        for (size_t i = 0; i < size; i++)
            nuls += data[i] == '\0';
        CHECK(size == 0 || data[size - 1] != '\0' || nuls > AL_ZYGOTE_MAX_ARGS);
        free(msg);
        return 0;
    }
    CHECK(argc >= 1 && argc <= AL_ZYGOTE_MAX_ARGS && argv[argc] == NULL);
    for (int i = 0; i < argc; i++) {
        size_t k = strlen(argv[i]) + 1;
        CHECK(argv[i] == msg + off && off + k <= size);
        CHECK(memcmp(argv[i], data + off, k) == 0);
        off += k;
    }
    CHECK(off == size);
    free(msg);
    return 0;
}
