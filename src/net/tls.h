/*
 * tls.h - OpenSSL contexts for our listeners and outbound connections.
 *
 * Only TLS 1.2 and 1.3 are enabled. A server context can request client
 * certificates: any certificate, self-signed included, is accepted at the
 * TLS layer, and the application judges it afterwards by its SHA-256
 * fingerprint (conn_peer_fingerprint). A client context either verifies the
 * peer against a CA file or verifies nothing during the handshake, in which
 * case the caller must pin the peer's fingerprint (conn_set_pin).
 */
#ifndef LXCM_TLS_H
#define LXCM_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct tls_client_opts {
	const char *ca_file;   /* verify the peer against this CA bundle, or NULL */
	const char *cert_file; /* our client certificate, or NULL */
	const char *key_file;
	const char *cert_pem; /* or the same from memory */
	const char *key_pem;
};

/* Returns a new context or NULL with a reason in err. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, int request_client_cert,
			    char *err, size_t errlen);
SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *opts, char *err, size_t errlen);
/* Installs an ALPN list on a client context ("\x08http/1.1" style). */
int tls_set_alpn(SSL_CTX *ctx, const unsigned char *protos, unsigned len);

#endif
