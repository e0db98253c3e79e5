/*
 * test_tunnels.c - the tunnel registry (src/server/tunnels.c) on real
 * loopback WebSockets: an entry of each protocol registers through its
 * upstream table (v2 through tunnels_attach_v2, another protocol as
 * tunnel_v1.c does: tunnels_entry_new, its ops, tunnels_register), is
 * found by its cluster, counted, and described with its protocol's name; a
 * new tunnel of the same cluster replaces the old one, which is closed;
 * removing a cluster from the store drops its tunnel through the change
 * feed, whatever code path removed it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "common/secret.h"
#include "net/conn.h"
#include "net/ws.h"
#include "server/enrolled.h"
#include "server/principal.h"
#include "server/server.h"
#include "server/tunnels.h"
#include "server/upstream.h"
#include "store/store_async.h"

#define NOW 1700000000
#define CERT "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

/* tunnels.c's WebSocket callbacks for v2 (the connector's accept hands them out). */
const struct ws_callbacks *tunnels_v2_ws_callbacks(void);

struct fixture {
	char dir[64];
	char path[128];
	uv_loop_t loop;
	struct server srv;
	uv_tcp_t listener;
	int port;
	struct ws *accepted; /* the server end of the last pair */
	const struct ws_callbacks *next_cbs;
	int peer_closes;     /* client ends that saw their WebSocket finish */
	int other_closes;    /* entries of the other protocol that went down */
};

static struct fixture *F;

/* ---- WebSocket pairs over loopback ---- */

static void peer_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	(void)w;
	(void)opcode;
	(void)data;
	(void)len;
}

static void peer_on_close(struct ws *w, int code)
{
	(void)w;
	(void)code;
	F->peer_closes++;
}

static const struct ws_callbacks peer_cbs = {
	.on_message = peer_on_message,
	.on_close = peer_on_close,
};

static void client_on_open(struct conn *c)
{
	assert_non_null(ws_new(c, 1, 0, &peer_cbs, NULL));
}

static const struct conn_callbacks client_conn_cbs = {
	.on_open = client_on_open,
};

/* The server end (plaintext: open at once), with the callbacks the test chose, data NULL. */
static void on_connection(uv_stream_t *l, int status)
{
	struct conn *c = conn_new(&F->loop, NULL, NULL, NULL);

	assert_int_equal(status, 0);
	assert_non_null(c);
	assert_int_equal(conn_accept(c, l), 0);
	F->accepted = ws_new(c, 0, TUNNELS_WS_MAX_MESSAGE, F->next_cbs, NULL);
	assert_non_null(F->accepted);
}

