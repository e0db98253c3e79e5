/*
 * memparts.c - heap bytes of the pieces of one idle tunnel on the server,
 * measured with mallinfo2 around 1000 of each: an nghttp2 session in the
 * manager role (tunnel_h2_new) and an OpenSSL server
 * SSL object after a handshake over memory BIOs (with the connector's
 * context options: SSL_MODE_RELEASE_BUFFERS, client certificate requested).
 * The session's 16 KiB frame buffer is mapped on its own (tunnel_h2.c,
 * "nghttp2's memory"), outside the heap: the sessions' RSS is printed too.
 * bench/fleet builds and runs it (same flags as fleetgen). Output: KiB per piece.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "common/cert.h"
#include "net/tls.h"
#include "net/tunnel_h2.h"

#define N 1000

static size_t heap(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}

/* Resident KiB of this process (/proc/self/statm). */
static double rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	char line[128];
	char *end;
	long long pages = 0;

	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) != NULL) {
		strtoll(line, &end, 10);
		pages = strtoll(end, NULL, 10);
	}
	fclose(f);
	return (double)pages * (double)sysconf(_SC_PAGESIZE) / 1024;
}

static int nosend(void *io, const uint8_t *d, size_t n)
{
	(void)io;
	(void)d;
	(void)n;
	return 1;
}

/* Moves bytes between two memory BIO pairs until neither side has output. */
static void pump(SSL *cli, SSL *srv, BIO *c_out, BIO *s_in, BIO *s_out, BIO *c_in)
{
	char buf[16384];
	int i, n, moved;

	for (i = 0; i < 50; i++) {
		SSL_do_handshake(cli);
		SSL_do_handshake(srv);
		moved = 0;
		while ((n = BIO_read(c_out, buf, sizeof(buf))) > 0) {
			BIO_write(s_in, buf, n);
			moved = 1;
		}
		while ((n = BIO_read(s_out, buf, sizeof(buf))) > 0) {
			BIO_write(c_in, buf, n);
			moved = 1;
		}
		if (!moved && SSL_is_init_finished(cli) && SSL_is_init_finished(srv))
			break;
	}
}

int main(void)
{
	static struct tunnel_h2 *t[N];
	static SSL *s[N];
	struct tunnel_h2_io io = {.send = nosend};
	struct tunnel_h2_config cfg = {0};
	struct tls_client_opts co = {0};
	char *cp, *kp, *ccp, *ckp, err[256];
	SSL_CTX *sctx, *cctx;
	size_t h0;
	int i;

	tunnel_h2_config_defaults(&cfg);
	h0 = heap();
	double r0 = rss_kib();
	for (i = 0; i < N; i++) {
		t[i] = tunnel_h2_new(1, &cfg, &io, NULL, NULL);
		tunnel_h2_flush(t[i]);
	}
	printf("nghttp2 session (tunnel_h2_new, manager role): %.1f KiB heap, %.1f KiB RSS\n",
	       (double)(heap() - h0) / N / 1024, (rss_kib() - r0) / N);
	/* The WebSocket codec (src/net/ws.c) keeps no buffer while idle. */

	if (cert_generate("server", 2, &cp, &kp) || cert_generate("client", 2, &ccp, &ckp))
		return 1;
	char dir[] = "/tmp/memparts-XXXXXX", crt[64], key[64];
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(crt, sizeof(crt), "%s/s.crt", dir);
	snprintf(key, sizeof(key), "%s/s.key", dir);
	if ((f = fopen(crt, "w")) == NULL || fputs(cp, f) < 0 || fclose(f) != 0)
		return 1;
	if ((f = fopen(key, "w")) == NULL || fputs(kp, f) < 0 || fclose(f) != 0)
		return 1;
	sctx = tls_server_ctx_new(crt, key, 1, err, sizeof(err));
	unlink(key);
	unlink(crt);
	rmdir(dir);
	co.cert_pem = ccp;
	co.key_pem = ckp;
	cctx = tls_client_ctx_new(&co, err, sizeof(err));
	if (!sctx || !cctx)
		return 1;
	if (getenv("MEMPARTS_NO_SESSION_CACHE")) {
		/* What the connector could do: idle tunnels need no resumable session. */
		SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(sctx, 0);
		printf("(server context: session cache off, no tickets)\n");
	}
	h0 = heap();
	size_t hcli = 0;
	for (i = 0; i < N; i++) {
		SSL *c = SSL_new(cctx);
		BIO *a = BIO_new(BIO_s_mem()), *b = BIO_new(BIO_s_mem());
		BIO *x = BIO_new(BIO_s_mem()), *y = BIO_new(BIO_s_mem());
		size_t before;

		s[i] = SSL_new(sctx);
		SSL_set_accept_state(s[i]);
		SSL_set_connect_state(c);
		SSL_set_bio(c, a, b);	   /* client reads a, writes b */
		SSL_set_bio(s[i], x, y);   /* server reads x, writes y */
		pump(c, s[i], b, x, y, a);
		before = heap();
		SSL_free(c);
		hcli += before - heap();
	}
	printf("OpenSSL server SSL after a handshake (incl. its 2 memory BIOs): %.1f KiB\n",
	       (double)(heap() - h0) / N / 1024);
	printf("(client SSL freed: %.1f KiB each)\n", (double)hcli / N / 1024);
	return 0;
}
