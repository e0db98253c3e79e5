/* tls.c - OpenSSL context setup for servers and clients. */
#include "net/tls.h"

#include <stdio.h>

#include <openssl/err.h>
#include <openssl/pem.h>

static void tls_errstr(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[256];

	ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", what, e ? reason : "unknown error");
}

/*
 * Accepts any client certificate during the handshake. Cluster identity is
 * decided later from the certificate's fingerprint, so self-signed ones must
 * pass here.
 */
static int tls_accept_any(int preverify, X509_STORE_CTX *ctx)
{
	(void)preverify;
	(void)ctx;
	return 1;
}

static void tls_common(SSL_CTX *ctx)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, int request_client_cert,
			    char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		tls_errstr(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	tls_common(ctx);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_errstr(err, errlen, cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_errstr(err, errlen, key_file);
		goto fail;
	}
	if (request_client_cert)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_accept_any);
	/* Session resumption across reconnects of the same agent. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"lxcm", 4);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static int tls_use_pem_pair(SSL_CTX *ctx, const char *cert_pem, const char *key_pem)
{
	BIO *b = BIO_new_mem_buf(cert_pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = NULL;
	int ok = 0;

	BIO_free(b);
	b = BIO_new_mem_buf(key_pem, -1);
	if (b)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (x && k && SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, k) == 1)
		ok = 1;
	X509_free(x);
	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *opts, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		tls_errstr(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	tls_common(ctx);
	if (opts && opts->ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, opts->ca_file, NULL) != 1) {
			tls_errstr(err, errlen, opts->ca_file);
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (opts && opts->cert_file) {
		if (SSL_CTX_use_certificate_chain_file(ctx, opts->cert_file) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, opts->key_file, SSL_FILETYPE_PEM) != 1) {
			tls_errstr(err, errlen, opts->cert_file);
			goto fail;
		}
	} else if (opts && opts->cert_pem) {
		if (tls_use_pem_pair(ctx, opts->cert_pem, opts->key_pem) != 0) {
			tls_errstr(err, errlen, "client certificate");
			goto fail;
		}
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int tls_set_alpn(SSL_CTX *ctx, const unsigned char *protos, unsigned len)
{
	return SSL_CTX_set_alpn_protos(ctx, protos, len) == 0 ? 0 : -1;
}
