/*
 * test_http_proxy_proto.c - http_server with proxy_protocol_from, over real
 * loopback sockets whose source address is chosen (127.0.0.x): the header's
 * address becomes the connection's (then trusted_proxies apply), a listed
 * source without a header and a header from an unlisted source are closed,
 * a header may come byte by byte, TLS follows the header, and the TLS
 * handshake cap counts per header address.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "common/cert.h"
#include "net/http.h"
#include "net/tls.h"

#define LB "127.0.0.2"	      /* the listed load balancer */
#define OTHER "127.0.0.3"     /* any other source */
#define GET_WHO "GET /who HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"

/* Answers "socket_addr peer_addr". */
static void h_who(struct http_request *req)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%s %s", req->socket_addr, req->peer_addr);

	http_respond(req, 200, NULL, 0, body, (size_t)n);
}

static const struct http_route routes[] = {{"GET", "/who", h_who, 0, 0}};

struct fixture {
	uv_loop_t loop;
	struct http_server *srv;
	uv_thread_t thread;
	uv_async_t stop;
	int port;
	SSL_CTX *tls;
	struct net_cidr from[1], trusted[1];
	char dir[64];
};

static void on_stop(uv_async_t *a)
{
	struct fixture *f = a->data;

	http_server_stop(f->srv);
	uv_close((uv_handle_t *)a, NULL);
}

static void server_thread(void *arg)
{
	uv_run(&((struct fixture *)arg)->loop, UV_RUN_DEFAULT);
}

/* A server taking PROXY headers from LB; with tls, a TLS one. */
static struct fixture *start(int tls, const struct http_limits *lim, const char *trusted)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct http_server_config cfg = {0};
	char cert[128], key[128], err[256];

	uv_loop_init(&f->loop);
	cfg.host = "127.0.0.1";
	cfg.routes = routes;
	cfg.nroutes = 1;
	cfg.name = "test";
	if (lim)
		cfg.limits = *lim;
	assert_int_equal(net_cidr_parse(LB "/32", &f->from[0]), 0);
	cfg.proxy_protocol_from = f->from;
	cfg.nproxy_protocol_from = 1;
	if (trusted) {
		assert_int_equal(net_cidr_parse(trusted, &f->trusted[0]), 0);
		cfg.trusted_proxies = f->trusted;
		cfg.ntrusted_proxies = 1;
	}
	if (tls) {
		snprintf(f->dir, sizeof(f->dir), "/tmp/lxcm-test-pp-XXXXXX");
		assert_non_null(mkdtemp(f->dir));
		snprintf(cert, sizeof(cert), "%s/s.crt", f->dir);
		snprintf(key, sizeof(key), "%s/s.key", f->dir);
		assert_int_equal(cert_ensure_files(cert, key, "localhost"), 0);
		f->tls = tls_server_ctx_new(cert, key, 0, err, sizeof(err));
		assert_non_null(f->tls);
		cfg.tls = f->tls;
	}
	assert_int_equal(http_server_start(&f->loop, &cfg, &f->srv), 0);
	f->port = http_server_port(f->srv);
	uv_async_init(&f->loop, &f->stop, on_stop);
	f->stop.data = f;
	uv_thread_create(&f->thread, server_thread, f);
	return f;
}

static void stop(struct fixture *f)
{
	char cmd[128];

	uv_async_send(&f->stop);
	uv_thread_join(&f->thread);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	SSL_CTX_free(f->tls);
	if (f->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
		assert_int_equal(system(cmd), 0);
	}
	free(f);
}

/* A socket from source address src to the server, reads timing out after ms. */
static int dial(struct fixture *f, const char *src, int ms)
{
	struct sockaddr_in a, b;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(s >= 0);
	uv_ip4_addr(src, 0, &b);
	assert_int_equal(bind(s, (struct sockaddr *)&b, sizeof(b)), 0);
	uv_ip4_addr("127.0.0.1", f->port, &a);
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return s;
}

