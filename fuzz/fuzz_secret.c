/* SPDX-License-Identifier: Apache-2.0 */
/* The work item secret decoder (spec §1.5) on arbitrary input. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "worker/wk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    char *tok;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    tok = wk_secret_sessions_token(s);
    if (tok && (!*tok || strchr(tok, '\n')))
        abort();
    free(tok);
    free(s);
    return 0;
}
