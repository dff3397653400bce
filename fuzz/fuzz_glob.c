/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the glob pattern parser and segment matcher
 * (src/sandbox/globpat.c, included so the target needs only al_core). The
 * input is "pattern\0name": the pattern is parsed (brace expansion, split,
 * preprocessing) and every segment is matched against the name. Parsing
 * must stay within its caps, and a literal segment must match exactly
 * itself. */
#include <string.h>

#include "fuzz.h"
#include "sandbox/globpat.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = al_xmalloc(size + 2);
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    const char *pat = buf, *name = buf + strlen(buf) + (strlen(buf) < size ? 1 : 0);
    struct al_glob_set s = { 0 };

    if (al_glob_parse(pat, &s) == 0) {
        CHECK(s.n <= AL_GLOB_MAX_PATTERNS);
        for (size_t i = 0; i < s.n; i++) {
            CHECK(s.v[i].n > 0);
            for (size_t k = 0; k < s.v[i].n; k++) {
                const struct al_glob_part *p = &s.v[i].parts[k];
                bool m = al_glob_segment_match(p->text, name);
                if (p->kind == AL_GLOB_LITERAL && p->text[0] != '.')
                    CHECK(m == (strcmp(p->text, name) == 0));
            }
        }
        al_glob_set_done(&s);
    }
    (void) al_glob_segment_match(pat, name);
    free(buf);
    return 0;
}
