/*
 * connector.c - the listener clusters talk to: join, status heartbeats,
 * self-removal (MICROCLOUD-PROTOCOL.md, "Connector listener").
 *
 * Trust: joining needs no certificate (the join token is the credential)
 * but is rate limited per source socket address. Every other endpoint
 * except GET /1.0/status needs the client certificate of a joined cluster:
 * the cluster's identity is the SHA-256 of that certificate and nothing
 * else (no name in a body or header is ever believed). A missing
 * certificate is refused in pre_route, an unknown one by the first store
 * lookup, before the body is looked at.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cert.h"
#include "common/envelope.h"
#include "common/jointoken.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "server/principal.h"
#include "server/server.h"
#include "server/telemetry.h"
#include "server/tunnel_v1.h"
#include "server/tunnels.h"
#include "store/store_async.h"

struct conn_job {
	struct http_request *req;
	struct server *srv;
	int rc;
	struct store_cluster cluster;
	char secret_hash[65];
	char *status_json;
	json_t *body;
	struct store_status_post post; /* a heartbeat waiting for its group commit */
};

static struct conn_job *conn_job_new(struct http_request *req)
{
	struct conn_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		http_respond_error(req, 500, "out of memory");
		return NULL;
	}
	j->req = req;
	j->srv = req->server_data;
	return j;
}

static void conn_job_free(struct conn_job *j)
{
	store_cluster_clear(&j->cluster);
	free(j->status_json);
	json_decref(j->body);
	secret_wipe(j->secret_hash, sizeof(j->secret_hash));
	free(j);
}

static void conn_submit(struct conn_job *j, store_work_fn work, store_done_fn done)
{
	if (store_run(j->srv->loop, j->srv->store, work, done, j) < 0) {
		http_respond_error(j->req, 503, "the server is busy, try again later");
		conn_job_free(j);
	}
}

int connector_pre_route(struct http_request *req)
{
	int is_join = slice_eq(req->method, LIT("POST")) &&
		      slice_eq(req->path, LIT("/1.0/remote-cluster"));
	int is_status = slice_eq(req->path, LIT("/1.0/status"));
	struct principal p;

	if (req->peer_fp != NULL) {
		/* Who it is (a certificate; which cluster, the store says later). */
		principal_from_cluster_cert(&p, req->peer_fp);
		if (principal_attach(req, &p) == 0)
			return 0;
		http_respond_error(req, 500, "out of memory");
		return -1;
	}
	if (is_join || is_status)
		return 0;
	http_respond_error(req, 403, "a client certificate of an enrolled cluster is required");
	return -1;
}

/* ---- GET /1.0/status ---- */

static void connector_status_ping(struct http_request *req)
{
	http_respond_json(req, 200, NULL);
}

/* ---- POST /1.0/remote-cluster (join) ---- */

static void connector_join_work(struct store *s, void *arg)
{
	struct conn_job *j = arg;

	j->rc = store_cluster_join(s, &j->cluster, j->secret_hash[0] ? j->secret_hash : NULL,
				   time_now());
}

static void connector_join_done(void *arg)
{
	struct conn_job *j = arg;
	struct http_request *req = j->req;

	telemetry_join(j->srv, j->rc);
	switch (j->rc) {
	case 0:
		/* The enrolled set heard of it from the change feed (changes.c). */
		LOG_INFO("cluster %s joined from %s (certificate %.16s...)", j->cluster.name,
			 req->peer_addr, j->cluster.fingerprint);
		http_respond_json(req, 200, json_object());
		break;
	case -ENOENT:
		http_respond_error(req, 404, "no join token for cluster %s", j->cluster.name);
		break;
	case -EACCES:
		LOG_WARN("refused join of %s from %s: wrong or expired token", j->cluster.name,
			 req->peer_addr);
		http_respond_error(req, 403, "the join token is wrong or has expired");
		break;
	case -EEXIST:
		http_respond_error(req, 409,
				   "a cluster named %s or with this certificate already exists",
				   j->cluster.name);
		break;
	default:
		handler_store_error(req, j->rc, "cluster");
		break;
	}
	conn_job_free(j);
}

