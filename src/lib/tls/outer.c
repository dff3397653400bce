/* SPDX-License-Identifier: Apache-2.0 */
/* OpenSSL contexts and bufferevents for the outer link; see outer.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../base/util.h"
#include "outer.h"

struct al_outer_ctx {
    SSL_CTX *ctx;
    bool server;
};

static void set_why(char *why, size_t whylen, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    char ebuf[160] = "";

    if (e)
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
    ERR_clear_error();
    if (why && whylen)
        (void) snprintf(why, whylen, "%s %s%s%s", what, file ? file : "", ebuf[0] ? ": " : "", ebuf);
}

/* Idle links give their record buffers back. Busy ones read ahead: one
 * read() takes up to AL_OUTER_READ_AHEAD bytes, several records, instead of
 * two reads per record. libevent's OpenSSL bufferevent only asks
 * SSL_pending() (decrypted bytes) before waiting for the socket again, so
 * whole records read ahead would wait for the next socket event: the mux
 * calls al_outer_kick_read() after each read to run them. */
static void outer_tune(SSL_CTX *ctx)
{
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, AL_OUTER_READ_AHEAD);
}

void al_outer_kick_read(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    if (ssl && SSL_has_pending(ssl) && (bufferevent_get_enabled(bev) & EV_READ))
        event_active(&bev->ev_read, EV_READ, 1);
}

int al_outer_server_new(const char *cert_file, const char *key_file, struct al_outer_ctx **ret, char *why,
                        size_t whylen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (!ctx) {
        set_why(why, whylen, "cannot create a TLS context", NULL);
        return -ENOMEM;
    }
    (void) SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    outer_tune(ctx);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        set_why(why, whylen, "cannot load the certificate", cert_file);
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        set_why(why, whylen, "cannot load the key (or it does not match the certificate)", key_file);
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    struct al_outer_ctx *o = al_xcalloc(1, sizeof(*o));
    o->ctx = ctx;
    o->server = true;
    *ret = o;
    return 0;
}

int al_outer_client_new(const char *ca_file, struct al_outer_ctx **ret, char *why, size_t whylen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx) {
        set_why(why, whylen, "cannot create a TLS context", NULL);
        return -ENOMEM;
    }
    (void) SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    outer_tune(ctx);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        set_why(why, whylen, "cannot load the CA bundle", ca_file ? ca_file : "(system store)");
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    struct al_outer_ctx *o = al_xcalloc(1, sizeof(*o));
    o->ctx = ctx;
    *ret = o;
    return 0;
}

struct al_outer_ctx *al_outer_free(struct al_outer_ctx *o)
{
    if (o) {
        SSL_CTX_free(o->ctx);
        free(o);
    }
    return NULL;
}

/* The bufferevent over fd for ssl; on failure both are freed and fd closed. */
static struct bufferevent *outer_bev(struct event_base *base, int fd, SSL *ssl, enum bufferevent_ssl_state state)
{
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, fd, ssl, state,
                                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        (void) close(fd);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct bufferevent *al_outer_accept(struct al_outer_ctx *o, struct event_base *base, int fd)
{
    SSL *ssl = SSL_new(o->ctx);

    if (!ssl) {
        (void) close(fd);
        return NULL;
    }
    return outer_bev(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING);
}

struct bufferevent *al_outer_connect(struct al_outer_ctx *o, struct event_base *base, int fd, const char *name)
{
    SSL *ssl = SSL_new(o->ctx);
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;

    if (!ssl) {
        (void) close(fd);
        return NULL;
    }
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) : X509_VERIFY_PARAM_set1_host(vp, name, 0);
    if (!is_ip)
        ok = ok && SSL_set_tlsext_host_name(ssl, name);
    if (!ok) {
        SSL_free(ssl);
        (void) close(fd);
        return NULL;
    }
    return outer_bev(base, fd, ssl, BUFFEREVENT_SSL_CONNECTING);
}

const char *al_outer_error(struct bufferevent *bev)
{
    static char buf[256];
    unsigned long e = bufferevent_get_openssl_error(bev);

    if (!e)
        return NULL;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    char ebuf[160];
    ERR_error_string_n(e, ebuf, sizeof(ebuf));
    if (vr != X509_V_OK)
        (void) snprintf(buf, sizeof(buf), "%s (%s)", ebuf, X509_verify_cert_error_string(vr));
    else
        (void) snprintf(buf, sizeof(buf), "%s", ebuf);
    while (bufferevent_get_openssl_error(bev))
        ;
    return buf;
}

bool al_outer_verified(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    return ssl && SSL_get_verify_result(ssl) == X509_V_OK && SSL_get0_peer_certificate(ssl) != NULL;
}
