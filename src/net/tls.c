/* tls.c - OpenSSL context setup for servers and clients. */
#include "net/tls.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <sys/queue.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>

#include "common/cert.h"

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

/* ---- server-side session store (connector) ---- */

/*
 * Why our own store: OpenSSL's default TLS 1.3 tickets are stateless, so a
 * resumption decodes the whole session from the ticket, and with it the
 * client's certificate and public key; in OpenSSL 3.0 that decoding costs
 * more than the handshake it saves. With SSL_OP_NO_TICKET the ticket is a
 * session id and the session stays in memory, parsed. OpenSSL's internal
 * cache cannot hold it for us: it drops a session when its connection is
 * freed without a close_notify, and that is how our connections end (the
 * agent closes after each heartbeat). So the server keeps a copy of each
 * new session here, by id: bounded (TLS_SESSIONS_MAX, oldest out first,
 * see tls.h for the memory that bounds), expiring after
 * TLS_SESSION_TIMEOUT_S, and a TLS 1.3 ticket is used once (each
 * resumption gets a new one). The copy shares the client's certificate
 * with the session it was made from: one per cluster, not one per ticket.
 */
struct tls_sess_ent {
	struct tls_sess_ent *te_hnext;	     /* hash chain */
	TAILQ_ENTRY(tls_sess_ent) te_age;     /* age order, oldest first */
	SSL_SESSION *te_sess;
	time_t te_expires;
	unsigned te_idlen;
	unsigned char te_id[SSL_MAX_SSL_SESSION_ID_LENGTH];
};

struct tls_sess_store {
	pthread_mutex_t ts_mu;
	TAILQ_HEAD(tls_sess_age, tls_sess_ent) ts_age;
	size_t ts_count;
	unsigned long ts_hits;
	tls_session_filter_fn ts_filter; /* whose sessions are kept (NULL: all) */
	void *ts_filter_arg;
	struct tls_sess_ent *ts_bucket[TLS_SESSION_BUCKETS];
};

/*
 * State this file hangs on an SSL_CTX (ex_data) and that goes with it: one
 * adaptor from OpenSSL's free callback to each kind's destroy.
 */
struct tls_ex_kind {
	void (*destroy)(void *ptr);
};

/* OpenSSL's free callback for every kind: argp is the kind given at tls_ex_index. */
static void tls_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			void *argp)
{
	const struct tls_ex_kind *kind = argp;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	if (ptr != NULL)
		kind->destroy(ptr);
}

/* A new SSL_CTX ex_data index whose values kind destroys; -1 on failure. */
static int tls_ex_index(const struct tls_ex_kind *kind)
{
	return SSL_CTX_get_ex_new_index(0, (void *)kind, NULL, NULL, tls_ex_free);
}

static int tls_store_idx = -1;
static pthread_once_t tls_store_once = PTHREAD_ONCE_INIT;

static struct tls_sess_ent **tls_store_slot(struct tls_sess_store *st, const unsigned char *id,
					   unsigned len)
{
	uint32_t h = 2166136261u;
	unsigned i;

	for (i = 0; i < len; i++)
		h = (h ^ id[i]) * 16777619u;
	return &st->ts_bucket[h % TLS_SESSION_BUCKETS];
}

static struct tls_sess_ent **tls_store_find(struct tls_sess_store *st, const unsigned char *id,
					   unsigned len)
{
	struct tls_sess_ent **pp = tls_store_slot(st, id, len);

	while (*pp && ((*pp)->te_idlen != len || memcmp((*pp)->te_id, id, len) != 0))
		pp = &(*pp)->te_hnext;
	return pp;
}

/* Takes e out of the hash and the age list; the caller owns it after. */
static void tls_store_unlink(struct tls_sess_store *st, struct tls_sess_ent *e)
{
	struct tls_sess_ent **pp = tls_store_find(st, e->te_id, e->te_idlen);

	if (*pp == e)
		*pp = e->te_hnext;
	TAILQ_REMOVE(&st->ts_age, e, te_age);
	st->ts_count--;
}

static void tls_store_drop(struct tls_sess_store *st, struct tls_sess_ent *e)
{
	tls_store_unlink(st, e);
	SSL_SESSION_free(e->te_sess);
	free(e);
}

/* Drops expired entries, and the oldest ones while room is needed. */
static void tls_store_trim(struct tls_sess_store *st, time_t now, size_t room)
{
	struct tls_sess_ent *e;

	while ((e = TAILQ_FIRST(&st->ts_age)) != NULL &&
	       (e->te_expires <= now || st->ts_count + room > TLS_SESSIONS_MAX))
		tls_store_drop(st, e);
}

