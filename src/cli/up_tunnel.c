/* SPDX-License-Identifier: Apache-2.0 */
/* `airlock up`'s MCP tunnel: a test PKI under DIR/tunnel (a relay CA and
 * the relay's certificate, an operator CA and the inner certificate for
 * *.<tunnel hostname>; kept across runs while valid), the tunnel
 * "airlock-up" with the operator CA registered and its connector token in
 * a 0600 file, and three more children: the relay, the demo MCP server and
 * the gateway that routes "tickets" to it. The hub reaches the MCP server
 * through the relay's client listener, verifying the gateway's inner
 * certificate against the registered CA. Blocking; the parent only. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "../lib/tls/pki.h"
#include "../lib/tls/x509.h"
#include "cli-internal.h"
#include "up-internal.h"

#define UP_TUNNEL_NAME     "airlock-up"
#define UP_CA_DAYS         3650
#define UP_LEAF_DAYS       825
#define UP_PKI_MIN_LEFT_S  (7 * 86400)    /* renew what expires within a week */
#define UP_READY_MS        60000          /* a daemon under ASan on a slow machine */
#define UP_AUDIT_WAIT_MS   3000           /* the gateway writes audit lines from a thread */
#define UP_AUDIT_READ_MAX  (1u << 20)     /* bytes of the audit log read back */
#define UP_GATEWAY_CONNS   "2"

static char *tpath(const struct up *u, const char *name)
{
    return al_xasprintf("%s/%s", u->tunnel_dir, name);
}

int up_tunnel_reserve(struct up *u)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    int one = 1;
    _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    /* Bound with SO_REUSEADDR but not listening: nobody else gets the port,
     * while the relay (which binds with SO_REUSEADDR too) still can. */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || getsockname(fd, (struct sockaddr *) &sa, &sl) < 0) {
        int r = -errno;
        fprintf(stderr, "airlock up: cannot pick a loopback port for the relay: %s\n", al_errno_name(-r) ?: "error");
        return r;
    }
    u->relay_client = al_xasprintf("127.0.0.1:%u", (unsigned) ntohs(sa.sin_port));
    u->relay_hold_fd = TAKE_FD(fd);
    return 0;
}

/* ---- PKI ------------------------------------------------------------------ */

/* Keeps DIR/tunnel/<ca>.pem and <leaf>.pem with their keys while they are
 * valid (the leaf for exactly names); makes what is missing or unusable. */
static int pki_pair(struct up *u, const char *ca, const char *cn, const char *leaf, const char *const names[],
                    bool *made)
{
    _cleanup_free_ char *ca_pem = al_xasprintf("%s/%s.pem", u->tunnel_dir, ca);
    _cleanup_free_ char *ca_key = al_xasprintf("%s/%s.key", u->tunnel_dir, ca);
    _cleanup_free_ char *pem = al_xasprintf("%s/%s.pem", u->tunnel_dir, leaf);
    _cleanup_free_ char *key = al_xasprintf("%s/%s.key", u->tunnel_dir, leaf);
    bool new_ca = false;
    int r = al_pki_check_ca(ca_pem, ca_key, UP_PKI_MIN_LEFT_S);

    if (r < 0) {
        r = al_pki_make_ca(cn, UP_CA_DAYS, ca_pem, ca_key);
        if (r < 0) {
            fprintf(stderr, "airlock up: cannot make %s: %s\n", ca_pem, al_errno_name(-r) ?: "error");
            return r;
        }
        new_ca = *made = true;
    }
    r = new_ca ? -ENOENT : al_pki_check_leaf(ca_pem, pem, key, names, UP_PKI_MIN_LEFT_S);
    if (r < 0) {
        r = al_pki_make_leaf(ca_pem, ca_key, names, UP_LEAF_DAYS, pem, key);
        if (r < 0) {
            fprintf(stderr, "airlock up: cannot make %s: %s\n", pem, al_errno_name(-r) ?: "error");
            return r;
        }
        *made = true;
    }
    return 0;
}

