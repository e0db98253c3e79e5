/*
 * fuzz_api.c - both listeners of lxcm-server with their real route tables,
 * pre_route hooks and handlers (src/server: api.c, connector.c, auth.c,
 * proxy.c, tunnels.c, cluster_json.c) on a real SQLite store, over loopback
 * TCP inside the fuzzer process. Plaintext: TLS is not what is fuzzed here.
 *
 * The server is fzserver.c's: a request to the connector with an
 * "X-Fuzz-Cert" header comes from the enrolled cluster "enrolled" (over
 * plaintext this stands in for its TLS client certificate; no name in a
 * body is ever believed, so this is the strongest peer a hostile cluster
 * can be). The management listener wants "Authorization: Bearer lxcm_fuzz".
 *
 * Byte 0 of the input picks the mode (low 3 bits):
 *   0     the rest is raw bytes to the management listener
 *   1, 6  the rest is raw bytes to the connector (e.g. a tunnel upgrade
 *         followed by WebSocket frames carrying HTTP/2, or v1 frames)
 *   2     the rest is the JSON body of a join, POST /1.0/remote-cluster
 *         (cluster "joinme" has a live join token before each such input)
 *   3     the rest is the body of a status heartbeat of "enrolled", which
 *         is then read back with GET /1.0/remote-cluster/enrolled
 *   4     the rest is the body of PATCH /1.0/remote-cluster/enrolled
 *   5     the rest is the body of POST /1.0/remote-cluster-join-token
 *   7     the rest is the body of POST /1.0/auth/tokens (API tokens)
 * In the body modes the request head is made here, with the right
 * Content-Length. Every answer must be a well-formed HTTP/1.1 response
 * carrying an LXD-style JSON envelope, and the loop must settle between
 * inputs (no connection, timer or database job left behind).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <llhttp.h>

#include "common/buf.h"
#include "fuzz.h"
#include "fznet.h"
#include "fzserver.h"

#define FZ_API_TOKEN FZSERVER_API_TOKEN

static struct server *fz_srv;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_srv = fzserver_start();
	fznet_mark_baseline();
	return 0;
}

/* ---- the replies ---- */

struct fz_reply {
	int status;
	struct buf body;
	int upgraded;
};

static int fz_on_headers(llhttp_t *p)
{
	struct fz_reply *r = p->data;

	r->status = p->status_code;
	buf_reset(&r->body);
	if (p->status_code == 101) {
		r->upgraded = 1;
		return 2; /* no body: what follows is WebSocket */
	}
	return 0;
}

static int fz_on_body(llhttp_t *p, const char *at, size_t len)
{
	struct fz_reply *r = p->data;

	(void)buf_append(&r->body, at, len);
	return 0;
}

/* Every complete answer must carry the JSON envelope. */
static int fz_on_message_complete(llhttp_t *p)
{
	struct fz_reply *r = p->data;
	json_t *env;

	if (r->status == 101 || r->status == 204 || r->body.len == 0)
		return 0;
	env = json_loadb(r->body.data, r->body.len, 0, NULL);
	if (!json_is_object(env) || !json_is_string(json_object_get(env, "type"))) {
		fprintf(stderr, "fuzz_api: a %d answer without a JSON envelope: %.*s\n", r->status,
			(int)(r->body.len > 300 ? 300 : r->body.len), r->body.data);
		abort();
	}
	json_decref(env);
	return 0;
}

static void fz_check_reply(const uint8_t *reply, size_t len)
{
	llhttp_settings_t st;
	llhttp_t p;
	llhttp_errno_t err;
	struct fz_reply r = {0};

	llhttp_settings_init(&st);
	st.on_headers_complete = fz_on_headers;
	st.on_body = fz_on_body;
	st.on_message_complete = fz_on_message_complete;
	llhttp_init(&p, HTTP_RESPONSE, &st);
	p.data = &r;
	buf_init(&r.body, 1 << 24);
	err = llhttp_execute(&p, (const char *)reply, len);
	if (err != HPE_OK && !(r.upgraded && (err == HPE_PAUSED_UPGRADE ||
					       err == HPE_CB_HEADERS_COMPLETE))) {
		fprintf(stderr, "fuzz_api: the server's reply is not HTTP/1.1: %s (%s)\n",
			llhttp_errno_name(err), llhttp_get_error_reason(&p));
		abort();
	}
	buf_free(&r.body);
}

/* ---- one exchange ---- */

static void fz_exchange(int port, const void *data, size_t len, int check)
{
	static uint8_t reply[1 << 20];
	size_t n = 0;
	int fd = fznet_connect(port);

	FUZZ_CHECK(fd >= 0);
	fznet_send(fd, data, len, 2000);
	(void)fznet_drain(fd, 5000, reply, sizeof(reply), &n);
	fznet_close(fd);
	fznet_settle(8000, "fuzz_api");
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "%.*s\n----\n", (int)n, reply);
	if (check)
		fz_check_reply(reply, n);
}

static void fz_body_request(int port, const char *method, const char *path, int cert,
			    const uint8_t *body, size_t len)
{
	struct buf req;

	buf_init(&req, len + 1024);
	FUZZ_CHECK(buf_printf(&req,
			      "%s %s HTTP/1.1\r\nHost: lxcm\r\nContent-Type: application/json\r\n"
			      "Content-Length: %zu\r\n%s%s\r\n",
			      method, path, len, cert ? "X-Fuzz-Cert: 1\r\n" : "",
			      cert ? "" : "Authorization: Bearer " FZ_API_TOKEN "\r\n") == 0);
	FUZZ_CHECK(buf_append(&req, body, len) == 0);
	fz_exchange(port, req.data, req.len, 1);
	buf_free(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char get_enrolled[] = "GET /1.0/remote-cluster/enrolled HTTP/1.1\r\n"
					   "Host: lxcm\r\nAuthorization: Bearer " FZ_API_TOKEN
					   "\r\n\r\n";
	int mport = http_server_port(fz_srv->management);
	int cport = http_server_port(fz_srv->connector);
	unsigned mode;

	if (size == 0)
		return 0;
	mode = data[0] & 7;
	data++;
	size--;
	fzserver_rearm_auth();
	switch (mode) {
	case 0:
		/* HEAD answers have a Content-Length and no body: not checked. */
		fz_exchange(mport, data, size, memmem(data, size, "HEAD", 4) == NULL);
		break;
	case 1:
	case 6:
		fz_exchange(cport, data, size, memmem(data, size, "HEAD", 4) == NULL);
		break;
	case 2:
		fzserver_rearm_join();
		fz_body_request(cport, "POST", "/1.0/remote-cluster", 0, data, size);
		break;
	case 3:
		fz_body_request(cport, "POST", "/1.0/remote-cluster/status", 1, data, size);
		fz_exchange(mport, get_enrolled, sizeof(get_enrolled) - 1, 1);
		break;
	case 4:
		fz_body_request(mport, "PATCH", "/1.0/remote-cluster/enrolled", 0, data, size);
		break;
	case 5:
		fz_body_request(mport, "POST", "/1.0/remote-cluster-join-token", 0, data, size);
		break;
	case 7:
		fz_body_request(mport, "POST", "/1.0/auth/tokens", 0, data, size);
		break;
	}
	return 0;
}