static void tls_store_destroy(void *ptr)
{
	struct tls_sess_store *st = ptr;

	while (!TAILQ_EMPTY(&st->ts_age))
		tls_store_drop(st, TAILQ_FIRST(&st->ts_age));
	pthread_mutex_destroy(&st->ts_mu);
	free(st);
}

static void tls_store_init_idx(void)
{
	static const struct tls_ex_kind kind = {tls_store_destroy};

	tls_store_idx = tls_ex_index(&kind);
}

static struct tls_sess_store *tls_store_of(SSL_CTX *ctx)
{
	return tls_store_idx < 0 ? NULL : SSL_CTX_get_ex_data(ctx, tls_store_idx);
}

/*
 * OpenSSL made a session (or a TLS 1.3 ticket): keep a copy if it carries a
 * client certificate. Returns 0: sess stays OpenSSL's.
 */
static int tls_store_on_new(SSL *s, SSL_SESSION *sess)
{
	struct tls_sess_store *st = tls_store_of(SSL_get_SSL_CTX(s));
	struct tls_sess_ent *e, **pp;
	const unsigned char *id;
	unsigned len;
	time_t now = time(NULL);

	/* Without a client certificate (joins, status pings) nobody resumes. */
	id = SSL_SESSION_get_id(sess, &len);
	if (st == NULL || SSL_SESSION_get0_peer(sess) == NULL || len == 0 ||
	    len > SSL_MAX_SSL_SESSION_ID_LENGTH)
		return 0;
	if (st->ts_filter) {
		char fp[65];

		if (cert_fingerprint_x509(SSL_SESSION_get0_peer(sess), fp) != 0 ||
		    !st->ts_filter(fp, st->ts_filter_arg))
			return 0;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return 0;
	e->te_sess = SSL_SESSION_dup(sess);
	if (e->te_sess == NULL) {
		free(e);
		return 0;
	}
	memcpy(e->te_id, id, len);
	e->te_idlen = len;
	e->te_expires = now + (time_t)SSL_SESSION_get_timeout(sess);
	pthread_mutex_lock(&st->ts_mu);
	tls_store_trim(st, now, 1);
	pp = tls_store_find(st, id, len);
	if (*pp)
		tls_store_drop(st, *pp);
	pp = tls_store_slot(st, id, len);
	e->te_hnext = *pp;
	*pp = e;
	TAILQ_INSERT_TAIL(&st->ts_age, e, te_age);
	st->ts_count++;
	pthread_mutex_unlock(&st->ts_mu);
	return 0;
}

/* A client offered a session id or a TLS 1.3 stateful ticket. */
static SSL_SESSION *tls_store_on_get(SSL *s, const unsigned char *id, int len, int *copy)
{
	struct tls_sess_store *st = tls_store_of(SSL_get_SSL_CTX(s));
	struct tls_sess_ent *e;
	SSL_SESSION *sess = NULL;

	*copy = 0;
	if (st == NULL || len <= 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH)
		return NULL;
	pthread_mutex_lock(&st->ts_mu);
	e = *tls_store_find(st, id, (unsigned)len);
	if (e && e->te_expires <= time(NULL)) {
		tls_store_drop(st, e);
		e = NULL;
	}
	if (e && SSL_SESSION_get_protocol_version(e->te_sess) == TLS1_3_VERSION) {
		/* A ticket is used once: our reference goes to OpenSSL. */
		tls_store_unlink(st, e);
		sess = e->te_sess;
		free(e);
	} else if (e) {
		/* A TLS 1.2 session id stays valid for later resumptions. */
		sess = e->te_sess;
		*copy = 1;
	}
	if (sess)
		st->ts_hits++;
	pthread_mutex_unlock(&st->ts_mu);
	return sess;
}

/* Installs the store on a server context; 0 or -1. */
static int tls_store_install(SSL_CTX *ctx)
{
	struct tls_sess_store *st;

	if (pthread_once(&tls_store_once, tls_store_init_idx) != 0 || tls_store_idx < 0)
		return -1;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return -1;
	pthread_mutex_init(&st->ts_mu, NULL);
	TAILQ_INIT(&st->ts_age);
	if (SSL_CTX_set_ex_data(ctx, tls_store_idx, st) != 1) {
		tls_store_destroy(st);
		return -1;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_ANTI_REPLAY);
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_timeout(ctx, TLS_SESSION_TIMEOUT_S);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(ctx, tls_store_on_new);
	SSL_CTX_sess_set_get_cb(ctx, tls_store_on_get);
	return 0;
}

void tls_server_set_session_filter(SSL_CTX *ctx, tls_session_filter_fn fn, void *arg)
{
	struct tls_sess_store *st = tls_store_of(ctx);

	if (st == NULL)
		return;
	pthread_mutex_lock(&st->ts_mu);
	st->ts_filter = fn;
	st->ts_filter_arg = arg;
	pthread_mutex_unlock(&st->ts_mu);
}

void tls_server_session_stats(SSL_CTX *ctx, size_t *stored, unsigned long *hits)
{
	struct tls_sess_store *st = tls_store_of(ctx);

	*stored = 0;
	*hits = 0;
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->ts_mu);
	*stored = st->ts_count;
	*hits = st->ts_hits;
	pthread_mutex_unlock(&st->ts_mu);
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
	/* Session resumption across reconnects of the same agent. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"lxcm", 4);
	if (request_client_cert) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_accept_any);
		if (tls_store_install(ctx) != 0) {
			tls_errstr(err, errlen, "session store");
			goto fail;
		}
	}
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

/* ---- client-side session resumption ---- */

/*
 * The newest resumable session of one client context, with the name it was
 * made for. A session is offered again only to the same SNI name and
 * verified host name, so one made with host A never skips the checks of a
 * connection to host B. The pin check (conn.c) needs nothing here: after a
 * resumption the session still carries the certificate the peer proved in
 * the full handshake, and OpenSSL returns that one as the peer certificate.
 */
struct tls_resume {
	pthread_mutex_t tr_mu;
	SSL_SESSION *tr_sess;
	char tr_key[TLS_RESUME_KEY_MAX];
	unsigned long tr_resumed;
};

static int tls_resume_idx = -1;
static pthread_once_t tls_resume_once = PTHREAD_ONCE_INIT;

static void tls_resume_destroy(void *ptr)
{
	struct tls_resume *tr = ptr;

	SSL_SESSION_free(tr->tr_sess);
	pthread_mutex_destroy(&tr->tr_mu);
	free(tr);
}

static void tls_resume_init_idx(void)
{
	static const struct tls_ex_kind kind = {tls_resume_destroy};

	tls_resume_idx = tls_ex_index(&kind);
}

static struct tls_resume *tls_resume_of(const SSL *s)
{
	if (tls_resume_idx < 0)
		return NULL;
	return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), tls_resume_idx);
}

