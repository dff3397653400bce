/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock tunnel`: the Tunnels API's admin verbs (tunnels, their connector
 * token, their CA certificates), one verb table run by admin.c's machinery.
 * Like the other admin verbs they talk to the hub over HTTP only. Single
 * threaded; the process exits after one verb. */
#include <string.h>

#include "../lib/base/util.h"
#include "cli-internal.h"
#include "cli.h"

#define TUNNEL_CERT_FILE_MAX 8192     /* the API's limit; larger files are refused here already */

static int body_tunnel_create(struct admin *a, json_t **ret)
{
    json_t *b = json_object();
    if (a->cfg.name && json_object_set_new(b, "name", json_string(a->cfg.name)) < 0) {
        json_decref(b);
        fprintf(stderr, "error: --name must be valid UTF-8\n");
        return -EILSEQ;
    }
    *ret = b;
    return 0;
}

/* The certificate is sent as read; the hub checks it (one certificate,
 * no key) and answers with the reason when it is refused. */
static int body_cert_add(struct admin *a, json_t **ret)
{
    _cleanup_free_ char *pem = NULL;
    size_t len;
    int r = cli_read_input(a->args[1], &pem, &len);

    if (r < 0)
        return r;
    if (len > TUNNEL_CERT_FILE_MAX) {
        fprintf(stderr, "error: %s: %zu bytes; a certificate PEM may have at most %d\n", a->args[1], len,
                TUNNEL_CERT_FILE_MAX);
        return -EFBIG;
    }
    json_t *b = json_pack("{s:s%}", "ca_certificate_pem", pem, len);
    if (!b) {
        fprintf(stderr, "error: %s: not a text file (PEM is ASCII)\n", a->args[1]);
        return -EILSEQ;
    }
    *ret = b;
    return 0;
}

#define O CLI_OPT
static const struct al_opt opts_common[] = { OPTS_COMMON, { 0 } };
static const struct al_opt opts_create[] = {
    OPTS_COMMON,
    O("name", AL_OPT_STR, name, NULL, "NAME", "a display name (1 to 255 characters)"),
    { 0 },
};
static const struct al_opt opts_list[] = {
    OPTS_COMMON,
    O("include-archived", AL_OPT_BOOL, include_archived, NULL, NULL, "list archived ones too"),
    { 0 },
};
#undef O

static const char *const f_tunnel[] = { "id", "hostname", "name", "active_certificates", "archived_at", NULL };
static const char *const f_cert[] = { "id", "fingerprint_sha256", "subject", "not_after", "archived_at", NULL };

static const struct verb tunnel_verbs[] = {
    { "create", "", 0, 0, opts_create, "create a tunnel with a fresh hostname; prints its id", "POST", "/v1/tunnels",
      body_tunnel_create, OUT_ID, f_tunnel, NULL },
    { "list", "", 0, 0, opts_list, "list tunnels, newest first", "GET", "/v1/tunnels", NULL, OUT_LIST, f_tunnel,
      NULL },
    { "get", "TUNNEL_ID", 1, 1, opts_common, "show a tunnel", "GET", "/v1/tunnels/{}", NULL, OUT_ROW, f_tunnel,
      NULL },
    { "archive", "TUNNEL_ID", 1, 1, opts_common,
      "archive a tunnel for good: its certificates are archived, its token stops working, its hostname is "
      "never reused",
      "POST", "/v1/tunnels/{}/archive", NULL, OUT_ROW, f_tunnel, NULL },
    { "token reveal", "TUNNEL_ID", 1, 1, opts_common,
      "print the tunnel's connector token (the same until rotated) for the gateway's --token-file", "POST",
      "/v1/tunnels/{}/reveal_token", NULL, OUT_TOKEN, NULL, NULL },
    { "token rotate", "TUNNEL_ID", 1, 1, opts_common,
      "replace the connector token and print the new one; the old one stops verifying at once", "POST",
      "/v1/tunnels/{}/rotate_token", NULL, OUT_TOKEN, NULL, NULL },
    { "cert add", "TUNNEL_ID FILE", 2, 2, opts_common,
      "register a CA certificate (a PEM file with exactly one certificate, at most 8 KiB; FILE \"-\" reads "
      "stdin); at most two are active",
      "POST", "/v1/tunnels/{}/certificates", body_cert_add, OUT_ROW, f_cert, NULL },
    { "cert list", "TUNNEL_ID", 1, 1, opts_list, "list a tunnel's CA certificates, newest first", "GET",
      "/v1/tunnels/{}/certificates", NULL, OUT_LIST, f_cert, NULL },
    { "cert get", "TUNNEL_ID CERT_ID", 2, 2, opts_common, "show a CA certificate", "GET",
      "/v1/tunnels/{}/certificates/{}", NULL, OUT_ROW, f_cert, NULL },
    { "cert archive", "TUNNEL_ID CERT_ID", 2, 2, opts_common, "take a CA certificate out of the trusted set",
      "POST", "/v1/tunnels/{}/certificates/{}/archive", NULL, OUT_ROW, f_cert, NULL },
    { 0 },
};

int cmd_tunnel(int argc, char **argv)
{
    static const struct command c = {
        "tunnel", "Manage MCP tunnels: their hostnames, connector tokens and CA certificates.", tunnel_verbs
    };
    return cli_command_run(&c, argc, argv);
}