/* ---- the tunnel's API objects ------------------------------------------ */

static bool in_up_domain(json_t *t)
{
    const char *h = cli_json_str(t, "hostname");
    size_t n = h ? strlen(h) : 0, d = strlen("." UP_TUNNEL_DOMAIN);
    return n > d && !strcmp(h + n - d, "." UP_TUNNEL_DOMAIN);
}

static int tunnel_ensure(struct up *u)
{
    _cleanup_json_ json_t *found = NULL, *made = NULL;
    int r = up_find_named(u, "/v1/tunnels", UP_TUNNEL_NAME, in_up_domain, &found);

    if (r < 0)
        return r;
    if (!found) {
        _cleanup_json_ json_t *body = json_pack("{s:s,s:{s:s}}", "name", UP_TUNNEL_NAME, "metadata", "created_by",
                                                "airlock up");
        r = cli_api_call(&u->client, "POST", "/v1/tunnels", body, &made);
        if (r < 0)
            return r;
    }
    json_t *t = found ? found : made;
    const char *id = cli_json_str(t, "id"), *host = cli_json_str(t, "hostname");
    if (!id || !host || !in_up_domain(t)) {
        fprintf(stderr, "airlock up: the hub's tunnel has no id or no hostname under %s\n", UP_TUNNEL_DOMAIN);
        return -EBADMSG;
    }
    u->tunnel_id = al_xstrdup(id);
    u->tunnel_host = al_xstrdup(host);
    return 0;
}

static int read_small(const char *path, char *buf, size_t cap, size_t *ret_n)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t n = 0;

    if (fd < 0)
        return -errno;
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break;
        n += (size_t) k;
        if (n == cap)
            return -EMSGSIZE;
    }
    *ret_n = n;
    return 0;
}

/* The operator CA is the tunnel's one active certificate: registered if it
 * is not, and any other active one (a CA from an earlier DIR/tunnel whose
 * key is gone) archived, so that the hub trusts nothing else. */
static int tunnel_ca(struct up *u)
{
    _cleanup_free_ char *ca = tpath(u, "operator-ca.pem");
    _cleanup_free_ char *tid = al_client_escape(u->tunnel_id);
    _cleanup_free_ char *path = al_xasprintf("/v1/tunnels/%s/certificates", tid);
    _cleanup_json_ json_t *list = NULL;
    char pem[AL_X509_PEM_MAX + 1];
    struct al_x509_info info;
    bool have = false;
    size_t n = 0, i;
    json_t *c;

    int r = read_small(ca, pem, sizeof(pem) - 1, &n);
    if (r < 0 || (r = al_x509_pem_one(pem, n, &info)) < 0) {
        fprintf(stderr, "airlock up: cannot read %s: %s\n", ca, al_errno_name(-r) ?: "error");
        return r;
    }
    pem[n] = '\0';
    r = cli_api_list_all(&u->client, path, &list);
    if (r < 0)
        return r;
    json_array_foreach(json_object_get(list, "data"), i, c) {
        const char *fp = cli_json_str(c, "fingerprint_sha256"), *cid = cli_json_str(c, "id");
        if (json_is_string(json_object_get(c, "archived_at")) || !cid)
            continue;
        if (fp && !strcmp(fp, info.fingerprint_sha256)) {
            have = true;
            continue;
        }
        _cleanup_free_ char *esc = al_client_escape(cid);
        _cleanup_free_ char *apath = al_xasprintf("%s/%s/archive", path, esc);
        _cleanup_json_ json_t *res = NULL;
        r = cli_api_call(&u->client, "POST", apath, NULL, &res);
        if (r < 0)
            return r;
        printf("airlock up: archived the tunnel's CA certificate %s (not the one in %s)\n", cid, ca);
    }
    if (have)
        return 0;
    _cleanup_json_ json_t *body = json_pack("{s:s}", "ca_certificate_pem", pem), *res = NULL;
    return cli_api_call(&u->client, "POST", path, body, &res);
}

