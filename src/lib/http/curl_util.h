/* SPDX-License-Identifier: Apache-2.0 */
/* What the two libcurl users (client.c, blocking; curl_ev.c, on the loop)
 * share: one-time global initialisation and the mapping of libcurl's
 * result codes to -errno. Internal to src/lib/http/. */
#pragma once

#include <curl/curl.h>

/* curl_global_init, once per process; 0 or the -errno of its failure. */
int al_curl_global_init(void);
int al_curl_errno(CURLcode rc);
