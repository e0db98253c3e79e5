/*
 * fuzz_tunnel_v1.c - tunnel v1 (MicroCloud's JSON frames) from a hostile
 * cluster (src/server/tunnel_v1.c, session_cookies.c, behind the real
 * connector and proxy route), in an lxcm-server inside the fuzzer process
 * (fzserver.c), over loopback.
 *
 * Each input: the fuzzer, as the enrolled cluster, opens a WebSocket to
 * /1.0/remote-cluster/ws without the v2 subprotocol (a v1 tunnel); two
 * operators send requests through the proxy route (a GET with a session
 * cookie and a POST with a body); the cluster reads their two request
 * frames and learns their uuids. Then the input is what the cluster answers:
 * it is cut at lines "----" into messages, "@UUID1@" and "@UUID2@" are
 * replaced by the uuids of the GET and the POST, and each message goes out
 * as one masked WebSocket frame (text; binary when bit 0 of byte 0 is set,
 * byte 0 being a flags byte). The cluster then closes its side, so requests
 * it did not answer get 502 at once.
 *
 * Invariants: each operator gets exactly one well-formed HTTP/1.1 response
 * (so no header or response splitting from frame content) with a status
 * from 200 to 599, and the loop settles between inputs.
 *
 * Control characters in response header values (0x01-0x1f but HTAB, and
 * 0x7f) make the reply a 502 (v1_is_field_value); the reply is checked by
 * a strict parser (seed ctl_in_header_value).
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

#define FZ_AUTH "Authorization: Bearer " FZSERVER_API_TOKEN "\r\n"

static struct server *fz_srv;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_srv = fzserver_start();
	fznet_mark_baseline();
	return 0;
}

/* ---- the cluster's side of the WebSocket ---- */

/* Reads until the end of the 101 head; bytes after it stay in *in. */
static int fz_read_upgrade(int fd, struct buf *in)
{
	char tmp[4096];
	const char *end;
	ssize_t n;

	while ((end = in->len ? memmem(in->data, in->len, "\r\n\r\n", 4) : NULL) == NULL) {
		n = fznet_recv(fd, tmp, sizeof(tmp), 3000);
		if (n <= 0 || buf_append(in, tmp, (size_t)n) < 0)
			return -1;
	}
	if (in->len < 12 || memcmp(in->data, "HTTP/1.1 101", 12) != 0)
		return -1;
	buf_consume(in, (size_t)(end + 4 - in->data));
	return 0;
}

/*
 * Takes one whole unmasked frame from the front of in: its opcode and
 * payload (copied to *payload, a buf the caller frees). 1 when one was
 * there, 0 when more bytes are needed.
 */
static int fz_take_frame(struct buf *in, int *opcode, struct buf *payload)
{
	const uint8_t *p = (const uint8_t *)in->data;
	size_t head = 2, len, i;

	if (in->len < 2)
		return 0;
	len = p[1] & 0x7f;
	if (len == 126) {
		head = 4;
		if (in->len < head)
			return 0;
		len = (size_t)p[2] << 8 | p[3];
	} else if (len == 127) {
		head = 10;
		if (in->len < head)
			return 0;
		for (len = 0, i = 2; i < 10; i++)
			len = len << 8 | p[i];
	}
	FUZZ_CHECK(!(p[1] & 0x80)); /* a server never masks */
	if (in->len - head < len)
		return 0;
	*opcode = p[0] & 0x0f;
	buf_reset(payload);
	FUZZ_CHECK(buf_append(payload, p + head, len) == 0);
	buf_consume(in, head + len);
	return 1;
}

