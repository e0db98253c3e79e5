/*
 * metrics_listener.c - the plain-HTTP listener of --metrics-addr, for
 * Prometheus and load balancers: GET /metrics (telemetry_respond),
 * GET /healthz (the process answers) and GET /readyz (both listeners up,
 * the store answers and holds every migration of this binary).
 *
 * No authentication: it is off by default and meant for a loopback or
 * monitoring network address; it reveals counts, never a name or a secret
 * (cluster names only with --metrics-per-cluster). The management
 * listener serves the same metrics at GET /1.0/metrics to operators.
 */
#include "server/metrics_listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/server.h"
#include "server/telemetry.h"
#include "store/store_async.h"

struct ml_ready {
	struct http_request *req;
	int rc;
};

static void ml_respond_text(struct http_request *req, int status, const char *text)
{
	struct http_header h = {LIT("Content-Type"), LIT("text/plain; charset=utf-8")};

	http_respond(req, status, &h, 1, text, strlen(text));
}

static void ml_healthz(struct http_request *req)
{
	ml_respond_text(req, 200, "ok\n");
}

static void ml_ready_work(struct store *s, void *arg)
{
	struct ml_ready *r = arg;

	r->rc = store_schema_check(s);
}

static void ml_ready_done(void *arg)
{
	struct ml_ready *r = arg;

	if (r->rc == -ESTALE)
		ml_respond_text(r->req, 503, "not ready: migrations pending\n");
	else if (r->rc < 0)
		ml_respond_text(r->req, 503, "not ready: the store does not answer\n");
	else
		ml_respond_text(r->req, 200, "ok\n");
	free(r);
}

static void ml_readyz(struct http_request *req)
{
	struct server *srv = req->server_data;
	struct ml_ready *r;

	if (srv->management == NULL || srv->connector == NULL) {
		ml_respond_text(req, 503, "not ready: listeners are not up\n");
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		ml_respond_text(req, 503, "not ready: out of memory\n");
		return;
	}
	r->req = req;
	if (store_run(srv->loop, srv->store, ml_ready_work, ml_ready_done, r) < 0) {
		free(r);
		ml_respond_text(req, 503, "not ready: the store is busy\n");
	}
}

static const struct http_route ml_routes[] = {
	{"GET", "/metrics", telemetry_respond, 0, 0},
	{"GET", "/healthz", ml_healthz, 0, 0},
	{"GET", "/readyz", ml_readyz, 0, 0},
};

int metrics_listener_start(struct server *srv)
{
	struct http_server_config c = {0};
	int rc;

	if (srv->cfg.metrics_host[0] == '\0')
		return 0;
	c.host = srv->cfg.metrics_host;
	c.port = srv->cfg.metrics_port;
	c.routes = ml_routes;
	c.nroutes = sizeof(ml_routes) / sizeof(ml_routes[0]);
	c.limits = srv->cfg.limits;
	c.data = srv;
	c.name = "metrics";
	c.on_finished = telemetry_request_finished;
	rc = http_server_start(srv->loop, &c, &srv->metrics_listener);
	if (rc < 0) {
		LOG_ERROR("cannot listen on %s:%d (metrics): %s", c.host, c.port, uv_strerror(rc));
		return rc;
	}
	LOG_INFO("metrics on http://%s:%d/metrics", c.host, http_server_port(srv->metrics_listener));
	return 0;
}

void metrics_listener_stop(struct server *srv)
{
	http_server_stop(srv->metrics_listener);
	srv->metrics_listener = NULL;
}