static int tunnel_token(struct up *u)
{
    _cleanup_free_ char *file = tpath(u, "token");
    _cleanup_free_ char *tid = al_client_escape(u->tunnel_id);
    _cleanup_free_ char *path = al_xasprintf("/v1/tunnels/%s/reveal_token", tid);
    _cleanup_json_ json_t *res = NULL;
    int r = cli_api_call(&u->client, "POST", path, NULL, &res);

    if (r < 0)
        return r;
    const char *tok = cli_json_str(res, "token");
    if (!tok) {
        fprintf(stderr, "airlock up: the hub's answer to POST %s has no token\n", path);
        return -EBADMSG;
    }
    _cleanup_free_ char *line = al_xasprintf("%s\n", tok);
    r = al_file_replace(file, line, strlen(line), 0600);
    explicit_bzero(line, strlen(line));
    explicit_bzero((char *) tok, strlen(tok));
    if (r < 0)
        fprintf(stderr, "airlock up: cannot write %s: %s\n", file, al_errno_name(-r) ?: "error");
    return r;
}

/* A stable HMAC key for the audit log's argument digests, so that lines
 * of different runs can be compared. */
static int audit_key(struct up *u)
{
    _cleanup_free_ char *file = tpath(u, "audit.key");
    unsigned char raw[32];
    char hex[2 * sizeof(raw) + 2];

    if (access(file, F_OK) == 0)
        return 0;
    al_random(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++)
        (void) snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[2 * sizeof(raw)] = '\n';
    hex[2 * sizeof(raw) + 1] = '\0';
    int r = al_file_replace(file, hex, strlen(hex), 0600);
    explicit_bzero(raw, sizeof(raw));
    explicit_bzero(hex, sizeof(hex));
    return r;
}

int up_tunnel_setup(struct up *u)
{
    bool made = false;
    int r;

    u->tunnel_dir = al_xasprintf("%s/tunnel", u->dir);
    u->audit_path = al_xasprintf("%s/gateway-audit.jsonl", u->dir);
    if (mkdir(u->tunnel_dir, 0700) < 0 && errno != EEXIST) {
        r = -errno;
        fprintf(stderr, "airlock up: cannot create %s: %s\n", u->tunnel_dir, al_errno_name(-r) ?: "error");
        return r;
    }
    r = tunnel_ensure(u);
    if (r < 0)
        return r;
    _cleanup_free_ char *wild = al_xasprintf("*.%s", u->tunnel_host);
    const char *const relay_names[] = { "127.0.0.1", "localhost", NULL };
    const char *const inner_names[] = { wild, u->tunnel_host, NULL };
    r = pki_pair(u, "relay-ca", "airlock up relay CA", "relay", relay_names, &made);
    if (r >= 0)
        r = pki_pair(u, "operator-ca", "airlock up operator CA", "inner", inner_names, &made);
    if (r >= 0)
        r = tunnel_ca(u);
    if (r >= 0)
        r = tunnel_token(u);
    if (r >= 0 && (r = audit_key(u)) < 0)
        fprintf(stderr, "airlock up: cannot write the audit key: %s\n", al_errno_name(-r) ?: "error");
    if (r < 0)
        return r;
    u->mcp_server_url = al_xasprintf("https://%s.%s/mcp", UP_MCP_SERVER, u->tunnel_host);
    printf("airlock up: tunnel %s (%s), certificates and token under %s (%s)\n", u->tunnel_id, u->tunnel_host,
           u->tunnel_dir, made ? "made" : "kept from an earlier run");
    return 0;
}

/* ---- children ----------------------------------------------------------- */

/* Starts `airlock ARGV` as c with its log in DIR/<log>, and waits for its
 * ready line (a new string, or NULL after printing why). */
