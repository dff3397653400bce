/* SPDX-License-Identifier: Apache-2.0 */
/* Inner TLS over memory BIOs (inner.h). Every OpenSSL call of the gateway's
 * stream side is in this file. */
#include <ctype.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "inner.h"
#include <stdint.h>

struct al_inner_ctx {
    SSL_CTX *ssl_ctx;
};

struct al_inner_sess {
    SSL *ssl;
    BIO *rbio, *wbio;           /* owned by ssl */
    al_inner_sni_fn sni_fn;
    void *sni_arg;
    char *sni;
    bool sni_checked, sni_refused, done;
};

static void set_why(char *why, size_t whylen, const char *what, const char *file)
{
    char err[256] = "";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, err, sizeof(err));
    ERR_clear_error();
    (void) snprintf(why, whylen, "%s %s%s%s", what, file, *err ? ": " : "", err);
}

static int on_sni(SSL *ssl, int *al, void *arg)
{
    struct al_inner_sess *s = SSL_get_app_data(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    (void) arg;
    if (!s)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    free(s->sni);
    s->sni = NULL;
    if (name) {
        s->sni = al_xstrdup(name);
        for (char *p = s->sni; *p; p++)
            *p = (char) tolower((unsigned char) *p);
    }
    s->sni_checked = true;
    if (s->sni_fn && s->sni_fn(s->sni_arg, s->sni) < 0) {
        s->sni_refused = true;
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel = NULL;

    (void) ssl;
    (void) arg;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;   /* no ALPN then; the client may still speak HTTP/1.1 */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

int al_inner_ctx_new(const char *cert_file, const char *key_file,
                     struct al_inner_ctx **ret, char *why, size_t whylen)
{
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());

    if (!c) {
        set_why(why, whylen, "cannot create a TLS context", "");
        return -ENOMEM;
    }
    (void) SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_tlsext_servername_callback(c, on_sni);
    SSL_CTX_set_alpn_select_cb(c, on_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1) {
        set_why(why, whylen, "cannot load the certificate chain", cert_file);
        SSL_CTX_free(c);
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(c, key_file, SSL_FILETYPE_PEM) != 1) {
        set_why(why, whylen, "cannot load the private key", key_file);
        SSL_CTX_free(c);
        return -EINVAL;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        set_why(why, whylen, "the key does not match the certificate", key_file);
        SSL_CTX_free(c);
        return -EINVAL;
    }
    struct al_inner_ctx *ctx = al_xcalloc(1, sizeof(*ctx));
    ctx->ssl_ctx = c;
    *ret = ctx;
    return 0;
}

struct al_inner_ctx *al_inner_ctx_unref(struct al_inner_ctx *ctx)
{
    if (ctx) {
        SSL_CTX_free(ctx->ssl_ctx);   /* sessions hold their own reference */
        free(ctx);
    }
    return NULL;
}

struct al_inner_sess *al_inner_sess_new(struct al_inner_ctx *ctx, al_inner_sni_fn sni_fn, void *arg)
{
    struct al_inner_sess *s = al_xcalloc(1, sizeof(*s));

    s->ssl = SSL_new(ctx->ssl_ctx);
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    if (!s->ssl || !s->rbio || !s->wbio) {
        SSL_free(s->ssl);
        BIO_free(s->rbio);
        BIO_free(s->wbio);
        ERR_clear_error();
        free(s);
        return NULL;
    }
    BIO_set_mem_eof_return(s->rbio, -1);     /* empty = "retry", until feed_eof */
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    SSL_set_app_data(s->ssl, s);
    SSL_set_accept_state(s->ssl);
    s->sni_fn = sni_fn;
    s->sni_arg = arg;
    return s;
}

void al_inner_sess_free(struct al_inner_sess *s)
{
    if (!s)
        return;
    SSL_free(s->ssl);
    free(s->sni);
    free(s);
}

void al_inner_feed(struct al_inner_sess *s, const void *data, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int) len;
        int n = BIO_write(s->rbio, data, chunk);
        if (n <= 0)
            abort();   /* a memory BIO only fails when malloc does */
        data = (const char *) data + n;
        len -= (size_t) n;
    }
}

void al_inner_feed_eof(struct al_inner_sess *s)
{
    BIO_set_mem_eof_return(s->rbio, 0);
}

size_t al_inner_pending_in(const struct al_inner_sess *s)
{
    return BIO_ctrl_pending(s->rbio);
}

int al_inner_handshake(struct al_inner_sess *s)
{
    if (s->done)
        return 1;
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        s->done = true;
        if (!s->sni_checked && s->sni_fn && s->sni_fn(s->sni_arg, NULL) < 0) {
            s->sni_refused = true;   /* OpenSSL 3 always runs on_sni; belt and braces */
            return -ENOENT;
        }
        return 1;
    }
    int e = SSL_get_error(s->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    return s->sni_refused ? -ENOENT : -EPROTO;
}

bool al_inner_handshake_done(const struct al_inner_sess *s)
{
    return s->done;
}

ssize_t al_inner_read(struct al_inner_sess *s, void *buf, size_t cap)
{
    int n = SSL_read(s->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int) cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(s->ssl, n);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return -EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    return -EPROTO;
}

int al_inner_write(struct al_inner_sess *s, const void *data, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int) len;
        int n = SSL_write(s->ssl, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            return -EPROTO;
        }
        data = (const char *) data + n;
        len -= (size_t) n;
    }
    return 0;
}

void al_inner_shutdown(struct al_inner_sess *s)
{
    if (s->done && !(SSL_get_shutdown(s->ssl) & SSL_SENT_SHUTDOWN))
        (void) SSL_shutdown(s->ssl);
    ERR_clear_error();
}

size_t al_inner_take_out(struct al_inner_sess *s, void *buf, size_t cap)
{
    int n = BIO_read(s->wbio, buf, cap > INT32_MAX ? INT32_MAX : (int) cap);
    return n > 0 ? (size_t) n : 0;
}

size_t al_inner_pending_out(const struct al_inner_sess *s)
{
    return BIO_ctrl_pending(s->wbio);
}

const char *al_inner_sni(const struct al_inner_sess *s)
{
    return s->sni;
}

const char *al_inner_version(const struct al_inner_sess *s)
{
    return s->done ? SSL_get_version(s->ssl) : NULL;
}
