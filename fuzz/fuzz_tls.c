/*
 * fuzz_tls.c - the client side of a TLS connection, from a hostile client,
 * into lxcm-server's real listener path: http_server over conn.c's
 * TLS-over-memory-BIO server role, with SSL_CTXs made by tls_server_ctx_new
 * exactly as src/server/main.c makes them (certificate and key written by
 * cert_ensure_files), the real route tables and pre_route hooks
 * (auth_management_pre_route, connector_pre_route: over TLS the connector
 * judges the real client certificate's fingerprint) and fzserver.c's
 * SQLite store, over loopback TCP inside the fuzzer process.
 *
 * Byte 0 of the input holds flags:
 *   bit 0  the connector listener (client certificates requested), else
 *          the management listener
 *   bit 1  handshake first: an OpenSSL client in this process (memory BIOs
 *          pumped over the socket) completes a real handshake, then the
 *          rest is a script (below). Without it the rest is raw bytes from
 *          the first byte on: ClientHello and record-layer fuzzing.
 *   bit 2  the client presents a certificate, enrolled as cluster
 *          "tlsfuzz" (its fingerprint is in the store)
 *   bit 3  the client offers TLS 1.2 at most (else 1.2 and 1.3)
 *   bit 4  resume the last session saved for this listener, if any
 * The script is cut at lines "----" (fuzz_next_part). Each part is sent as
 * TLS application data (one SSL_write: the plaintext HTTP/1.1 the server
 * parses behind TLS), except parts starting with a command:
 *   "!raw "       the rest of the part goes on the socket as is (garbage
 *                 or forged records after the handshake)
 *   "!keyupdate"  a TLS 1.3 KeyUpdate (update_requested)
 *   "!reneg"      a TLS 1.2 renegotiation attempt (the server refuses them)
 *   "!close"      close_notify
 *   "!read"       read what the server has said so far
 * After the script the client sends close_notify, half-closes and reads
 * until EOF. Invariants: a valid client always completes the handshake;
 * whatever the server says behind TLS starts as an HTTP/1.1 response; and
 * the loop settles between inputs (no connection, timer or database job
 * left behind, fznet_settle).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/cert.h"
#include "fuzz.h"
#include "fznet.h"
#include "fzserver.h"
#include "net/tls.h"

#define FZ_F_CONNECTOR 0x01
#define FZ_F_HANDSHAKE 0x02
#define FZ_F_CERT 0x04
#define FZ_F_TLS12 0x08
#define FZ_F_RESUME 0x10

#define FZ_REPLY_MAX (1 << 20)

static struct server *fz_srv;
static struct http_server *fz_mgmt, *fz_conn;
static SSL_CTX *fz_mgmt_ctx, *fz_conn_ctx, *fz_cli_ctx, *fz_cli_cert_ctx;
static SSL_SESSION *fz_session[2]; /* per listener: the last session seen */
static char fz_client_fp[65]; /* the certificate of "tlsfuzz" */
static char fz_dir[] = "/tmp/lxcm-fuzz-tls-XXXXXX";
static const char *const fz_files[] = {"server.crt", "server.key", "client.crt", "client.key"};

static void fz_path(char *out, size_t len, const char *name)
{
	FUZZ_CHECK(snprintf(out, len, "%s/%s", fz_dir, name) < (int)len);
}

static void fz_cleanup(void)
{
	char p[sizeof(fz_dir) + 32];
	size_t i;

	for (i = 0; i < sizeof(fz_files) / sizeof(fz_files[0]); i++) {
		fz_path(p, sizeof(p), fz_files[i]);
		(void)unlink(p);
	}
	(void)rmdir(fz_dir);
}

static struct http_server *fz_listen(SSL_CTX *ctx, int connector)
{
	struct http_server_config c = {0};
	struct http_server *s = NULL;