/* One masked frame (mask 0: the mask key does not matter to the server). */
static void fz_frame(struct buf *out, int opcode, const uint8_t *data, size_t len)
{
	uint8_t h[14];
	size_t n = 0;

	h[n++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		h[n++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		h[n++] = 0x80 | 126;
		h[n++] = (uint8_t)(len >> 8);
		h[n++] = (uint8_t)len;
	} else {
		h[n++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			h[n++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	memset(h + n, 0, 4);
	n += 4;
	FUZZ_CHECK(buf_append(out, h, n) == 0 && buf_append(out, data, len) == 0);
}

/*
 * Reads request frames until both uuids are known (uuid[0] for the GET,
 * uuid[1] for the POST) or the deadline passes; either may stay "".
 */
static void fz_read_requests(int fd, struct buf *in, char uuid[2][64])
{
	struct buf payload;
	char tmp[65536];
	int opcode, got = 0;
	ssize_t n;

	buf_init(&payload, 64 << 20);
	while (got < 2) {
		while (got < 2 && fz_take_frame(in, &opcode, &payload)) {
			json_t *f = json_loadb(payload.data, payload.len, 0, NULL);
			json_t *id = json_object_get(f, "uuid");
			const char *m = json_string_value(json_object_get(f, "method"));
			int k = m && strcmp(m, "POST") == 0;

			FUZZ_CHECK(opcode == 1 && json_is_string(id) && m != NULL);
			FUZZ_CHECK(json_string_length(id) < 64);
			memcpy(uuid[k], json_string_value(id), json_string_length(id) + 1);
			got++;
			json_decref(f);
		}
		if (got == 2)
			break;
		n = fznet_recv(fd, tmp, sizeof(tmp), 3000);
		if (n <= 0 || buf_append(in, tmp, (size_t)n) < 0)
			break;
	}
	buf_free(&payload);
}

/* The input's messages, uuids filled in, as frames. */
static void fz_answers(const uint8_t *data, size_t size, char uuid[2][64], struct buf *out)
{
	int opcode = size && (data[0] & 1) ? 2 : 1;
	const uint8_t *p;
	struct buf msg;
	size_t len, i;

	if (size) {
		data++;
		size--;
	}
	buf_init(&msg, 64 << 20);
	while ((p = fuzz_next_part(&data, &size, &len)) != NULL) {
		buf_reset(&msg);
		for (i = 0; i < len; i++) {
			if (len - i >= 7 && (memcmp(p + i, "@UUID1@", 7) == 0 ||
					     memcmp(p + i, "@UUID2@", 7) == 0)) {
				buf_append_str(&msg, uuid[p[i + 5] - '1']);
				i += 6;
			} else {
				buf_append(&msg, p + i, 1);
			}
		}
		fz_frame(out, opcode, (const uint8_t *)msg.data, msg.len);
	}
	buf_free(&msg);
}

/* ---- the operators' side ---- */

static int fz_responses, fz_bad_status;

static int fz_on_complete(llhttp_t *p)
{
	fz_responses++;
	if (p->status_code < 200 || p->status_code > 599)
		fz_bad_status = p->status_code;
	return 0;
}

static llhttp_errno_t fz_parse(const uint8_t *reply, size_t len, llhttp_t *p)
{
	static llhttp_settings_t st;
	llhttp_errno_t err;

	llhttp_settings_init(&st);
	st.on_message_complete = fz_on_complete;
	llhttp_init(p, HTTP_RESPONSE, &st);
	fz_responses = 0;
	fz_bad_status = 0;
	err = llhttp_execute(p, (const char *)reply, len);
	return err == HPE_OK ? llhttp_finish(p) : err;
}

/* Exactly one well-formed response, all of the bytes. */
static void fz_check_reply(const uint8_t *reply, size_t len, const char *what)
{
	llhttp_t p;
	llhttp_errno_t err = fz_parse(reply, len, &p);

	if (err != HPE_OK || fz_responses != 1 || fz_bad_status) {
		fprintf(stderr,
			"fuzz_tunnel_v1: %s got %d responses (%s, status %d), not exactly one "
			"well-formed one:\n%.*s\n",
			what, fz_responses, llhttp_errno_name(err), fz_bad_status,
			(int)(len > 2000 ? 2000 : len), reply);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char upgrade[] = "GET /1.0/remote-cluster/ws HTTP/1.1\r\nHost: lxcm\r\n"
				      "X-Fuzz-Cert: 1\r\nUpgrade: websocket\r\n"
				      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
				      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
	static const char get[] = "GET /1.0/remote-cluster/enrolled/tunnel/1.0/instances?"
				  "recursion=1 HTTP/1.1\r\nHost: lxcm\r\n" FZ_AUTH
				  "Cookie: session=abc; lxcm_x=1\r\nConnection: close\r\n\r\n";
	static const char post[] = "POST /1.0/remote-cluster/enrolled/tunnel/1.0/instances "
				   "HTTP/1.1\r\nHost: lxcm\r\n" FZ_AUTH
				   "Content-Type: application/json\r\nContent-Length: 13\r\n"
				   "Connection: close\r\n\r\n{\"name\":\"c1\"}";
	static uint8_t reply[2][1 << 20];
	size_t n[2] = {0, 0};
	char uuid[2][64] = {"", ""};
	struct buf in, out;
	int ws, op[2], i;

	buf_init(&in, 64 << 20);
	buf_init(&out, 64 << 20);
	ws = fznet_connect(http_server_port(fz_srv->connector));
	FUZZ_CHECK(ws >= 0);
	fznet_write(ws, upgrade, sizeof(upgrade) - 1, 2000);
	FUZZ_CHECK(fz_read_upgrade(ws, &in) == 0);
	op[0] = fznet_connect(http_server_port(fz_srv->management));
	op[1] = fznet_connect(http_server_port(fz_srv->management));
	FUZZ_CHECK(op[0] >= 0 && op[1] >= 0);
	fznet_write(op[0], get, sizeof(get) - 1, 2000);
	fznet_write(op[1], post, sizeof(post) - 1, 2000);
	fz_read_requests(ws, &in, uuid);
	FUZZ_CHECK(uuid[0][0] && uuid[1][0]);
	fz_answers(data, size, uuid, &out);
	fznet_send(ws, out.data, out.len, 3000);
	for (i = 0; i < 2; i++) {
		(void)fznet_drain(op[i], 5000, reply[i], sizeof(reply[i]), &n[i]);
		fznet_close(op[i]);
	}
	(void)fznet_drain(ws, 8000, NULL, 0, NULL);
	fznet_close(ws);
	fznet_settle(8000, "fuzz_tunnel_v1");
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "GET:\n%.*s\n----\nPOST:\n%.*s\n", (int)n[0], reply[0], (int)n[1],
			reply[1]);
	fz_check_reply(reply[0], n[0], "the GET");
	fz_check_reply(reply[1], n[1], "the POST");
	buf_free(&in);
	buf_free(&out);
	return 0;
}
