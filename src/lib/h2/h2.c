/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder until the HTTP/2 glue lands (issue 5). */
#include <nghttp2/nghttp2.h>

const char *al_h2_version(void);
const char *al_h2_version(void)
{
    return nghttp2_version(0)->version_str;
}
