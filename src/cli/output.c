/* SPDX-License-Identifier: Apache-2.0 */
/* Terminal output of API data for the CLI: text from the hub or the model is
 * printed with control characters replaced and long values cut. Used by the
 * admin verbs and `airlock up`; stdio only. */
#include <stdint.h>
#include <string.h>

#include "../lib/base/util.h"
#include "cli-internal.h"

/* Writes s[0..n) with control characters replaced, so that text from the
 * hub or the model cannot drive the terminal; stops at max bytes (on a UTF-8
 * boundary) and marks the cut. */
void cli_put_clean(FILE *f, const char *s, size_t n, size_t max)
{
    size_t end = AL_MIN(n, max);

    while (end < n && end > 0 && ((unsigned char) s[end] & 0xC0) == 0x80)
        end--;
    for (size_t i = 0; i < end; i++) {
        unsigned char ch = (unsigned char) s[i];
        if (ch == 0xC2 && i + 1 < end && ((unsigned char) s[i + 1] & 0xE0) == 0x80) {
            ch = ' ';                 /* U+0080..U+009F: C1 controls such as CSI */
            i++;
        }
        fputc(ch < 0x20 || ch == 0x7f ? ' ' : ch, f);
    }
    if (end < n)
        fputs("…", f);
}

void cli_put_str(FILE *f, const char *s) { cli_put_clean(f, s, strlen(s), SIZE_MAX); }

void cli_put_value(json_t *v, size_t max)
{
    if (json_is_string(v)) {
        cli_put_clean(stdout, json_string_value(v), json_string_length(v), max);
        return;
    }
    _cleanup_free_ char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s)
        cli_put_clean(stdout, s, strlen(s), max);
}

/* Looks up a dotted path ("config.type") in an object; NULL if absent. */
json_t *cli_json_path(json_t *j, const char *path)
{
    char key[64];

    while (j && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        j = json_object_get(j, key);
        path += n + (path[n] == '.');
    }
    return j;
}

const char *cli_json_str(json_t *j, const char *path)
{
    return json_string_value(cli_json_path(j, path));
}

/* The first field bare, the rest as name=value; absent and null ones skipped. */
void cli_put_fields(json_t *obj, const char *const *fields, size_t max)
{
    for (size_t i = 0; fields[i]; i++) {
        json_t *v = cli_json_path(obj, fields[i]);
        if (!v || json_is_null(v))
            continue;
        if (i > 0)
            printf("  %s=", fields[i]);
        if (json_is_string(json_object_get(v, "id")))
            v = json_object_get(v, "id");     /* {"type":"agent","id":...} reads as its id */
        cli_put_value(v, max);
    }
}
