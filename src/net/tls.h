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

/*
 * Bounds of a server context's session store (contexts that request client
 * certificates). Any client can make entries, since any certificate passes
 * the handshake, so the cap is what bounds their memory: about 6 KiB each
 * with a certificate nobody else holds, 1 KiB when the cluster's tunnel
 * shares it, so at most about 200 MiB. An agent needs one entry at a time
 * (each resumption uses its ticket and gets the next); past the cap the
 * oldest go first and their clusters make full handshakes again.
 */
#define TLS_SESSIONS_MAX 32768
#define TLS_SESSION_BUCKETS 8192
#define TLS_SESSION_TIMEOUT_S 1800 /* far above the heartbeat interval */

/*
 * Returns a new context or NULL with a reason in err. With
 * request_client_cert the context also keeps sessions in memory for
 * resumption (see tls.c): a resumed connection's peer certificate is the
 * one the client proved in its full handshake.
 */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, int request_client_cert,
			    char *err, size_t errlen);
SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *opts, char *err, size_t errlen);
/*
 * Keeps sessions of a server context made with request_client_cert only for
 * clients whose certificate fingerprint fn accepts (say, enrolled clusters),
 * so strangers cannot fill the store. Without a filter every session with a
 * client certificate is kept.
 */
typedef int (*tls_session_filter_fn)(const char *fingerprint, void *arg);
void tls_server_set_session_filter(SSL_CTX *ctx, tls_session_filter_fn fn, void *arg);
/*
 * Client-side TLS session resumption for ctx: the newest session a server
 * gave (a TLS 1.3 ticket or a 1.2 session) is offered by the next
 * connection made with ctx to the same SNI and verified host name. The
 * server then skips its certificate signature and the verification of our
 * client certificate; it still knows that certificate, from the session.
 * For contexts that talk to one service (the agent's manager connector).
 * 0 or -1.
 */
int tls_client_enable_resumption(SSL_CTX *ctx);
/* How many handshakes of ctx resumed a session (0 without resumption). */
unsigned long tls_client_resumed(SSL_CTX *ctx);
#define TLS_RESUME_KEY_MAX 528 /* "SNI|host": two DNS names and a separator */

/* Sessions held by a server context's store, and resumptions it served. */
void tls_server_session_stats(SSL_CTX *ctx, size_t *stored, unsigned long *hits);

/* Installs an ALPN list on a client context ("\x08http/1.1" style). */
int tls_set_alpn(SSL_CTX *ctx, const unsigned char *protos, unsigned len);

/*
 * ALPN handover, server contexts: when a client offers proto (one ALPN
 * name), the handshake selects it, and the connection is handed to fn
 * right after the handshake instead of going to its listener's owner (the
 * HTTP server), which forgets it (conn.h, conn_opened). Clients that do
 * not offer proto get no ALPN answer, as without this. The connector uses
 * it for the direct tunnel transport (ALPN lxcm-tunnel.v2): HTTP/2
 * straight over TLS, no HTTP upgrade. One protocol per context; 0 or -1.
 */
#define TLS_ALPN_NAME_MAX 64
struct conn;
typedef void (*tls_alpn_handover_fn)(struct conn *c, void *arg);
int tls_server_set_alpn_handover(SSL_CTX *ctx, const char *proto, tls_alpn_handover_fn fn,
				 void *arg);
/* For conn.c: the handover due to a server connection after its handshake, or NULL. */
tls_alpn_handover_fn tls_alpn_handover(SSL *ssl, void **arg);

#endif