	c.host = FZNET_HOST;
	c.tls = ctx;
	c.routes = connector ? connector_routes : api_routes;
	c.nroutes = connector ? connector_nroutes : api_nroutes;
	c.data = fz_srv;
	c.name = connector ? "connector" : "management";
	c.pre_route = connector ? connector_pre_route : auth_management_pre_route;
	c.limits.header_timeout_ms = 1000;
	c.limits.idle_timeout_ms = 1000;
	c.limits.body_timeout_ms = 1000;
	FUZZ_CHECK(http_server_start(fz_srv->loop, &c, &s) == 0);
	return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char crt[sizeof(fz_dir) + 32], key[sizeof(fz_dir) + 32], ccrt[sizeof(crt)],
		ckey[sizeof(key)], err[512];
	struct tls_client_opts o = {0};

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN); /* as lxcm-server */
	fz_srv = fzserver_start();
	FUZZ_CHECK(mkdtemp(fz_dir) != NULL);
	atexit(fz_cleanup);
	fz_path(crt, sizeof(crt), "server.crt");
	fz_path(key, sizeof(key), "server.key");
	fz_path(ccrt, sizeof(ccrt), "client.crt");
	fz_path(ckey, sizeof(ckey), "client.key");
	/* What lxcm-server does without --tls-cert (server_setup_tls). */
	FUZZ_CHECK(cert_ensure_files(crt, key, "lxcm-server") == 0);
	fz_mgmt_ctx = tls_server_ctx_new(crt, key, 0, err, sizeof(err));
	fz_conn_ctx = tls_server_ctx_new(crt, key, 1, err, sizeof(err));
	FUZZ_CHECK(fz_mgmt_ctx != NULL && fz_conn_ctx != NULL);
	/* A cluster's certificate, as lxcm-agent join makes it. */
	FUZZ_CHECK(cert_ensure_files(ccrt, ckey, "tlsfuzz") == 0);
	FUZZ_CHECK(cert_load_fingerprint_file(ccrt, fz_client_fp) == 0);
	fzserver_enroll("tlsfuzz", fz_client_fp);
	fz_cli_ctx = tls_client_ctx_new(NULL, err, sizeof(err));
	o.cert_file = ccrt;
	o.key_file = ckey;
	fz_cli_cert_ctx = tls_client_ctx_new(&o, err, sizeof(err));
	FUZZ_CHECK(fz_cli_ctx != NULL && fz_cli_cert_ctx != NULL);
	fz_mgmt = fz_listen(fz_mgmt_ctx, 0);
	fz_conn = fz_listen(fz_conn_ctx, 1);
	fznet_mark_baseline();
	return 0;
}

/* ---- the in-process client ---- */

struct fz_client {
	int fd;
	int peer_closed; /* EOF or reset from the server */
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
	uint8_t *reply;	  /* plaintext the server sent, up to FZ_REPLY_MAX */
	size_t nreply;
};

/* Sends what the client's TLS engine produced. */
static void fz_flush(struct fz_client *c)
{
	char buf[16384];
	int n;

	while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0)
		if (!c->peer_closed && fznet_write(c->fd, buf, (size_t)n, 2000) < (size_t)n)
			c->peer_closed = 1;
}

/* Takes the plaintext the client's TLS engine has, into c->reply. */
static void fz_take_plain(struct fz_client *c)
{
	char buf[16384];
	int n;

	while ((n = SSL_read(c->ssl, buf, sizeof(buf))) > 0) {
		size_t take = (size_t)n;

		if (take > FZ_REPLY_MAX - c->nreply)
			take = FZ_REPLY_MAX - c->nreply;
		memcpy(c->reply + c->nreply, buf, take);
		c->nreply += take;
	}
	ERR_clear_error();
	fz_flush(c); /* SSL_read may answer (a KeyUpdate, an alert) */
}

/*
 * Reads from the socket for up to ms milliseconds (running the server's
 * loop meanwhile) and gives the bytes to the client's TLS engine. Returns
 * 1 if something came, 0 at EOF, -1 on timeout.
 */
static int fz_pump(struct fz_client *c, uint64_t ms)
{
	char buf[16384];
	ssize_t n;

	if (c->peer_closed)
		return 0;
	n = fznet_recv(c->fd, buf, sizeof(buf), ms);
	if (n == 0) {
		c->peer_closed = 1;
		return 0;
	}
	if (n < 0)
		return -1;
	FUZZ_CHECK(BIO_write(c->rbio, buf, (int)n) == (int)n);
	return 1;
}

static int fz_handshake(struct fz_client *c)
{
	int i, rc, err;

	for (i = 0; i < 200; i++) {
		rc = SSL_do_handshake(c->ssl);
		fz_flush(c);
		if (rc == 1)
			return 0;
		err = SSL_get_error(c->ssl, rc);
		if (err != SSL_ERROR_WANT_READ)
			break;
		if (fz_pump(c, 3000) <= 0)
			break;
	}
	fprintf(stderr, "fuzz_tls: the handshake of a valid client failed: %s\n",
		ERR_reason_error_string(ERR_peek_error()) ? ERR_reason_error_string(ERR_peek_error())
							  : "(no OpenSSL error)");
	return -1;
}

/* Runs the server's loop a little and takes what it answered. */
static void fz_settle_reads(struct fz_client *c)
{
	int i;

	for (i = 0; i < 8 && fz_pump(c, 2) == 1; i++)
		;
	fz_take_plain(c);
}

static int fz_cmd(const uint8_t *p, size_t len, const char *cmd)
{
	size_t n = strlen(cmd);

	return len >= n && memcmp(p, cmd, n) == 0;
}

