/* SPDX-License-Identifier: Apache-2.0 */
/* Tunnels (docs/internals/TUNNEL.md §1), shaped like the hosted
 * mcp-tunnels-2026-06-22 API: tunnels with a hostname that is never reused,
 * connector tokens derived from the hub's tunnel secret (tunnel_token.c),
 * up to two active CA certificates per tunnel, and the verify endpoint the
 * relay checks tokens with. Tokens are never stored and never logged. Loop
 * thread only. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/base/log.h"
#include "../lib/base/util.h"
#include "../lib/tls/x509.h"
#include "hub.h"
#include "tunnel_token.h"

#define TUNNEL_NAME_MAX      255
#define TUNNEL_CERTS_ACTIVE  2
#define TUNNEL_HOST_TRIES    8     /* 64 random bits: a second try is already unheard of */

_Static_assert(sizeof(((struct hub *) 0)->tunnel_key) == TUNNEL_KEY_LEN, "hub.h and tunnel_token.h agree");

/* ---- the tunnel secret ------------------------------------------------- */

static int key_read(int fd, unsigned char key[TUNNEL_KEY_LEN])
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_size != TUNNEL_KEY_LEN)
        return -EBADMSG;
    if (st.st_mode & 077)
        return -EPERM;     /* someone widened it: refuse rather than use a shared secret */
    ssize_t n = read(fd, key, TUNNEL_KEY_LEN);
    if (n < 0)
        return -errno;
    return n == TUNNEL_KEY_LEN ? 0 : -EBADMSG;
}

static int key_create(const char *path, unsigned char key[TUNNEL_KEY_LEN])
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    al_random(key, TUNNEL_KEY_LEN);
    if (write(fd, key, TUNNEL_KEY_LEN) != TUNNEL_KEY_LEN || fsync(fd) < 0) {
        int e = -errno ?: -EIO;
        (void) unlink(path);
        return e;
    }
    return 0;
}

int tunnels_init(struct hub *h)
{
    _cleanup_free_ char *path = al_xasprintf("%s/tunnel.key", h->cfg.data_dir);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int r;

    if (fd < 0 && errno == ENOENT) {
        r = key_create(path, h->tunnel_key);
        if (r < 0)
            return al_log_errno(AL_ERROR, r, "hub.tunnel_key_create", AL_STR("path", path));
        al_log(AL_INFO, "hub.tunnel_key_generated", AL_STR("path", path));
        return 0;
    }
    r = fd < 0 ? -errno : key_read(fd, h->tunnel_key);
    if (r < 0)
        return al_log_errno(AL_ERROR, r, "hub.tunnel_key", AL_STR("path", path),
                            AL_STR("want", "32 bytes, mode 0600"));
    al_log(AL_INFO, "hub.tunnel_key_loaded", AL_STR("path", path));
    return 0;
}

void tunnels_done(struct hub *h)
{
    explicit_bzero(h->tunnel_key, sizeof(h->tunnel_key));
}

/* ---- objects ----------------------------------------------------------- */

static bool is_archived(json_t *obj)
{
    return json_is_string(json_object_get(obj, "archived_at"));
}

static int64_t active_certs(struct hub *h, const char *tunnel_id)
{
    return al_store_count(h->store, AL_KIND_TUNNEL_CERT, tunnel_id, "active");
}

/* The API's view: "name" and "domain" mirror "display_name" and "hostname"
 * (the hosted API's names next to airlock's), and the live count of
 * certificates. Steals obj. */
static json_t *tunnel_public(struct hub *h, json_t *obj)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    json_object_set(obj, "name", json_object_get(obj, "display_name"));
    json_object_set(obj, "domain", json_object_get(obj, "hostname"));
    json_object_set_new(obj, "active_certificates", json_integer(id ? active_certs(h, id) : 0));
    return api_public(obj);
}

static json_t *cert_public(json_t *obj)
{
    json_object_set(obj, "fingerprint", json_object_get(obj, "fingerprint_sha256"));
    json_object_set(obj, "expires_at", json_object_get(obj, "not_after"));
    return api_public(obj);
}

/* Loads tunnel id; replies 404 and returns NULL if it does not exist. */
static json_t *tunnel_load(struct hub *h, struct al_req *r, const char *id)
{
    json_t *t = NULL;
    int e = al_store_get(h->store, AL_KIND_TUNNEL, id, 0, &t);
    if (e == -ENOENT)
        api_not_found(r, "tunnel");
    else if (e < 0)
        api_store_error(r, e);
    return e < 0 ? NULL : t;
}

