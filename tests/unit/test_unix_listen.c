/*
 * test_unix_listen.c - the file of a listening unix socket
 * (net/unix_listen.c): created 0600 whatever the umask, a stale socket
 * replaced, a live one and a non-socket refused, removed only while it is
 * still the one made; and an http_server on a unix socket.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/http.h"
#include "net/unix_listen.h"

struct fx {
	char dir[64];
	char path[128];
	uv_loop_t loop;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/lxcm-test-unix-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/s.sock", f->dir);
	uv_loop_init(&f->loop);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int bind_pipe(struct fx *f, uv_pipe_t *p, struct unix_listen_id *id)
{
	uv_pipe_init(&f->loop, p, 0);
	return unix_listen_bind(p, f->path, id);
}

static void close_pipe(struct fx *f, uv_pipe_t *p)
{
	uv_close((uv_handle_t *)p, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Mode 0600 even under umask 0 (the bind narrows it), and the umask is restored. */
static void test_mode_0600(void **state)
{
	struct fx *f = *state;
	struct unix_listen_id id;
	struct stat st;
	uv_pipe_t p;
	mode_t old = umask(0);

	assert_int_equal(bind_pipe(f, &p, &id), 0);
	assert_int_equal(umask(old), 0);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	unix_listen_remove(f->path, &id);
	assert_int_not_equal(access(f->path, F_OK), 0);
	close_pipe(f, &p);
}

/* Connections are left in the backlog: only the probe of the second bind comes. */
static void on_conn(uv_stream_t *server, int status)
{
	(void)server;
	(void)status;
}

/* A socket file nobody listens on is replaced; one that answers is not. */
static void test_stale_and_live(void **state)
{
	struct fx *f = *state;
	struct unix_listen_id id, id2;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uv_pipe_t p, p2;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s); /* stale: the file stays, nobody listens */
	assert_int_equal(bind_pipe(f, &p, &id), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&p, 8, on_conn), 0);
	/* Now it is live: a second bind is refused and the first keeps its file. */
	assert_int_equal(bind_pipe(f, &p2, &id2), -EADDRINUSE);
	close_pipe(f, &p2);
	unix_listen_remove(f->path, &id2); /* not its file: nothing happens */
	assert_int_equal(access(f->path, F_OK), 0);
	unix_listen_remove(f->path, &id);
	assert_int_not_equal(access(f->path, F_OK), 0);
	close_pipe(f, &p);
}

/* A regular file, a directory or a symbolic link at the path is left alone. */
static void test_not_a_socket(void **state)
{
	struct fx *f = *state;
	struct unix_listen_id id;
	struct stat st;
	uv_pipe_t p;
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	fputs("keep", fp);
	fclose(fp);
	assert_int_equal(bind_pipe(f, &p, &id), -EEXIST);
	close_pipe(f, &p);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 4);
	unlink(f->path);
	assert_int_equal(symlink("/nonexistent", f->path), 0);
	assert_int_equal(bind_pipe(f, &p, &id), -EEXIST);
	close_pipe(f, &p);
	unlink(f->path);
}

/* Replaced after the bind (another proxy took the path): not removed. */
static void test_remove_only_ours(void **state)
{
	struct fx *f = *state;
	struct unix_listen_id id;
	uv_pipe_t p;
	FILE *fp;

	assert_int_equal(bind_pipe(f, &p, &id), 0);
	unlink(f->path);
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	fclose(fp);
	unix_listen_remove(f->path, &id);
	assert_int_equal(access(f->path, F_OK), 0);
	close_pipe(f, &p);
}

static void test_too_long(void **state)
{
	struct fx *f = *state;
	struct unix_listen_id id;
	char longp[200];
	uv_pipe_t p;

	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	uv_pipe_init(&f->loop, &p, 0);
	assert_int_equal(unix_listen_bind(&p, longp, &id), -ENAMETOOLONG);
	assert_int_equal(unix_listen_bind(&p, "", &id), -EINVAL);
	close_pipe(f, &p);
}

static void h_ok(struct http_request *req)
{
	http_respond(req, 200, NULL, 0, "unix", 4);
}

static const struct http_route routes[] = {{"GET", "/x", h_ok, 0, 0}};

/* An http_server on a unix socket answers; its peers are "unix"; stop removes the file. */
static void test_http_server_unix(void **state)
{
	struct fx *f = *state;
	struct http_server_config cfg = {0};
	struct http_server *srv = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *req = "GET /x HTTP/1.1\r\nHost: unix.socket\r\nConnection: close\r\n\r\n";
	char out[512];
	int s;

	cfg.unix_path = f->path;
	cfg.routes = routes;
	cfg.nroutes = 1;
	assert_int_equal(http_server_start(&f->loop, &cfg, &srv), 0);
	assert_int_equal(http_server_port(srv), 0);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(s, req, strlen(req)), (ssize_t)strlen(req));
	memset(out, 0, sizeof(out));
	for (int i = 0; i < 200 && strstr(out, "\r\n\r\nunix") == NULL; i++) {
		size_t have = strlen(out);
		ssize_t n;

		uv_run(&f->loop, UV_RUN_NOWAIT);
		n = read(s, out + have, sizeof(out) - have - 1);
		if (n <= 0)
			usleep(5000);
	}
	assert_non_null(strstr(out, "HTTP/1.1 200"));
	close(s);
	http_server_stop(srv);
	assert_int_not_equal(access(f->path, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_mode_0600, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_and_live, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_only_ours, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_server_unix, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