/* "SNI|verified host" of a client connection; -1 when it does not fit. */
static int tls_resume_key(const SSL *s, char *out, size_t outlen)
{
	const char *sni = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
	const char *host = X509_VERIFY_PARAM_get0_host(SSL_get0_param((SSL *)s), 0);
	int n = snprintf(out, outlen, "%s|%s", sni ? sni : "", host ? host : "");

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/*
 * Keeps a copy of the newest session. A copy, because OpenSSL marks the
 * connection's own session object not resumable when that connection is
 * freed without a close_notify (conn_close does not send one), which is
 * how most of our client connections end; that rule guards against
 * truncation in SSL 3 and does not apply to TLS 1.2 and 1.3 sessions.
 * Returns 0: OpenSSL keeps its reference to sess.
 */
static int tls_resume_on_new(SSL *s, SSL_SESSION *sess)
{
	struct tls_resume *tr = tls_resume_of(s);
	char key[TLS_RESUME_KEY_MAX];
	SSL_SESSION *copy;

	if (tr == NULL || !SSL_SESSION_is_resumable(sess) ||
	    tls_resume_key(s, key, sizeof(key)) != 0 || (copy = SSL_SESSION_dup(sess)) == NULL)
		return 0;
	pthread_mutex_lock(&tr->tr_mu);
	SSL_SESSION_free(tr->tr_sess);
	tr->tr_sess = copy;
	memcpy(tr->tr_key, key, sizeof(key));
	pthread_mutex_unlock(&tr->tr_mu);
	return 0;
}

/*
 * Offers the saved session when a client handshake starts. OpenSSL has no
 * other hook between SSL_new (in conn.c) and the ClientHello, and this one
 * runs before the ClientHello is built, which is when SSL_set_session must
 * be called. It hands us a const SSL; the object is ours to configure.
 */
static void tls_resume_on_info(const SSL *cs, int where, int ret)
{
	SSL *s = (SSL *)cs;
	struct tls_resume *tr;
	char key[TLS_RESUME_KEY_MAX];

	(void)ret;
	if (SSL_is_server(s) || (tr = tls_resume_of(s)) == NULL)
		return;
	if (where & SSL_CB_HANDSHAKE_DONE) {
		if (SSL_session_reused(s)) {
			pthread_mutex_lock(&tr->tr_mu);
			tr->tr_resumed++;
			pthread_mutex_unlock(&tr->tr_mu);
		}
		return;
	}
	if (!(where & SSL_CB_HANDSHAKE_START) || SSL_get_session(s) != NULL ||
	    tls_resume_key(s, key, sizeof(key)) != 0)
		return;
	pthread_mutex_lock(&tr->tr_mu);
	if (tr->tr_sess && strcmp(tr->tr_key, key) == 0 && SSL_SESSION_is_resumable(tr->tr_sess))
		SSL_set_session(s, tr->tr_sess);
	pthread_mutex_unlock(&tr->tr_mu);
}

int tls_client_enable_resumption(SSL_CTX *ctx)
{
	struct tls_resume *tr;

	if (pthread_once(&tls_resume_once, tls_resume_init_idx) != 0 || tls_resume_idx < 0)
		return -1;
	if (SSL_CTX_get_ex_data(ctx, tls_resume_idx) != NULL)
		return 0;
	tr = calloc(1, sizeof(*tr));
	if (tr == NULL)
		return -1;
	pthread_mutex_init(&tr->tr_mu, NULL);
	if (SSL_CTX_set_ex_data(ctx, tls_resume_idx, tr) != 1) {
		tls_resume_destroy(tr);
		return -1;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
						SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_resume_on_new);
	SSL_CTX_set_info_callback(ctx, tls_resume_on_info);
	return 0;
}

unsigned long tls_client_resumed(SSL_CTX *ctx)
{
	struct tls_resume *tr;
	unsigned long n;

	if (tls_resume_idx < 0 || (tr = SSL_CTX_get_ex_data(ctx, tls_resume_idx)) == NULL)
		return 0;
	pthread_mutex_lock(&tr->tr_mu);
	n = tr->tr_resumed;
	pthread_mutex_unlock(&tr->tr_mu);
	return n;
}

int tls_set_alpn(SSL_CTX *ctx, const unsigned char *protos, unsigned len)
{
	return SSL_CTX_set_alpn_protos(ctx, protos, len) == 0 ? 0 : -1;
}

/* ---- ALPN handover (server contexts) ---- */

struct tls_handover {
	unsigned char th_wire[1 + TLS_ALPN_NAME_MAX]; /* the protocol, in ALPN wire form */
	unsigned th_len;
	tls_alpn_handover_fn th_fn;
	void *th_arg;
};

static int tls_handover_idx = -1;
static pthread_once_t tls_handover_once = PTHREAD_ONCE_INIT;

static void tls_handover_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			      void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static void tls_handover_init_idx(void)
{
	tls_handover_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_handover_free);
}