static void fz_part(struct fz_client *c, const uint8_t *p, size_t len)
{
	if (fz_cmd(p, len, "!raw ")) {
		fz_flush(c);
		if (!c->peer_closed && fznet_write(c->fd, p + 5, len - 5, 2000) < len - 5)
			c->peer_closed = 1;
	} else if (fz_cmd(p, len, "!keyupdate")) {
		if (SSL_key_update(c->ssl, SSL_KEY_UPDATE_REQUESTED) == 1)
			(void)SSL_do_handshake(c->ssl);
	} else if (fz_cmd(p, len, "!reneg")) {
		if (SSL_renegotiate(c->ssl) == 1)
			(void)SSL_do_handshake(c->ssl);
	} else if (fz_cmd(p, len, "!close")) {
		(void)SSL_shutdown(c->ssl);
	} else if (fz_cmd(p, len, "!read")) {
		fz_settle_reads(c);
	} else if (len > 0) {
		(void)SSL_write(c->ssl, p, (int)len);
	}
	ERR_clear_error();
	fz_flush(c);
	fz_settle_reads(c);
}

static void fz_check_reply(const struct fz_client *c)
{
	static const char http[] = "HTTP/1.1 ";
	size_t n = c->nreply < sizeof(http) - 1 ? c->nreply : sizeof(http) - 1;

	if (memcmp(c->reply, http, n) != 0) {
		fprintf(stderr, "fuzz_tls: the server's plaintext is not HTTP/1.1: %.*s\n",
			(int)(c->nreply > 200 ? 200 : c->nreply), c->reply);
		abort();
	}
}

static void fz_tls_session(unsigned flags, const uint8_t *data, size_t size)
{
	static uint8_t reply[FZ_REPLY_MAX];
	int which = (flags & FZ_F_CONNECTOR) ? 1 : 0;
	struct http_server *srv = which ? fz_conn : fz_mgmt;
	struct fz_client c = {.reply = reply};
	SSL_SESSION *sess;
	const uint8_t *p;
	size_t len;

	c.fd = fznet_connect(http_server_port(srv));
	FUZZ_CHECK(c.fd >= 0);
	c.ssl = SSL_new((flags & FZ_F_CERT) ? fz_cli_cert_ctx : fz_cli_ctx);
	c.rbio = BIO_new(BIO_s_mem());
	c.wbio = BIO_new(BIO_s_mem());
	FUZZ_CHECK(c.ssl != NULL && c.rbio != NULL && c.wbio != NULL);
	BIO_set_mem_eof_return(c.rbio, -1);
	SSL_set_bio(c.ssl, c.rbio, c.wbio);
	SSL_set_connect_state(c.ssl);
	if (flags & FZ_F_TLS12)
		SSL_set_max_proto_version(c.ssl, TLS1_2_VERSION);
	if ((flags & FZ_F_RESUME) && fz_session[which])
		SSL_set_session(c.ssl, fz_session[which]);
	FUZZ_CHECK(fz_handshake(&c) == 0);
	while ((p = fuzz_next_part(&data, &size, &len)) != NULL)
		fz_part(&c, p, len);
	(void)SSL_shutdown(c.ssl);
	fz_flush(&c);
	(void)shutdown(c.fd, SHUT_WR);
	while (fz_pump(&c, 5000) == 1)
		fz_take_plain(&c);
	fz_take_plain(&c);
	sess = SSL_get1_session(c.ssl);
	if (sess) {
		SSL_SESSION_free(fz_session[which]);
		fz_session[which] = sess;
	}
	SSL_free(c.ssl);
	fznet_close(c.fd);
	ERR_clear_error();
	fznet_settle(8000, "fuzz_tls");
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "%.*s\n----\n", (int)c.nreply, c.reply);
	fz_check_reply(&c);
}

static void fz_raw(unsigned flags, const uint8_t *data, size_t size)
{
	struct http_server *srv = (flags & FZ_F_CONNECTOR) ? fz_conn : fz_mgmt;
	int fd = fznet_connect(http_server_port(srv));

	FUZZ_CHECK(fd >= 0);
	fznet_send(fd, data, size, 2000);
	(void)fznet_drain(fd, 5000, NULL, 0, NULL);
	fznet_close(fd);
	fznet_settle(8000, "fuzz_tls raw");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned flags;

	if (size == 0)
		return 0;
	flags = data[0];
	fzserver_rearm_auth();
	if (flags & FZ_F_CERT)
		fzserver_enroll("tlsfuzz", fz_client_fp); /* an input may have removed it */
	if (flags & FZ_F_HANDSHAKE)
		fz_tls_session(flags, data + 1, size - 1);
	else
		fz_raw(flags, data + 1, size - 1);
	return 0;
}