static void put(int s, const void *p, size_t n)
{
	assert_int_equal(write(s, p, n), (ssize_t)n);
}

/* Everything until the server closes (or the read timeout); -1 on timeout. */
static long drain(int s, char *out, size_t outlen)
{
	size_t got = 0;
	ssize_t n = 0;

	while (got + 1 < outlen && (n = read(s, out + got, outlen - got - 1)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(s);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : (long)got;
}

/* The body of a whole answer to GET_WHO sent after prefix, from src. */
static const char *who(struct fixture *f, const char *src, const void *prefix, size_t len,
		       char *out, size_t outlen)
{
	int s = dial(f, src, 5000);
	const char *body;

	if (len)
		put(s, prefix, len);
	put(s, GET_WHO, strlen(GET_WHO));
	assert_true(drain(s, out, outlen) > 0);
	assert_non_null(strstr(out, "HTTP/1.1 200"));
	body = strstr(out, "\r\n\r\n");
	assert_non_null(body);
	return body + 4;
}

/*
 * Sent by src with prefix in front of GET_WHO, in one write (the server may
 * close at its first bytes): closed with no answer at all.
 */
static void refused(struct fixture *f, const char *src, const void *prefix, size_t len)
{
	int s = dial(f, src, 5000);
	char out[512];

	if (len)
		memcpy(out, prefix, len);
	memcpy(out + len, GET_WHO, strlen(GET_WHO));
	put(s, out, len + strlen(GET_WHO));
	assert_int_equal(drain(s, out, sizeof(out)), 0);
}

#define V1 "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n"
static const unsigned char v2_tcp6[] = {
	/* signature, PROXY, TCP6, 36 + 5 bytes */
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
	0x55, 0x49, 0x54, 0x0A, 0x21, 0x21, 0x00, 0x29,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, /* 2001:db8::42 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x12, 0x34, 0x01, 0xbb,
	0x04, 0x00, 0x02, 'x', 'y', /* a NOOP TLV */
};
static const unsigned char v2_local[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
					 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00};

static void test_header_address(void **state)
{
	struct fixture *f = start(0, NULL, NULL);
	char out[1024];
	int s;
	size_t i;

	(void)state;
	assert_string_equal(who(f, LB, V1, strlen(V1), out, sizeof(out)),
			    "203.0.113.7 203.0.113.7");
	assert_string_equal(who(f, LB, v2_tcp6, sizeof(v2_tcp6), out, sizeof(out)),
			    "2001:db8::42 2001:db8::42");
	/* A health check (v2 LOCAL) and UNKNOWN keep the socket's address. */
	assert_string_equal(who(f, LB, v2_local, sizeof(v2_local), out, sizeof(out)), LB " " LB);
	assert_string_equal(who(f, LB, "PROXY UNKNOWN\r\n", 15, out, sizeof(out)), LB " " LB);
	/* Other sources are served as before. */
	assert_string_equal(who(f, OTHER, NULL, 0, out, sizeof(out)), OTHER " " OTHER);
	/* The header byte by byte, the request right behind it in the last read. */
	s = dial(f, LB, 5000);
	for (i = 0; i < sizeof(v2_tcp6) - 1; i++) {
		put(s, v2_tcp6 + i, 1);
		usleep(2000);
	}
	{
		char last[256];

		last[0] = (char)v2_tcp6[sizeof(v2_tcp6) - 1];
		memcpy(last + 1, GET_WHO, strlen(GET_WHO));
		put(s, last, 1 + strlen(GET_WHO));
	}
	assert_true(drain(s, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "\r\n\r\n2001:db8::42 2001:db8::42"));
	stop(f);
}

static void test_refusals(void **state)
{
	struct fixture *f = start(0, NULL, NULL);

	(void)state;
	/* From the load balancer: no header, a bad one, a lone LF. */
	refused(f, LB, NULL, 0);
	refused(f, LB, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 080\r\n", 43);
	refused(f, LB, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\n", 41);
	/* From anyone else: a header, whichever version, would be a spoof. */
	refused(f, OTHER, V1, strlen(V1));
	refused(f, OTHER, v2_tcp6, sizeof(v2_tcp6));
	refused(f, OTHER, v2_local, sizeof(v2_local));
	refused(f, OTHER, "PROXY UNKNOWN\r\n", 15);
	stop(f);
}

/* A header that stops coming is cut by the header timeout, or by EOF. */
static void test_truncated(void **state)
{
	struct http_limits lim = {.header_timeout_ms = 300};
	struct fixture *f = start(0, &lim, NULL);
	char out[64];
	int s;

	(void)state;
	s = dial(f, LB, 5000);
	put(s, V1, 20);
	assert_int_equal(drain(s, out, sizeof(out)), 0); /* closed, not our 5 s */
	s = dial(f, LB, 5000);
	put(s, v2_tcp6, 15);
	assert_int_equal(drain(s, out, sizeof(out)), 0);
	s = dial(f, LB, 5000);
	put(s, v2_tcp6, 30);
	shutdown(s, SHUT_WR);
	assert_int_equal(drain(s, out, sizeof(out)), 0);
	stop(f);
}

/* --trusted-proxy starts from the header's address. */
static void test_trusted_proxy_on_top(void **state)
{
	struct fixture *f = start(0, NULL, "203.0.113.0/24");
	const char *req = V1 "GET /who HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.9\r\n"
			     "Connection: close\r\n\r\n";
	char out[1024];
	int s = dial(f, LB, 5000);

	(void)state;
	put(s, req, strlen(req));
	assert_true(drain(s, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "\r\n\r\n203.0.113.7 198.51.100.9"));
	stop(f);
}

/* TLS after the header, in the same read or not; the handshake cap per header address. */
static void test_tls(void **state)
{
	struct http_limits lim = {.max_handshakes_per_ip = 2};
	struct fixture *f = start(1, &lim, NULL);
	struct tls_client_opts to = {0};
	char err[128], out[1024], c;
	SSL_CTX *ctx = tls_client_ctx_new(&to, err, sizeof(err));
	SSL *ssl;
	int s, held[3], i, n;

	(void)state;
	assert_non_null(ctx);
	s = dial(f, LB, 5000);
	put(s, V1, strlen(V1));
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, s);
	assert_int_equal(SSL_connect(ssl), 1);
	assert_int_equal(SSL_write(ssl, GET_WHO, (int)strlen(GET_WHO)), (int)strlen(GET_WHO));
	n = 0;
	while (n < (int)sizeof(out) - 1 &&
	       (i = SSL_read(ssl, out + n, (int)sizeof(out) - 1 - n)) > 0)
		n += i;
	out[n] = '\0';
	assert_non_null(strstr(out, "\r\n\r\n203.0.113.7 203.0.113.7"));
	SSL_free(ssl);
	close(s);
	/* Two handshakes pending for 198.51.100.1: a third from it is cut... */
	for (i = 0; i < 3; i++) {
		held[i] = dial(f, LB, 500);
		put(held[i], "PROXY TCP4 198.51.100.1 127.0.0.1 1000 443\r\n", 44);
		usleep(100000);
	}
	assert_int_equal(read(held[2], &c, 1), 0);
	/* ...but not one for another client of the same load balancer. */
	s = dial(f, LB, 500);
	put(s, "PROXY TCP4 198.51.100.2 127.0.0.1 1000 443\r\n", 44);
	assert_int_equal(read(s, &c, 1), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	close(s);
	for (i = 0; i < 3; i++)
		close(held[i]);
	SSL_CTX_free(ctx);
	stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_address),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_trusted_proxy_on_top),
		cmocka_unit_test(test_tls),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