/* Checks the fields of a join and fills j; answers 400 itself. */
static int connector_join_parse(struct conn_job *j, json_t *body)
{
	struct http_request *req = j->req;
	json_t *name = json_object_get(body, "cluster_name");
	json_t *pem = json_object_get(body, "cluster_certificate");
	json_t *tok = json_object_get(body, "token");
	struct join_token t = {0};
	char fp[65];
	int rc = -1;

	if (!json_is_string(name) || !handler_valid_name(json_string_value(name))) {
		http_respond_error(req, 400, "cluster_name is missing or invalid");
		return -1;
	}
	if (!json_is_string(pem) || cert_fingerprint_pem(json_string_value(pem),
							  json_string_length(pem), fp) != 0) {
		http_respond_error(req, 400, "cluster_certificate is missing or not a PEM certificate");
		return -1;
	}
	if (!json_is_string(tok) ||
	    join_token_decode(json_string_value(tok), json_string_length(tok), &t) != 0) {
		http_respond_error(req, 400, "token is missing or malformed");
		return -1;
	}
	/* A token for another name proves nothing here; no hash, and the store
	 * answers by the name: 404 without a token for it, 403 with one. */
	if (strcmp(t.server_name, json_string_value(name)) == 0)
		secret_sha256_hex(t.secret, strlen(t.secret), j->secret_hash);
	j->cluster.name = strdup(json_string_value(name));
	j->cluster.certificate = strdup(json_string_value(pem));
	j->cluster.fingerprint = strdup(fp);
	j->cluster.description = strdup("");
	if (!j->cluster.name || !j->cluster.certificate || !j->cluster.fingerprint ||
	    !j->cluster.description) {
		http_respond_error(req, 500, "out of memory");
		goto out;
	}
	rc = 0;
out:
	join_token_clear(&t);
	return rc;
}

static void connector_join(struct http_request *req)
{
	struct server *srv = req->server_data;
	struct conn_job *j;
	json_t *body;
	int wait;
	char retry[16];
	struct http_header h[2];

	wait = ratelimit_take(srv->join_limit, req->peer_addr, uv_now(srv->loop));
	if (wait > 0) {
		size_t len = 0;
		char *env = NULL;

		snprintf(retry, sizeof(retry), "%d", wait);
		h[0] = (struct http_header){LIT("Content-Type"), LIT("application/json")};
		h[1] = (struct http_header){LIT("Retry-After"), slice_cstr(retry)};
		LOG_WARN("join from %s rate limited", req->peer_addr);
		telemetry_rate_limited(srv, "join");
		env = envelope_error(429, "too many join attempts, retry later", &len);
		http_respond(req, 429, h, 2, env, env ? len : 0);
		free(env);
		return;
	}
	j = conn_job_new(req);
	if (j == NULL)
		return;
	body = handler_parse_body(req);
	if (body == NULL || connector_join_parse(j, body) != 0) {
		json_decref(body);
		conn_job_free(j);
		return;
	}
	json_decref(body);
	conn_submit(j, connector_join_work, connector_join_done);
}

/* ---- identity of the calling cluster ---- */

/* Only the name: the rest of the row (certificate, last status) is not needed here. */
static void connector_identify_work(struct store *s, void *arg)
{
	struct conn_job *j = arg;

	j->rc = store_cluster_name_by_fingerprint(s, j->req->peer_fp, &j->cluster.name);
}

/* Answers 403 for an unknown certificate; returns 0 when j->cluster is set. */
static int connector_identified(struct conn_job *j)
{
	if (j->rc == -ENOENT) {
		http_respond_error(j->req, 403, "this client certificate is not enrolled");
		return -1;
	}
	if (j->rc < 0) {
		handler_store_error(j->req, j->rc, "cluster");
		return -1;
	}
	return 0;
}

/* ---- POST /1.0/remote-cluster/status ---- */

/* Type checks of the heartbeat fields we read; unknown fields pass. */
static const char *connector_status_invalid(json_t *b)
{
	static const char *ints[] = {"cpu_total_count", "memory_total_amount", "memory_usage"};
	static const char *loads[] = {"cpu_load_1", "cpu_load_5", "cpu_load_15"};
	static const char *lists[] = {"instance_statuses", "member_statuses", "ceph_statuses",
				      "storage_pool_usages", "server_metrics"};
	json_t *v;
	size_t i;

	for (i = 0; i < 3; i++) {
		v = json_object_get(b, ints[i]);
		if (v && !json_is_integer(v) && !json_is_null(v))
			return ints[i];
		v = json_object_get(b, loads[i]);
		if (v && !json_is_string(v) && !json_is_number(v) && !json_is_null(v))
			return loads[i];
	}
	for (i = 0; i < 5; i++) {
		v = json_object_get(b, lists[i]);
		if (v && !json_is_array(v) && !json_is_null(v))
			return lists[i];
	}
	v = json_object_get(b, "ui_url");
	if (v && !json_is_string(v) && !json_is_null(v))
		return "ui_url";
	return NULL;
}

/*
 * The heartbeat's row is committed (or its transaction failed): answer.
 * Rows of posts that arrive together share one transaction
 * (store_status_post), and each post is answered only after its own row
 * is on disk.
 */
