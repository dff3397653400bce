/* SPDX-License-Identifier: Apache-2.0 */
/* Blocking calls to the hub's API for the CLI: each prints its own error
 * (the API's error body, or the transport failure) and returns < 0, so that
 * callers only pass the code on. */
#include <string.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "cli-internal.h"

#define CLI_MAX_PAGES 10000

void cli_print_api_error(const struct al_response *resp)
{
    json_t *e = json_object_get(resp->json, "error");
    const char *type = cli_json_str(e, "type"), *msg = cli_json_str(e, "message");

    if (type || msg) {
        fprintf(stderr, "error: ");
        cli_put_str(stderr, type ?: "error");
        fprintf(stderr, ": ");
        cli_put_str(stderr, msg ?: "");
    } else {
        fprintf(stderr, "error: HTTP %ld: ", resp->status);
        cli_put_clean(stderr, resp->body, strcspn(resp->body, "\r\n"), 200);
    }
    fputc('\n', stderr);
}

static int print_transport_error(const struct al_client *c, const char *method, const char *path, int r)
{
    const char *name = al_errno_name(-r);

    fprintf(stderr, "error: %s %s%s: %s\n", method, c->base_url, path,
            r == -EMSGSIZE ? "response too large" :
            r == -ECONNREFUSED ? "connection refused (is the hub running? see --url)" :
            name ? name : "request failed");
    return r;
}

int cli_api_finish(const struct al_client *c, const char *method, const char *path, int r,
                   struct al_response *resp, json_t **ret)
{
    if (r < 0)
        return print_transport_error(c, method, path, r);
    if (resp->status < 200 || resp->status >= 300) {
        cli_print_api_error(resp);
        al_response_done(resp);
        return -EPROTO;
    }
    *ret = resp->json ? json_incref(resp->json) : json_null();
    al_response_done(resp);
    return 0;
}

int cli_api_call(const struct al_client *c, const char *method, const char *path, json_t *body, json_t **ret)
{
    struct al_response resp;
    int r = al_client_request(c, method, path, body, &resp);
    return cli_api_finish(c, method, path, r, &resp, ret);
}

int cli_api_list_all(const struct al_client *c, const char *path, json_t **ret)
{
    _cleanup_json_ json_t *all = json_array();
    _cleanup_free_ char *cursor = NULL;

    for (int page = 0; page < CLI_MAX_PAGES; page++) {
        _cleanup_free_ char *esc = cursor ? al_client_escape(cursor) : NULL;
        _cleanup_free_ char *p = esc ? al_xasprintf("%s%cpage=%s", path, strchr(path, '?') ? '&' : '?', esc)
                                     : al_xstrdup(path);
        _cleanup_json_ json_t *res = NULL;
        int r = cli_api_call(c, "GET", p, NULL, &res);
        if (r < 0)
            return r;
        json_t *data = json_object_get(res, "data");
        if (!json_is_array(data)) {
            fprintf(stderr, "error: GET %s: the answer has no \"data\" array\n", path);
            return -EBADMSG;
        }
        json_array_extend(all, data);
        const char *next = cli_json_str(res, "next_page");
        if (!next || !*next || (cursor && strcmp(next, cursor) == 0))
            break;
        free(cursor);
        cursor = al_xstrdup(next);
    }
    *ret = json_pack("{s:O,s:n}", "data", all, "next_page");
    return 0;
}