static struct tls_handover *tls_handover_of(SSL_CTX *ctx)
{
	return tls_handover_idx < 0 ? NULL : SSL_CTX_get_ex_data(ctx, tls_handover_idx);
}

/*
 * Selects our protocol when the client offers it. Otherwise no ALPN at all
 * (NOACK), as before there was a callback: HTTP/1.1 clients and clients
 * that offer h2 go on with HTTP/1.1 unchanged.
 */
static int tls_handover_select(SSL *s, const unsigned char **out, unsigned char *outlen,
			       const unsigned char *in, unsigned inlen, void *arg)
{
	struct tls_handover *th = tls_handover_of(SSL_get_SSL_CTX(s));
	unsigned char *sel = NULL;
	unsigned char sellen = 0;

	(void)arg;
	if (th == NULL || SSL_select_next_proto(&sel, &sellen, th->th_wire, th->th_len, in,
						inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	*outlen = sellen;
	return SSL_TLSEXT_ERR_OK;
}

int tls_server_set_alpn_handover(SSL_CTX *ctx, const char *proto, tls_alpn_handover_fn fn,
				 void *arg)
{
	size_t len = strlen(proto);
	struct tls_handover *th;

	if (len == 0 || len > TLS_ALPN_NAME_MAX || fn == NULL)
		return -1;
	if (pthread_once(&tls_handover_once, tls_handover_init_idx) != 0 || tls_handover_idx < 0)
		return -1;
	th = calloc(1, sizeof(*th));
	if (th == NULL)
		return -1;
	th->th_wire[0] = (unsigned char)len;
	memcpy(th->th_wire + 1, proto, len);
	th->th_len = (unsigned)len + 1;
	th->th_fn = fn;
	th->th_arg = arg;
	free(tls_handover_of(ctx));
	if (SSL_CTX_set_ex_data(ctx, tls_handover_idx, th) != 1) {
		free(th);
		return -1;
	}
	SSL_CTX_set_alpn_select_cb(ctx, tls_handover_select, NULL);
	return 0;
}

tls_alpn_handover_fn tls_alpn_handover(SSL *ssl, void **arg)
{
	struct tls_handover *th = tls_handover_of(SSL_get_SSL_CTX(ssl));
	const unsigned char *p = NULL;
	unsigned len = 0;

	*arg = NULL;
	if (th == NULL)
		return NULL;
	SSL_get0_alpn_selected(ssl, &p, &len);
	if (p == NULL || len + 1 != th->th_len || memcmp(p, th->th_wire + 1, len) != 0)
		return NULL;
	*arg = th->th_arg;
	return th->th_fn;
}
