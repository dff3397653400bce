/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the glob pattern parser and segment compiler
 * (src/sandbox/globpat.c, globseg.c). The input is "pattern\0name": the
 * pattern is parsed (brace expansion, split, preprocessing, each segment
 * compiled as minimatch does, extglobs included) and every segment is
 * matched against the name. Parsing must stay within its caps, a literal
 * segment must match exactly itself, and an error always has a message. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sandbox/globpat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = al_xmalloc(size + 2);
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    const char *pat = buf, *name = buf + strlen(buf) + (strlen(buf) < size ? 1 : 0);
    struct al_glob_set s = { 0 };
    char *err = NULL;
    int r = al_glob_parse(pat, &s, &err);

    CHECK(r == 0 || r == -E2BIG || (r == -EINVAL && err));
    CHECK(r == 0 || s.n == 0);
    free(err);
    if (r == 0) {
        CHECK(s.n <= AL_GLOB_MAX_PATTERNS);
        for (size_t i = 0; i < s.n; i++) {
            CHECK(s.v[i].n > 0);
            for (size_t k = 0; k < s.v[i].n; k++) {
                const struct al_glob_part *p = &s.v[i].parts[k];
                bool m = al_glob_part_match(p, name);
                if (p->kind == AL_GLOB_LITERAL)
                    CHECK(m == (strcmp(p->lit, name) == 0));
                if (p->kind == AL_GLOB_MAGIC)
                    CHECK(al_glob_re_source(p->re) != NULL);
            }
        }
        al_glob_set_done(&s);
    }
    (void) al_glob_segment_match(pat, name);
    free(buf);
    return 0;
}