/* Runs the loop until *flag reaches want (or two seconds pass). */
static void run_until(const int *flag, int want)
{
	int i;

	for (i = 0; i < 2000 && *flag < want; i++) {
		uv_run(&F->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_true(*flag >= want);
}

/* A connected pair over loopback; returns the server end, made with cbs. */
static struct ws *ws_pair(const struct ws_callbacks *cbs)
{
	struct conn *c = conn_new(&F->loop, NULL, &client_conn_cbs, NULL);
	int i;

	F->accepted = NULL;
	F->next_cbs = cbs;
	assert_non_null(c);
	assert_int_equal(conn_connect_tcp(c, "127.0.0.1", F->port), 0);
	for (i = 0; i < 2000 && F->accepted == NULL; i++) {
		uv_run(&F->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_non_null(F->accepted);
	return F->accepted;
}

/* ---- another protocol, registered as tunnel_v1.c registers its own ---- */

static void other_on_message(struct ws *w, int opcode, const char *data, size_t len)
{
	(void)w;
	(void)opcode;
	(void)data;
	(void)len;
}

static void other_on_close(struct ws *w, int code)
{
	struct tunnel_entry *e = ws_data(w);

	(void)code;
	F->other_closes++;
	e->tr.h = NULL;
	tunnels_unregister(e);
}

static const struct ws_callbacks other_cbs = {
	.on_message = other_on_message,
	.on_close = other_on_close,
};

static struct tunnel_entry *attach_other(const char *cluster)
{
	struct ws *w = ws_pair(&other_cbs);
	struct tunnel_entry *e = tunnels_entry_new(F->srv.tunnels, cluster, 1);

	assert_non_null(e);
	tunnel_transport_ws(&e->tr, w, NULL, NULL); /* as tunnel_v1.c: for close and abort */
	e->ops = &upstream_v1_ops; /* its protocol's table; e->impl stays NULL here */
	ws_set_data(w, e);
	assert_int_equal(tunnels_register(F->srv.tunnels, e), 0);
	return e;
}

static struct tunnel_entry *attach_v2(const char *cluster)
{
	struct ws *w = ws_pair(tunnel_transport_ws_callbacks());

	assert_int_equal(tunnels_attach_v2(F->srv.tunnels, cluster, w), 0);
	return tunnels_get(F->srv.tunnels, cluster);
}

/* The protocol tunnels_describe reports for a cluster, or "" with no tunnel. */
static const char *protocol_of(const char *cluster)
{
	static char out[16];
	json_t *d = tunnels_describe(F->srv.tunnels, cluster);

	out[0] = '\0';
	if (d) {
		snprintf(out, sizeof(out), "%s", json_string_value(json_object_get(d, "protocol")));
		json_decref(d);
	}
	return out;
}

/* How many live tunnels speak a protocol (the name of their table). */
static size_t count_of(const char *cluster_list[], size_t n, const char *name)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		struct tunnel_entry *e = tunnels_get(F->srv.tunnels, cluster_list[i]);

		if (e && strcmp(e->ops->name, name) == 0)
			k++;
	}
	return k;
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in a;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	assert_non_null(f);
	F = f;
	assert_true((size_t)snprintf(f->dir, sizeof(f->dir), "/tmp/lxcm-tunnels-XXXXXX") <
		    sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	assert_true((size_t)snprintf(f->path, sizeof(f->path), "%s/lxcm.db", f->dir) <
		    sizeof(f->path));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->srv.loop = &f->loop;
	snprintf(f->srv.replica, sizeof(f->srv.replica), "r1");
	tunnel_h2_config_defaults(&f->srv.tunnel_cfg);
	assert_int_equal(store_open(f->path, &f->srv.store), 0);
	f->srv.principals = principal_cache_new(PRINCIPAL_CACHE_TTL_MS);
	f->srv.enrolled = enrolled_new();
	f->srv.tunnels = tunnels_new(&f->srv);
	assert_non_null(f->srv.tunnels);
	assert_int_equal(changes_listen(&f->srv), 0);
	uv_tcp_init(&f->loop, &f->listener);
	uv_ip4_addr("127.0.0.1", 0, &a);
	assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 16, on_connection), 0);
	uv_tcp_getsockname(&f->listener, (struct sockaddr *)&ss, &len);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	*state = f;
	return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char p[160];
	size_t i;

	/* Every tunnel goes, as at shutdown; the pairs finish their closing handshakes. */
	tunnels_close_all(f->srv.tunnels);
	for (i = 0; i < 200; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	changes_stop(&f->srv);
	tunnels_free(f->srv.tunnels);
	enrolled_free(f->srv.enrolled);
	principal_cache_free(f->srv.principals);
	uv_close((uv_handle_t *)&f->listener, NULL);
	uv_walk(&f->loop, close_walk, NULL); /* client ends still open */
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	store_close(f->srv.store);
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- tests ---- */

/* One entry per protocol, each through its table: found, counted, described. */
static void test_register_lookup_count(void **state)
{
	const char *names[] = {"a", "b", "c"};
	struct tunnel_entry *a, *b, *c;

	(void)state;
	assert_int_equal(tunnels_count(F->srv.tunnels), 0);
	assert_null(tunnels_get(F->srv.tunnels, "a"));
	a = attach_v2("a");
	b = attach_other("b");
	c = attach_v2("c");
	assert_non_null(a);
	assert_ptr_equal(a->ops, &upstream_h2_ops);
	assert_ptr_equal(tunnels_get(F->srv.tunnels, "b"), b);
	assert_ptr_equal(tunnels_get(F->srv.tunnels, "c"), c);
	assert_null(tunnels_get(F->srv.tunnels, "d"));
	assert_int_equal(tunnels_count(F->srv.tunnels), 3);
	assert_int_equal(count_of(names, 3, "v2"), 2);
	assert_int_equal(count_of(names, 3, "v1"), 1);
	assert_string_equal(protocol_of("a"), "v2");
	assert_string_equal(protocol_of("b"), "v1");
	assert_string_equal(protocol_of("d"), "");
	assert_int_equal(a->protocol, 2);
	assert_int_equal(b->protocol, 1);
	assert_true(b->epoch > a->epoch); /* epochs only grow */
}

/* A new tunnel of a cluster supersedes the old one, which is closed and goes. */
static void test_replace(void **state)
{
	struct tunnel_entry *old, *repl;

	(void)state;
	old = attach_other("x");
	repl = attach_v2("x"); /* another protocol may replace it, too */
	assert_non_null(repl);
	assert_true(repl != old);
	assert_ptr_equal(tunnels_get(F->srv.tunnels, "x"), repl);
	assert_int_equal(tunnels_count(F->srv.tunnels), 1);
	run_until(&F->other_closes, 1); /* the old one's WebSocket closed: unregistered */
	assert_ptr_equal(tunnels_get(F->srv.tunnels, "x"), repl);
	assert_string_equal(protocol_of("x"), "v2");

	/* And back: the v2 entry is replaced by a newer one of the other protocol. */
	repl = attach_other("x");
	assert_ptr_equal(tunnels_get(F->srv.tunnels, "x"), repl);
	assert_string_equal(protocol_of("x"), "v1");
	assert_int_equal(tunnels_count(F->srv.tunnels), 1);
}

/* A cluster removed from the store by any code path loses its tunnel (change feed). */
static void test_drop_on_removal(void **state)
{
	char h[65];
	struct store_join_token t = {
	    .cluster_name = (char *)"gone", .expires_at = NOW + 60, .created_at = NOW};
	struct store_cluster c = {.name = (char *)"gone",
				  .certificate = (char *)CERT,
				  .fingerprint = (char *)"1111111111111111111111111111111111111111111"
							  "111111111111111111111"};

	(void)state;
	secret_sha256_hex("join-secret", 11, h);
	t.secret_hash = h;
	assert_int_equal(store_join_token_create(F->srv.store, &t), 0);
	assert_int_equal(store_cluster_join(F->srv.store, &c, h, NOW), 0);
	attach_other("gone");
	attach_v2("kept");
	assert_int_equal(tunnels_count(F->srv.tunnels), 2);

	/* A direct store call, not the API's handler: only the feed can tell the registry. */
	assert_int_equal(store_cluster_delete(F->srv.store, "gone"), 0);
	run_until(&F->other_closes, 1);
	assert_null(tunnels_get(F->srv.tunnels, "gone"));
	assert_non_null(tunnels_get(F->srv.tunnels, "kept"));
	assert_int_equal(tunnels_count(F->srv.tunnels), 1);

	/* Removing a cluster that has no tunnel here touches no other. */
	tunnels_drop(F->srv.tunnels, "nobody");
	assert_int_equal(tunnels_count(F->srv.tunnels), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_register_lookup_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drop_on_removal, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