static json_t *cert_load(struct hub *h, struct al_req *r, const char *tunnel_id, const char *cert_id)
{
    json_t *c = NULL;
    int e = al_store_get(h->store, AL_KIND_TUNNEL_CERT, cert_id, 0, &c);
    if (e == 0 && strcmp(json_string_value(json_object_get(c, "tunnel_id")) ?: "", tunnel_id) != 0)
        e = -ENOENT;    /* another tunnel's certificate reads as missing */
    if (e == -ENOENT)
        api_not_found(r, "tunnel_certificate");
    else if (e < 0)
        api_store_error(r, e);
    if (e < 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static void reply_archived(struct al_req *r)
{
    al_reply_error(r, 400, "invalid_request_error", "tunnel_archived", "the tunnel is archived");
}

/* A fresh "<16 lowercase hex>.<domain>" that no tunnel, archived or not,
 * has had. The look-up and the insert that follows share the pass's
 * transaction on the store's only writer, so nothing can come between. */
static int hostname_new(struct hub *h, char **ret)
{
    for (int i = 0; i < TUNNEL_HOST_TRIES; i++) {
        unsigned char b[8];
        char hex[2 * sizeof(b) + 1];
        json_t *other = NULL;

        al_random(b, sizeof(b));
        al_hex(b, sizeof(b), hex);
        char *host = al_xasprintf("%s.%s", hex, h->cfg.tunnel_domain);
        int e = al_store_get_by_hash(h->store, AL_KIND_TUNNEL, host, &other);
        json_decref(other);
        if (e == -ENOENT) {
            *ret = host;
            return 0;
        }
        free(host);
        if (e < 0)
            return e;
    }
    return -EEXIST;
}

/* ---- tunnels ----------------------------------------------------------- */

/* "name" is airlock's spelling, "display_name" the hosted API's; either
 * (or both, equal) may be sent. Returns the name (borrowed, may be NULL)
 * through *ret_name. */
static bool tunnel_body_ok(struct al_req *r, json_t *body, json_t **ret_name)
{
    static const char *const allowed[] = { "name", "display_name", "metadata", NULL };
    char why[256];

    if (!api_known_fields(r, body, allowed))
        return false;
    json_t *name = json_object_get(body, "name"), *dn = json_object_get(body, "display_name");
    static const char *const keys[] = { "name", "display_name" };
    json_t *vals[] = { name, dn };
    for (size_t i = 0; i < AL_ELEMENTSOF(vals); i++) {
        json_t *v = vals[i];
        if (v && !json_is_null(v) &&
            (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > TUNNEL_NAME_MAX)) {
            api_bad_field(r, keys[i], "must be a string of 1 to 255 characters or null");
            return false;
        }
    }
    if (name && dn && !json_equal(name, dn)) {
        api_bad_field(r, "display_name", "differs from name; send one of them");
        return false;
    }
    json_t *md = json_object_get(body, "metadata");
    if (md && !json_metadata_valid(md, why, sizeof(why))) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_metadata", "%s", why);
        return false;
    }
    *ret_name = name && !json_is_null(name) ? name : dn && !json_is_null(dn) ? dn : NULL;
    return true;
}

void h_tunnel_create(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *body = NULL, *name = NULL;
    _cleanup_free_ char *host = NULL;

    if (!auth_require_api_key(r) || al_req_json(r, &body) < 0)
        return;
    if (!body)
        body = json_object();
    if (!tunnel_body_ok(r, body, &name)) {
        json_decref(body);
        return;
    }
    int e = hostname_new(h, &host);
    if (e < 0) {
        json_decref(body);
        api_store_error(r, e);
        return;
    }
    _cleanup_free_ char *id = al_id_new("tnl"), *now = now_rfc3339();
    json_t *md = json_object();
    if (json_object_get(body, "metadata"))
        json_metadata_patch(md, json_object_get(body, "metadata"));
    json_t *t = json_pack("{s:s, s:s, s:s, s:O?, s:o, s:s, s:n, s:I}", "type", "tunnel", "id", id, "hostname", host,
                          "display_name", name, "metadata", md, "created_at", now, "archived_at", "_generation",
                          (json_int_t) 1);
    json_decref(body);
    e = al_store_put(h->store, AL_KIND_TUNNEL, id, 0, t);
    if (e < 0) {
        json_decref(t);
        api_store_error(r, e);
        return;
    }
    al_log(AL_INFO, "tunnel.created", AL_STR("tunnel", id), AL_STR("hostname", host),
           AL_STR("request_id", r->request_id));
    al_reply_json(r, 200, tunnel_public(h, t));
}

void h_tunnel_list(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    struct al_list_query q = { .kind = AL_KIND_TUNNEL, .desc = true };
    size_t i;
    json_t *v;

    if (!auth_require_api_key(r) || !api_page_params(r, 20, 100, &q.limit, &q.after_seq) ||
        !api_bool_param(r, "include_archived", false, &q.include_archived))
        return;
    json_t *page = api_list(h, r, &q, NULL);
    if (!page)
        return;
    json_t *data = json_object_get(page, "data");
    json_array_foreach(data, i, v) json_array_set_new(data, i, tunnel_public(h, json_incref(v)));
    al_reply_json(r, 200, page);
}

void h_tunnel_get(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *t;
    if (!auth_require_api_key(r) || !(t = tunnel_load(h, r, r->params[0])))
        return;
    al_reply_json(r, 200, tunnel_public(h, t));
}

/* Irreversible: the certificates are archived with the tunnel, every token
 * stops verifying (verify checks archived_at), the hostname stays taken.
 * Archiving again returns the record unchanged, as the hosted API does. */
void h_tunnel_archive(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *t;
    if (!auth_require_api_key(r) || !(t = tunnel_load(h, r, r->params[0])))
        return;
    if (!is_archived(t)) {
        _cleanup_free_ char *now = now_rfc3339();
        struct al_list_query q = { .kind = AL_KIND_TUNNEL_CERT, .parent = r->params[0], .limit = 100 };
        json_t *certs = json_array(), *c;
        int64_t next = 0;
        size_t i;

        json_object_set_new(t, "archived_at", json_string(now));
        int e = hub_tx_begin(h);
        if (e == 0)
            e = al_store_put(h->store, AL_KIND_TUNNEL, r->params[0], 0, t);
        if (e == 0)
            e = al_store_list(h->store, &q, certs, &next);
        json_array_foreach(certs, i, c) {
            if (e < 0)
                break;
            json_object_set_new(c, "archived_at", json_string(now));
            e = al_store_put(h->store, AL_KIND_TUNNEL_CERT, json_string_value(json_object_get(c, "id")), 0, c);
        }
        json_decref(certs);
        if (api_finish_tx(h, r, e) < 0) {
            json_decref(t);
            return;
        }
        al_log(AL_INFO, "tunnel.archived", AL_STR("tunnel", r->params[0]), AL_STR("request_id", r->request_id));
    }
    al_reply_json(r, 200, tunnel_public(h, t));
}

static void reply_token(struct hub *h, struct al_req *r, json_t *t)
{
    char *tok = tunnel_token_format(h->tunnel_key, json_string_value(json_object_get(t, "id")),
                                    json_integer_value(json_object_get(t, "_generation")));
    al_reply_json(r, 200, json_pack("{s:s, s:s}", "type", "tunnel_token", "token", tok));
    explicit_bzero(tok, strlen(tok));
    free(tok);
}

void h_tunnel_reveal_token(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *t;
    if (!auth_require_api_key(r) || !(t = tunnel_load(h, r, r->params[0])))
        return;
    if (is_archived(t))
        reply_archived(r);
    else {
        al_log(AL_INFO, "tunnel.token_revealed", AL_STR("tunnel", r->params[0]), AL_STR("request_id", r->request_id));
        reply_token(h, r, t);
    }
    json_decref(t);
}

/* The next generation: the old token stops verifying at once; connections
 * the relay already accepted are its business (TUNNEL.md §1). */
void h_tunnel_rotate_token(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *t;
    if (!auth_require_api_key(r) || !(t = tunnel_load(h, r, r->params[0])))
        return;
    if (is_archived(t)) {
        reply_archived(r);
        json_decref(t);
        return;
    }
    json_int_t gen = json_integer_value(json_object_get(t, "_generation"));
    if (gen < 1 || gen >= TUNNEL_GEN_MAX) {
        json_decref(t);
        api_store_error(r, -EBADMSG);
        return;
    }
    json_object_set_new(t, "_generation", json_integer(gen + 1));
    int e = al_store_put(h->store, AL_KIND_TUNNEL, r->params[0], 0, t);
    if (e < 0) {
        json_decref(t);
        api_store_error(r, e);
        return;
    }
    al_log(AL_INFO, "tunnel.token_rotated", AL_STR("tunnel", r->params[0]), AL_I64("generation", gen + 1),
           AL_STR("request_id", r->request_id));
    reply_token(h, r, t);
    json_decref(t);
}

/* ---- verify ------------------------------------------------------------ */

/* The relay's check of a connector token. Every way to fail gets the same
 * 401, and the token itself is neither echoed nor logged. */
void h_tunnel_verify(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    static const char *const allowed[] = { "token", NULL };
    struct tunnel_token tok;
    json_t *body = NULL, *t = NULL;
    const char *why = NULL;

    if (!auth_require_api_key(r) || al_req_json(r, &body) < 0)
        return;
    if (!api_known_fields(r, body, allowed))
        goto out;
    json_t *jt = json_object_get(body, "token");
    if (!json_is_string(jt)) {
        api_bad_field(r, "token", "is required and must be a string");
        goto out;
    }
    /* The MAC first: a token the hub did not issue costs no store read, and
     * the answer does not tell whether its tunnel exists. */
    if (tunnel_token_parse(json_string_value(jt), json_string_length(jt), &tok) < 0)
        why = "malformed";
    else if (!tunnel_token_mac_ok(h->tunnel_key, &tok))
        why = "bad_mac";
    else {
        int e = al_store_get(h->store, AL_KIND_TUNNEL, tok.id, 0, &t);
        if (e < 0 && e != -ENOENT) {
            api_store_error(r, e);
            goto out;
        }
        if (e == -ENOENT)
            why = "unknown_tunnel";    /* issued by this key, then the store lost it */
        else if (is_archived(t))
            why = "archived";
        else if (json_integer_value(json_object_get(t, "_generation")) != tok.generation)
            why = "stale_generation";
    }
    if (why) {
        h->m.tunnel_verify_rejected++;
        al_log(AL_INFO, "tunnel.verify_rejected", AL_STR("why", why), AL_STR("tunnel", t ? tok.id : NULL),
               AL_STR("request_id", r->request_id));
        al_reply_error(r, 401, "authentication_error", "invalid_tunnel_token",
                       "invalid tunnel token (malformed, rotated, or for an archived or unknown tunnel)");
        goto out;
    }
    h->m.tunnel_verify_ok++;
    al_log(AL_DEBUG, "tunnel.verified", AL_STR("tunnel", tok.id), AL_STR("request_id", r->request_id));
    al_reply_json(r, 200, json_pack("{s:s, s:s, s:O, s:I}", "type", "tunnel_connect", "tunnel_id", tok.id, "hostname",
                                    json_object_get(t, "hostname"), "active_certificates",
                                    (json_int_t) active_certs(h, tok.id)));
out:
    explicit_bzero(&tok, sizeof(tok));
    json_decref(t);
    json_decref(body);
}

/* ---- certificates ------------------------------------------------------ */

static const char *pem_error(int e)
{
    switch (e) {
    case -ENOENT: return "holds no PEM certificate";
    case -E2BIG: return "must hold exactly one certificate";
    case -EPERM: return "must not hold private-key material";
    case -EMSGSIZE: return "is larger than 8192 bytes";
    default: return "is not a PEM-encoded X.509 certificate";
    }
}

/* The PEM under "ca_certificate_pem" (the hosted API's name) or
 * "certificate_pem"; one of them, a string. NULL after replying 400. */
static json_t *cert_body_pem(struct al_req *r, json_t *body)
{
    static const char *const allowed[] = { "ca_certificate_pem", "certificate_pem", NULL };

    if (!api_known_fields(r, body, allowed))
        return NULL;
    json_t *a = json_object_get(body, "ca_certificate_pem"), *b = json_object_get(body, "certificate_pem");
    if (a && b) {
        api_bad_field(r, "certificate_pem", "send either ca_certificate_pem or certificate_pem, not both");
        return NULL;
    }
    json_t *pem = a ?: b;
    const char *field = a ? "ca_certificate_pem" : "certificate_pem";
    if (!json_is_string(pem)) {
        api_bad_field(r, field, pem ? "must be a string" : "is required");
        return NULL;
    }
    if (json_string_length(pem) > AL_X509_PEM_MAX) {
        al_reply_error(r, 400, "invalid_request_error", "certificate_too_large", "%s: is %zu bytes; the limit is %d",
                       field, json_string_length(pem), AL_X509_PEM_MAX);
        return NULL;
    }
    return pem;
}

void h_tunnel_cert_create(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    struct al_x509_info info;
    json_t *body = NULL, *t = NULL, *pem;
    _cleanup_free_ char *id = NULL, *now = NULL;

    if (!auth_require_api_key(r) || al_req_json(r, &body) < 0)
        return;
    if (!(pem = cert_body_pem(r, body)) || !(t = tunnel_load(h, r, r->params[0])))
        goto out;
    if (is_archived(t)) {
        reply_archived(r);
        goto out;
    }
    int e = al_x509_pem_one(json_string_value(pem), json_string_length(pem), &info);
    if (e < 0) {
        al_reply_error(r, 400, "invalid_request_error", "invalid_certificate", "%s: %s",
                       json_object_get(body, "ca_certificate_pem") ? "ca_certificate_pem" : "certificate_pem",
                       pem_error(e));
        goto out;
    }
    int64_t n = active_certs(h, r->params[0]);
    if (n >= TUNNEL_CERTS_ACTIVE) {
        al_reply_error(r, 400, "invalid_request_error", "too_many_certificates",
                       "the tunnel already has %d active certificates; archive one first", TUNNEL_CERTS_ACTIVE);
        goto out;
    }
    id = al_id_new("tcrt");
    now = now_rfc3339();
    char not_after[AL_RFC3339_MAX];
    json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:O}", "type", "tunnel_certificate", "id", id,
                          "tunnel_id", r->params[0], "fingerprint_sha256", info.fingerprint_sha256, "subject",
                          info.subject, "not_after", al_rfc3339(info.not_after_us, not_after), "created_at", now,
                          "archived_at", "_pem", pem);
    if (!c) {   /* a subject that is not UTF-8 */
        al_reply_error(r, 400, "invalid_request_error", "invalid_certificate", "the certificate's subject is not UTF-8");
        goto out;
    }
    e = al_store_put(h->store, AL_KIND_TUNNEL_CERT, id, 0, c);
    if (e < 0) {
        json_decref(c);
        api_store_error(r, e);
        goto out;
    }
    al_log(AL_INFO, "tunnel_certificate.created", AL_STR("tunnel", r->params[0]), AL_STR("certificate", id),
           AL_STR("fingerprint", info.fingerprint_sha256), AL_STR("request_id", r->request_id));
    al_reply_json(r, 200, cert_public(c));
