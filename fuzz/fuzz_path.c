/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the lexical path normaliser and the JSON quoting of
 * src/sandbox/path.c (included). al_path_resolve must return an absolute
 * path with no ".", ".." or empty components, be idempotent, and keep
 * the root for paths that never climb. */
#include <string.h>

#include "fuzz.h"
#include "sandbox/path.c"
#include "sandbox/toolset.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *p = al_xstrndup((const char *) data, size);
    char *r = al_path_resolve("/root/w", p);

    CHECK(r[0] == '/');
    CHECK(strcmp(r, "/") == 0 || r[strlen(r) - 1] != '/');
    CHECK(strstr(r, "//") == NULL && strstr(r, "/./") == NULL && strstr(r, "/../") == NULL);
    char *again = al_path_resolve("/", r);
    CHECK(strcmp(again, r) == 0);
    if (p[0] != '/' && !strstr(p, ".."))
        CHECK(al_path_within("/root/w", r));
    char *q = al_js_quote(p);
    CHECK(q[0] == '"' && q[strlen(q) - 1] == '"');
    free(q);
    free(again);
    free(r);
    free(p);
    return 0;
}