static char *spawn_ready(struct up *u, struct up_child *c, const char *log, char *const argv[])
{
    char *none[] = { NULL };
    _cleanup_free_ char **env = up_child_env(none);
    int rd = -1;

    c->log_path = al_xasprintf("%s/%s", u->dir, log);
    int r = up_child_spawn(u, c, argv, env, &rd);
    if (r < 0) {
        fprintf(stderr, "airlock up: cannot start the %s: %s\n", c->name, al_errno_name(-r) ?: "error");
        return NULL;
    }
    char *ready = up_read_ready(u, c, rd, UP_READY_MS);
    if (!ready && u->stop_signals == 0) {
        fprintf(stderr, "airlock up: the %s did not start\n", c->name);
        (void) up_child_ok(c);
        up_child_log_tail(c, 8);
    }
    return ready;
}

static int start_relay(struct up *u)
{
    _cleanup_free_ char *cert = tpath(u, "relay.pem"), *key = tpath(u, "relay.key");
    char *argv[] = { "airlock", "relay", "--listen", u->relay_client, "--gateway-listen", "127.0.0.1:0", "--hub",
                     u->client.base_url, "--api-key-file", u->key_file, "--cert", cert, "--key", key,
                     "--ready-fd", "3", NULL };
    _cleanup_free_ char *ready = spawn_ready(u, &u->relay, "relay.log", argv);

    if (u->relay_hold_fd >= 0)
        (void) close(TAKE_FD(u->relay_hold_fd));      /* the relay listens on it now, or never will */
    if (!ready)
        return -ECHILD;
    char *sp = strchr(ready, ' ');
    if (!sp || strncmp(ready, u->relay_client, (size_t) (sp - ready)) != 0 || !sp[1]) {
        fprintf(stderr, "airlock up: the relay's ready line is not \"%s GATEWAY_ADDR\"\n", u->relay_client);
        return -EPROTO;
    }
    u->relay_gateway = al_xstrdup(sp + 1);
    printf("airlock up: relay listening on %s for clients and %s for gateways (log: %s)\n", u->relay_client,
           u->relay_gateway, u->relay.log_path);
    return 0;
}

static int start_mcp(struct up *u)
{
    char *argv[] = { "airlock", "mcp-demo-server", "--listen", "127.0.0.1:0", "--ready-fd", "3", NULL };

    u->mcp_url = spawn_ready(u, &u->mcp, "mcp-demo.log", argv);
    if (!u->mcp_url)
        return -ECHILD;
    printf("airlock up: private MCP server (tickets) on %s/mcp (log: %s)\n", u->mcp_url, u->mcp.log_path);
    return 0;
}

static int start_gateway(struct up *u)
{
    _cleanup_free_ char *ca = tpath(u, "relay-ca.pem"), *token = tpath(u, "token");
    _cleanup_free_ char *cert = tpath(u, "inner.pem"), *key = tpath(u, "inner.key");
    _cleanup_free_ char *akey = tpath(u, "audit.key");
    _cleanup_free_ char *route = al_xasprintf("%s=%s", UP_MCP_SERVER, u->mcp_url);
    char *argv[] = { "airlock", "gateway", "--relay", u->relay_gateway, "--relay-ca", ca, "--token-file", token,
                     "--cert", cert, "--key", key, "--route", route, "--connections", UP_GATEWAY_CONNS,
                     "--audit-log", u->audit_path, "--audit-key-file", akey, "--ready-fd", "3", NULL };
    struct stat st;

    u->audit_start = stat(u->audit_path, &st) == 0 ? st.st_size : 0;
    _cleanup_free_ char *ready = spawn_ready(u, &u->gateway, "gateway.log", argv);
    if (!ready)
        return -ECHILD;
    printf("airlock up: gateway connected to the relay at %s, route %s -> %s (log: %s)\n", ready, UP_MCP_SERVER,
           u->mcp_url, u->gateway.log_path);
    return 0;
}

int up_tunnel_start(struct up *u)
{
    int r = start_relay(u);

    if (r >= 0)
        r = start_mcp(u);
    if (r >= 0)
        r = start_gateway(u);
    return r;
}