static void connector_status_stored(struct store_status_post *post)
{
	struct conn_job *j = post->data;
	struct server *srv = j->srv;

	telemetry_heartbeat(srv, j->req->start_ms, post->rc);
	if (post->rc < 0) {
		handler_store_error(j->req, post->rc, "cluster");
	} else {
		http_respond_json(j->req, 200,
				  json_pack("{s:i,s:s}", "next_update_in_seconds",
					    srv->cfg.heartbeat_interval_s, "cluster_manager_address",
					    srv->cfg.management_public));
		remote_write_heartbeat(srv->remote_write, j->cluster.name, j->body);
	}
	conn_job_free(j);
}

static void connector_status_identified(void *arg)
{
	struct conn_job *j = arg;
	const char *bad;

	if (connector_identified(j) != 0) {
		conn_job_free(j);
		return;
	}
	j->body = handler_parse_body(j->req);
	if (j->body == NULL) {
		conn_job_free(j);
		return;
	}
	bad = connector_status_invalid(j->body);
	if (bad) {
		http_respond_error(j->req, 400, "invalid status field %s", bad);
		conn_job_free(j);
		return;
	}
	j->status_json = json_dumps(j->body, JSON_COMPACT);
	if (j->status_json == NULL) {
		http_respond_error(j->req, 500, "out of memory");
		conn_job_free(j);
		return;
	}
	j->post.row.name = j->cluster.name;
	j->post.row.status_json = j->status_json;
	j->post.row.now = time_now();
	j->post.done = connector_status_stored;
	j->post.data = j;
	if (store_status_post(j->srv->loop, j->srv->store, &j->post) < 0) {
		http_respond_error(j->req, 503, "the server is busy, try again later");
		conn_job_free(j);
	}
}

static void connector_status(struct http_request *req)
{
	struct conn_job *j = conn_job_new(req);

	if (j)
		conn_submit(j, connector_identify_work, connector_status_identified);
}

/* ---- DELETE /1.0/remote-cluster ---- */

static void connector_leave_work(struct store *s, void *arg)
{
	struct conn_job *j = arg;

	j->rc = store_cluster_name_by_fingerprint(s, j->req->peer_fp, &j->cluster.name);
	if (j->rc == 0)
		j->rc = store_cluster_delete(s, j->cluster.name);
}

static void connector_leave_done(void *arg)
{
	struct conn_job *j = arg;

	/* The enrolled set and the tunnels heard of it from the change feed (changes.c). */
	if (connector_identified(j) == 0) {
		LOG_INFO("cluster %s removed itself", j->cluster.name);
		http_respond_json(j->req, 200, json_object());
	}
	conn_job_free(j);
}

static void connector_leave(struct http_request *req)
{
	struct conn_job *j = conn_job_new(req);

	if (j)
		conn_submit(j, connector_leave_work, connector_leave_done);
}

/* ---- GET /1.0/remote-cluster/ws (the tunnel) ---- */

static void connector_ws_identified(void *arg)
{
	struct conn_job *j = arg;
	struct http_request *req = j->req;
	const char *why = NULL;
	struct ws *ws;

	if (connector_identified(j) != 0) {
		conn_job_free(j);
		return;
	}
	if (ws_check_upgrade_request(req, &why) != 0) {
		http_respond_error(req, 400, "not a WebSocket upgrade: %s", why ? why : "invalid");
		conn_job_free(j);
		return;
	}
	if (!ws_request_offers_protocol(req, TUNNEL_PROTOCOL_V2)) {
		/* No lxcm subprotocol: MicroCloud's JSON frames (tunnel_v1.c). */
		tunnel_v1_accept(j->srv, j->cluster.name, req);
		conn_job_free(j);
		return;
	}
	ws = ws_server_accept(req, TUNNEL_PROTOCOL_V2, TUNNELS_WS_MAX_MESSAGE,
			      tunnel_transport_ws_callbacks(), NULL);
	if (ws != NULL)
		tunnels_attach_v2(j->srv->tunnels, j->cluster.name, ws);
	conn_job_free(j);
}

static void connector_ws(struct http_request *req)
{
	struct conn_job *j = conn_job_new(req);

	if (j)
		conn_submit(j, connector_identify_work, connector_ws_identified);
}

const struct http_route connector_routes[] = {
	{"GET", "/1.0/remote-cluster/ws", connector_ws, HTTP_ROUTE_UPGRADE, 0},
	{"GET", "/1.0/status", connector_status_ping, 0, 0},
	{"POST", "/1.0/remote-cluster", connector_join, 0, 0},
	{"DELETE", "/1.0/remote-cluster", connector_leave, 0, 0},
	{"POST", "/1.0/remote-cluster/status", connector_status, 0, SERVER_STATUS_BODY_MAX},
};
const size_t connector_nroutes = sizeof(connector_routes) / sizeof(connector_routes[0]);
