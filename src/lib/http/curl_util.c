/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>

#include "curl_util.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int al_curl_global_init(void)
{
    pthread_once(&global_once, global_init);
    return al_curl_errno(global_rc);
}

int al_curl_errno(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:                   return 0;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:        return -EINVAL;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST: return -EHOSTUNREACH;
    case CURLE_COULDNT_CONNECT:      return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:   return -ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:        return -ENOMEM;
    case CURLE_FILESIZE_EXCEEDED:    return -EMSGSIZE;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:         return -ECONNRESET;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:   return -EPROTO;
    default:                         return -EIO;
    }
}
