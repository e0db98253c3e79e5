/* fznet.c - loopback plumbing shared by the networked fuzz targets (see fznet.h). */
#include "fznet.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uv_loop_t fznet_the_loop;
static int fznet_ready;
static size_t fznet_baseline;

uv_loop_t *fznet_loop(void)
{
	if (!fznet_ready) {
		if (uv_loop_init(&fznet_the_loop) != 0)
			abort();
		fznet_ready = 1;
	}
	return &fznet_the_loop;
}

static void fznet_count_cb(uv_handle_t *h, void *arg)
{
	(void)h;
	(*(size_t *)arg)++;
}

size_t fznet_handle_count(void)
{
	size_t n = 0;

	uv_walk(fznet_loop(), fznet_count_cb, &n);
	return n;
}

void fznet_mark_baseline(void)
{
	fznet_baseline = fznet_handle_count();
}

static uint64_t fznet_now_ms(void)
{
	return uv_hrtime() / 1000000;
}

/*
 * One turn: waits (at most timeout_ms) for fd to be ready for events or for
 * the loop to have work, then runs the loop once without blocking.
 */
static void fznet_step(int fd, short events, uint64_t timeout_ms)
{
	uv_loop_t *loop = fznet_loop();
	struct pollfd p[2];
	int n = 0, to = uv_backend_timeout(loop);

	if (fd >= 0)
		p[n++] = (struct pollfd){.fd = fd, .events = events};
	p[n++] = (struct pollfd){.fd = uv_backend_fd(loop), .events = POLLIN};
	if (to < 0 || (uint64_t)to > timeout_ms)
		to = (int)timeout_ms;
	(void)poll(p, (nfds_t)n, to);
	uv_run(loop, UV_RUN_NOWAIT);
}

int fznet_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd, one = 1, tries = 0;

	if (inet_pton(AF_INET, FZNET_HOST, &sa.sin_addr) != 1)
		return -1;
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		/* A loopback connect to a listening socket completes in the kernel. */
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(fd);
		if (errno != EADDRNOTAVAIL && errno != EAGAIN && errno != EINTR)
			return -1;
		if (++tries == 200) {
			fprintf(stderr, "fznet: no local port left to connect from\n");
			return -1;
		}
		(void)poll(NULL, 0, 50);
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

void fznet_close(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

size_t fznet_write(int fd, const void *data, size_t len, uint64_t ms)
{
	const uint8_t *p = data;
	uint64_t deadline = fznet_now_ms() + ms;
	size_t sent = 0;

	while (sent < len && fznet_now_ms() < deadline) {
		ssize_t n = send(fd, p + sent, len - sent, MSG_NOSIGNAL);

		if (n > 0) {
			sent += (size_t)n;
			uv_run(fznet_loop(), UV_RUN_NOWAIT);
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			fznet_step(fd, POLLOUT, 10);
		} else {
			break; /* the peer closed: it may do so on bad input */
		}
	}
	return sent;
}

size_t fznet_send(int fd, const void *data, size_t len, uint64_t ms)
{
	size_t sent = fznet_write(fd, data, len, ms);

	(void)shutdown(fd, SHUT_WR);
	return sent;
}

int fznet_drain(int fd, uint64_t ms, uint8_t *out, size_t outlen, size_t *outn)
{
	uint64_t deadline = fznet_now_ms() + ms;
	uint8_t buf[16384];
	size_t kept = 0;
	int rc = -1;

	while (fznet_now_ms() < deadline) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n > 0) {
			size_t take = (size_t)n;

			if (out && take > outlen - kept)
				take = outlen - kept;
			if (out && take)
				memcpy(out + kept, buf, take);
			kept += out ? take : 0;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			fznet_step(fd, POLLIN, 10);
			continue;
		}
		rc = 0; /* EOF or reset */
		break;
	}
	if (outn)
		*outn = kept;
	return rc;
}

ssize_t fznet_recv(int fd, void *buf, size_t len, uint64_t ms)
{
	uint64_t deadline = fznet_now_ms() + ms;

	while (fznet_now_ms() < deadline) {
		ssize_t n = recv(fd, buf, len, 0);

		if (n > 0)
			return n;
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			fznet_step(fd, POLLIN, 10);
			continue;
		}
		return 0;
	}
	return -1;
}

int fznet_run_until(int (*done)(void *), void *arg, uint64_t ms)
{
	uint64_t deadline = fznet_now_ms() + ms;

	while (!done(arg)) {
		if (fznet_now_ms() >= deadline)
			return -1;
		fznet_step(-1, 0, 10);
	}
	return 0;
}

void fznet_settle(uint64_t ms, const char *what)
{
	uv_loop_t *loop = fznet_loop();
	uint64_t deadline = fznet_now_ms() + ms;

	uv_run(loop, UV_RUN_NOWAIT);
	while (fznet_handle_count() != fznet_baseline || loop->active_reqs.count != 0) {
		if (fznet_now_ms() >= deadline) {
			fprintf(stderr,
				"fznet: %s: the loop did not settle %llu ms after the peer left: "
				"%zu handles (idle: %zu), %u requests in flight\n",
				what, (unsigned long long)ms, fznet_handle_count(), fznet_baseline,
				loop->active_reqs.count);
			uv_print_all_handles(loop, stderr);
			abort();
		}
		fznet_step(-1, 0, 10);
	}
}

int fznet_listen(uv_tcp_t *listener, uv_connection_cb cb, void *data)
{
	struct sockaddr_in sa;
	struct sockaddr_storage ss;
	int len = sizeof(ss), rc;

	uv_ip4_addr(FZNET_HOST, 0, &sa);
	uv_tcp_init(fznet_loop(), listener);
	listener->data = data;
	rc = uv_tcp_bind(listener, (struct sockaddr *)&sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)listener, 128, cb);
	if (rc == 0)
		rc = uv_tcp_getsockname(listener, (struct sockaddr *)&ss, &len);
	if (rc < 0)
		return rc;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}
