/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "toolset.h"

void al_tool_result_done(struct al_tool_result *r)
{
    free(r->text);
    r->text = NULL;
    r->len = 0;
}

void al_tool_result_set(struct al_tool_result *r, bool is_error, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    r->is_error = is_error;
    r->text = s;
    r->len = (size_t) n;
}