out:
    json_decref(t);
    json_decref(body);
}

void h_tunnel_cert_list(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    struct al_list_query q = { .kind = AL_KIND_TUNNEL_CERT, .desc = true };
    json_t *t;

    if (!auth_require_api_key(r) || !api_page_params(r, 20, 100, &q.limit, &q.after_seq) ||
        !api_bool_param(r, "include_archived", false, &q.include_archived) ||
        !(t = tunnel_load(h, r, r->params[0])))
        return;
    json_decref(t);
    q.parent = r->params[0];
    api_reply_list(h, r, &q, cert_public);
}

void h_tunnel_cert_get(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *t, *c;
    if (!auth_require_api_key(r) || !(t = tunnel_load(h, r, r->params[0])))
        return;
    json_decref(t);
    if ((c = cert_load(h, r, r->params[0], r->params[1])))
        al_reply_json(r, 200, cert_public(c));
}

/* Takes the certificate out of the trusted set; again is a no-op. */
void h_tunnel_cert_archive(struct al_req *r, void *ud)
{
    API_BEGIN(r, ud);
    json_t *t, *c;
    if (!auth_require_api_key(r) || !(t = tunnel_load(h, r, r->params[0])))
        return;
    json_decref(t);
    if (!(c = cert_load(h, r, r->params[0], r->params[1])))
        return;
    if (!is_archived(c)) {
        _cleanup_free_ char *now = now_rfc3339();
        json_object_set_new(c, "archived_at", json_string(now));
        int e = al_store_put(h->store, AL_KIND_TUNNEL_CERT, r->params[1], 0, c);
        if (e < 0) {
            json_decref(c);
            api_store_error(r, e);
            return;
        }
        al_log(AL_INFO, "tunnel_certificate.archived", AL_STR("tunnel", r->params[0]),
               AL_STR("certificate", r->params[1]), AL_STR("request_id", r->request_id));
    }
    al_reply_json(r, 200, cert_public(c));
}