/* ---- the summary -------------------------------------------------------- */

/* The last tools/call line this run's gateway wrote, or NULL. */
static json_t *audit_last_call(const struct up *u)
{
    _cleanup_close_ int fd = open(u->audit_path, O_RDONLY | O_CLOEXEC);
    struct stat st;

    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= u->audit_start)
        return NULL;
    off_t from = AL_MAX(u->audit_start, st.st_size - (off_t) UP_AUDIT_READ_MAX);
    size_t n = (size_t) (st.st_size - from);
    _cleanup_free_ char *buf = al_xmalloc(n + 1);
    ssize_t got = pread(fd, buf, n, from);
    json_t *last = NULL;

    buf[got > 0 ? got : 0] = '\0';
    for (char *s = buf, *nl; *s; s = nl + 1) {
        nl = strchrnul(s, '\n');
        json_t *line = json_loadb(s, (size_t) (nl - s), 0, NULL);
        const char *method = cli_json_str(line, "method");
        if (method && !strcmp(method, "tools/call")) {
            json_decref(last);
            last = line;
        } else {
            json_decref(line);
        }
        if (!*nl)
            break;
    }
    return last;
}

/* Waits (on inotify, never a sleep) up to UP_AUDIT_WAIT_MS for the call's line. */
static json_t *audit_wait_call(struct up *u)
{
    json_t *line = audit_last_call(u);
    _cleanup_close_ int in = line ? -1 : inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    int64_t end = al_mono_us() / 1000 + UP_AUDIT_WAIT_MS;

    if (in < 0 || inotify_add_watch(in, u->audit_path, IN_MODIFY) < 0)
        return line ? line : audit_last_call(u);
    while (!(line = audit_last_call(u))) {
        int64_t left = end - al_mono_us() / 1000;
        if (left <= 0)
            break;
        int r = up_wait(u, in, left);
        if (r == -EINTR || (r < 0 && r != -ECHILD))
            break;
        char ev[4096];
        while (read(in, ev, sizeof(ev)) > 0)
            ;
    }
    return line;
}

void up_tunnel_summary(struct up *u)
{
    if (!u->mcp_server_url)
        return;
    printf("  MCP server   %s (through the relay at %s and the gateway to %s/mcp)\n", u->mcp_server_url,
           u->relay_client, u->mcp_url ? u->mcp_url : "?");
    printf("  tunnel       %s   certificates and token under %s\n", u->tunnel_id, u->tunnel_dir);
    printf("  audit log    %s\n", u->audit_path);
    if (!u->session_id)
        return;
    _cleanup_json_ json_t *l = audit_wait_call(u);
    if (!l) {
        printf("               (no tools/call line from this run yet)\n");
        return;
    }
    json_t *ms = json_object_get(l, "latency_ms"), *http = json_object_get(l, "http_status");
    printf("  last call    tools/call ");
    cli_put_str(stdout, cli_json_str(l, "tool") ?: "?");
    printf(": %s, HTTP %lld, %.1f ms, route %s, relay connection ", cli_json_str(l, "status") ?: "?",
           (long long) json_integer_value(http), json_number_value(ms), cli_json_str(l, "route") ?: "?");
    cli_put_str(stdout, cli_json_str(l, "conn") ?: "?");
    printf(" stream %lld\n", (long long) json_integer_value(json_object_get(l, "stream")));
}

void up_tunnel_free(struct up *u)
{
    if (u->relay_hold_fd >= 0)
        (void) close(TAKE_FD(u->relay_hold_fd));
    free(u->relay_client);
    free(u->relay_gateway);
    free(u->mcp_url);
    free(u->tunnel_dir);
    free(u->tunnel_id);
    free(u->tunnel_host);
    free(u->mcp_server_url);
    free(u->audit_path);
    free(u->relay.log_path);
    free(u->mcp.log_path);
    free(u->gateway.log_path);
}
