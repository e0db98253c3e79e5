/*
 * fuzz_tunnel_direct.c - the direct tunnel transport's server side, from a
 * hostile agent: the bytes that follow the TLS handshake (ALPN
 * lxcm-tunnel.v2) into connector_direct.c, the store lookup of the
 * certificate, tunnels_attach_direct, the registry's wiring over
 * tunnel_transport.c and the manager's HTTP/2 session (tunnel_h2.c), with
 * fzserver.c's SQLite store, over loopback inside the fuzzer process.
 *
 * TLS itself is fuzz_tls's: here the listener hands each accepted
 * plaintext conn to connector_direct_accept as conn.c's ALPN handover
 * does, claiming a client certificate (conn__set_peer_fingerprint).
 *
 * Byte 0 of the input holds flags:
 *   bit 0  the certificate is not enrolled (the refusal path)
 *   bit 1  no certificate at all (the refusal path)
 *   bit 2  while the tunnel is up, a user's GET through the management
 *          proxy (stream 1, which the input may answer)
 * The rest is what the agent sends (its SETTINGS first), cut at lines
 * "----" into separate writes; then the agent half-closes and reads until
 * the end. Invariants: the manager always speaks first with the HTTP/2
 * connection preface; a refused agent gets a GOAWAY with
 * INADEQUATE_SECURITY; the tunnel is gone from the registry once the agent
 * has gone; and the loop settles between inputs (fznet_settle).
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "fznet.h"
#include "fzserver.h"
#include "net/conn.h"
#include "server/tunnels.h"

#define FZ_F_STRANGER 0x01
#define FZ_F_NOCERT 0x02
#define FZ_F_REQUEST 0x04

#define FZ_AUTH "Authorization: Bearer " FZSERVER_API_TOKEN "\r\n"
#define FZ_STRANGER_FP "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e"
#define FZ_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static struct server *fz_srv;
static uv_tcp_t fz_listener;
static int fz_port;
static unsigned fz_flags;

static void fz_placeholder_close(struct conn *c)
{
	(void)c;
}

/* Until connector_direct_accept sets its own (it does at once). */
static const struct conn_callbacks fz_accept_cbs = {.on_close = fz_placeholder_close};

/* What conn.c does after a handshake that selected lxcm-tunnel.v2. */
static void fz_on_connection(uv_stream_t *listener, int status)
{
	struct conn *c;

	if (status < 0)
		return;
	c = conn_new(fz_srv->loop, NULL, &fz_accept_cbs, NULL);
	FUZZ_CHECK(c != NULL);
	if (conn_accept(c, listener) < 0) {
		conn_close(c);
		return;
	}
	if (!(fz_flags & FZ_F_NOCERT))
		conn__set_peer_fingerprint(c, (fz_flags & FZ_F_STRANGER) ? FZ_STRANGER_FP
									  : FZSERVER_ENROLLED_FP);
	connector_direct_accept(c, fz_srv);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_srv = fzserver_start();
	fz_port = fznet_listen(&fz_listener, fz_on_connection, NULL);
	FUZZ_CHECK(fz_port > 0);
	fznet_mark_baseline();
	return 0;
}

static int fz_stream_open(void *arg)
{
	struct tunnel_entry *e = tunnels_get(fz_srv->tunnels, "enrolled");

	(void)arg;
	return e != NULL && e->t != NULL && tunnel_h2_active_streams(e->t) > 0;
}

/* The manager's first bytes: the preface (and SETTINGS), read before the input goes. */
static size_t fz_read_preface(int fd, uint8_t *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;

	while (n < sizeof(FZ_PREFACE) - 1 + 9) {
		r = fznet_recv(fd, buf + n, cap - n, 3000);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	return n;
}

/* Finds a GOAWAY frame in the manager's bytes after the preface; its error code or -1. */
static long fz_goaway_code(const uint8_t *p, size_t n)
{
	size_t off = sizeof(FZ_PREFACE) - 1, len;

	while (off + 9 <= n) {
		len = ((size_t)p[off] << 16) | ((size_t)p[off + 1] << 8) | p[off + 2];
		if (p[off + 3] == 7 && off + 9 + 8 <= n && len >= 8)
			return ((long)p[off + 13] << 24) | ((long)p[off + 14] << 16) |
			       ((long)p[off + 15] << 8) | p[off + 16];
		off += 9 + len;
	}
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char get[] = "GET /1.0/remote-cluster/enrolled/tunnel/1.0/instances "
				  "HTTP/1.1\r\nHost: lxcm\r\n" FZ_AUTH "Connection: close\r\n\r\n";
	static uint8_t reply[1 << 20];
	size_t n = 0, more = 0, len;
	const uint8_t *p;
	int refused, fd, op = -1;

	if (size < 1)
		return 0;
	fz_flags = data[0];
	data++;
	size--;
	refused = (fz_flags & (FZ_F_STRANGER | FZ_F_NOCERT)) != 0;
	fd = fznet_connect(fz_port);
	FUZZ_CHECK(fd >= 0);
	n = fz_read_preface(fd, reply, sizeof(reply));
	FUZZ_CHECK(n >= sizeof(FZ_PREFACE) - 1 &&
		   memcmp(reply, FZ_PREFACE, sizeof(FZ_PREFACE) - 1) == 0);
	if (!refused && (fz_flags & FZ_F_REQUEST)) {
		op = fznet_connect(http_server_port(fz_srv->management));
		FUZZ_CHECK(op >= 0);
		fznet_write(op, get, sizeof(get) - 1, 2000);
		(void)fznet_run_until(fz_stream_open, NULL, 3000);
	}
	while ((p = fuzz_next_part(&data, &size, &len)) != NULL)
		fznet_write(fd, p, len, 2000);
	fznet_send(fd, "", 0, 2000);
	(void)fznet_drain(fd, 8000, reply + n, sizeof(reply) - n, &more);
	n += more;
	fznet_close(fd);
	if (refused)
		FUZZ_CHECK(fz_goaway_code(reply, n) == 0xc);
	if (op >= 0) {
		(void)fznet_drain(op, 8000, NULL, 0, NULL);
		fznet_close(op);
	}
	fznet_settle(8000, "fuzz_tunnel_direct");
	FUZZ_CHECK(tunnels_get(fz_srv->tunnels, "enrolled") == NULL);
	return 0;
}
