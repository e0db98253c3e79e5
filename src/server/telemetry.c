/*
 * telemetry.c - the manager's series and the hooks that move them
 * (telemetry.h). Names follow Prometheus' conventions: lxcm_ prefix, base
 * units (seconds, bytes), counters ending in _total; process_* as every
 * Prometheus client library exposes them.
 */
#include "server/telemetry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/version.h"
#include "net/conn.h"
#include "server/audit.h"
#include "server/server.h"
#include "server/tunnels.h"
#include "server/upstream.h"

#ifndef LXCM_COMMIT
#define LXCM_COMMIT "unknown"
#endif

/* Seconds; spans a LAN round trip to a slow LXD operation. */
static const double tm_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					    0.25,  0.5,	   1,	  2.5,	5,     10,    30};
static const double tm_store_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
					  0.01,	  0.025,   0.05,   0.1,	  0.25,	  1};

enum {
	TM_REQUESTS,
	TM_PROXIED,
	TM_PROXIED_IN,
	TM_PROXIED_OUT,
	TM_PROXIED_SECONDS,
	TM_STREAMS,
	TM_TUNNELS_UP,
	TM_TUNNEL_CONNECTS,
	TM_TUNNEL_DISCONNECTS,
	TM_TUNNEL_RTT,
	TM_HEARTBEATS,
	TM_HEARTBEAT_SECONDS,
	TM_JOINS,
	TM_TLS,
	TM_RATE_LIMITED,
	TM_STORE_SECONDS,
	TM_AUDIT_PENDING,
	TM_AUDIT_WRITTEN,
	TM_AUDIT_DROPPED,
	TM_CPU,
	TM_RSS,
	TM_VSZ,
	TM_FDS,
	TM_MAX_FDS,
	TM_START,
	TM_BUILD,
	TM__COUNT,
};

#define TM_ROUTE_SERIES 512

static const struct metrics_def tm_defs[TM__COUNT] = {
    [TM_REQUESTS] = {METRICS_COUNTER, "lxcm_http_requests_total",
		     "HTTP requests answered, by listener, route pattern and status class.",
		     {"listener", "route", "code", NULL}, NULL, 0, TM_ROUTE_SERIES, 0},
    [TM_PROXIED] = {METRICS_COUNTER, "lxcm_proxied_requests_total",
		    "Requests proxied to a cluster through its tunnel, by tunnel protocol and "
		    "status class.",
		    {"protocol", "code", NULL}, NULL, 0, 32, 0},
    [TM_PROXIED_IN] = {METRICS_COUNTER, "lxcm_proxied_request_bytes_total",
		       "Request body bytes sent to clusters, by tunnel protocol.",
		       {"protocol", NULL}, NULL, 0, 8, 0},
    [TM_PROXIED_OUT] = {METRICS_COUNTER, "lxcm_proxied_response_bytes_total",
			"Response body bytes received from clusters, by tunnel protocol.",
			{"protocol", NULL}, NULL, 0, 8, 0},
    [TM_PROXIED_SECONDS] = {METRICS_HISTOGRAM, "lxcm_proxied_request_duration_seconds",
			    "Time from a proxied request's arrival to its audit row, by tunnel "
			    "protocol.",
			    {"protocol", NULL}, tm_latency_buckets,
			    sizeof(tm_latency_buckets) / sizeof(double), 8, 0},
    [TM_STREAMS] = {METRICS_GAUGE, "lxcm_tunnel_streams_open",
		    "Proxied requests in flight on tunnels (WebSockets included).", {NULL}, NULL,
		    0, 0, 0},
    [TM_TUNNELS_UP] = {METRICS_GAUGE, "lxcm_tunnels_up",
		       "Tunnels registered on this replica, by protocol (draining ones included).",
		       {"protocol", NULL}, NULL, 0, 8, 0},
    [TM_TUNNEL_CONNECTS] = {METRICS_COUNTER, "lxcm_tunnel_connects_total",
			    "Tunnels that came up, by protocol.", {"protocol", NULL}, NULL, 0, 8,
			    0},
    [TM_TUNNEL_DISCONNECTS] = {METRICS_COUNTER, "lxcm_tunnel_disconnects_total",
			       "Tunnels that went down, by protocol and reason (closed, replaced, "
			       "dead, protocol_error, removed, shutdown).",
			       {"protocol", "reason", NULL}, NULL, 0, 32, 0},
    [TM_TUNNEL_RTT] = {METRICS_HISTOGRAM, "lxcm_tunnel_rtt_seconds",
		       "Round-trip time of the manager's HTTP/2 PINGs on v2 tunnels.", {NULL},
		       tm_latency_buckets, sizeof(tm_latency_buckets) / sizeof(double), 0, 0},
    [TM_HEARTBEATS] = {METRICS_COUNTER, "lxcm_heartbeats_total",
		       "Status heartbeats received from clusters, by result (ok, error).",
		       {"result", NULL}, NULL, 0, 4, 0},
    [TM_HEARTBEAT_SECONDS] = {METRICS_HISTOGRAM, "lxcm_heartbeat_ingest_duration_seconds",
			      "Time from a heartbeat's arrival to its row being committed.",
			      {NULL}, tm_latency_buckets,
			      sizeof(tm_latency_buckets) / sizeof(double), 0, 0},
    [TM_JOINS] = {METRICS_COUNTER, "lxcm_joins_total",
		  "Cluster join attempts, by result (ok, no_token, bad_token, exists, "
		  "rate_limited, error).",
		  {"result", NULL}, NULL, 0, 8, 0},
    [TM_TLS] = {METRICS_COUNTER, "lxcm_tls_handshakes_total",
		"TLS handshakes of the listeners, by result (ok, failed).", {"result", NULL},
		NULL, 0, 2, 0},
    [TM_RATE_LIMITED] = {METRICS_COUNTER, "lxcm_rate_limited_total",
			 "Requests refused by a rate limit, by limit.", {"limit", NULL}, NULL, 0,
			 4, 0},
    [TM_STORE_SECONDS] = {METRICS_HISTOGRAM, "lxcm_store_operation_duration_seconds",
			  "Duration of each store operation (one transaction), by operation.",
			  {"operation", NULL}, tm_store_buckets,
			  sizeof(tm_store_buckets) / sizeof(double), 128, METRICS_F_ATOMIC},
    [TM_AUDIT_PENDING] = {METRICS_GAUGE, "lxcm_audit_rows_pending",
			  "Audit rows waiting to be written to the database.", {NULL}, NULL, 0,
			  0, 0},
    [TM_AUDIT_WRITTEN] = {METRICS_COUNTER, "lxcm_audit_rows_written_total",
			  "Audit rows committed to the database.", {NULL}, NULL, 0, 0, 0},
    [TM_AUDIT_DROPPED] = {METRICS_COUNTER, "lxcm_audit_rows_dropped_total",
			  "Audit rows dropped because too many were waiting.", {NULL}, NULL, 0,
			  0, 0},
    [TM_CPU] = {METRICS_COUNTER, "process_cpu_seconds_total",
		"Total user and system CPU time spent in seconds.", {NULL}, NULL, 0, 0,
		METRICS_F_FLOAT},
    [TM_RSS] = {METRICS_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.",
		{NULL}, NULL, 0, 0, 0},
    [TM_VSZ] = {METRICS_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
		{NULL}, NULL, 0, 0, 0},
    [TM_FDS] = {METRICS_GAUGE, "process_open_fds", "Number of open file descriptors.", {NULL},
		NULL, 0, 0, 0},
    [TM_MAX_FDS] = {METRICS_GAUGE, "process_max_fds",
		    "Maximum number of open file descriptors.", {NULL}, NULL, 0, 0, 0},
    [TM_START] = {METRICS_GAUGE, "process_start_time_seconds",
		  "Start time of the process since unix epoch in seconds.", {NULL}, NULL, 0, 0,
		  0},
    [TM_BUILD] = {METRICS_GAUGE, "lxcm_build_info",
		  "Always 1; the labels say which lxcm this is.", {"version", "commit", NULL},
		  NULL, 0, 1, 0},
};

struct telemetry {
	struct server *srv;
	struct metrics *m;
	struct metrics_family *f[TM__COUNT];
	int per_cluster;
	struct metrics_family *per_cluster_f; /* lxcm_cluster_proxied_requests_total */
	struct metrics_series *streams, *rtt, *hb_seconds;
};

struct metrics *telemetry_registry(struct telemetry *t)
{
	return t ? t->m : NULL;
}

static struct metrics_series *tm_s(struct telemetry *t, int id, const char *a, const char *b,
				   const char *c)
{
	const char *v[3] = {a, b, c};

	return metrics_series(t->f[id], v);
}

static void tm_collect_process(struct telemetry *t)
{
	struct rusage ru;
	struct rlimit rl;
	long page = sysconf(_SC_PAGESIZE);
	char buf[128];
	ssize_t n;
	int fd;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		metrics_set(tm_s(t, TM_CPU, NULL, NULL, NULL),
			    (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
				    ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		metrics_set(tm_s(t, TM_MAX_FDS, NULL, NULL, NULL), (double)rl.rlim_cur);
	/* statm: size resident ... in pages. */
	fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		char *end;
		unsigned long long vsz, rss;

		buf[n] = '\0';
		vsz = strtoull(buf, &end, 10);
		rss = strtoull(end, NULL, 10);
		metrics_set(tm_s(t, TM_VSZ, NULL, NULL, NULL), (double)vsz * (double)page);
		metrics_set(tm_s(t, TM_RSS, NULL, NULL, NULL), (double)rss * (double)page);
	}
}

static void tm_collect_fds(struct telemetry *t)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	double n = 0;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	metrics_set(tm_s(t, TM_FDS, NULL, NULL, NULL), n - 1); /* not the one reading it */
}

static void tm_collect(struct metrics *m, void *data)
{
	struct telemetry *t = data;
	struct audit_stats as;
	uint64_t ok, failed;

	(void)m;
	tm_collect_process(t);
	tm_collect_fds(t);
	conn_tls_server_stats(&ok, &failed);
	metrics_counter_set(tm_s(t, TM_TLS, "ok", NULL, NULL), ok);
	metrics_counter_set(tm_s(t, TM_TLS, "failed", NULL, NULL), failed);
	if (t->srv->audit) {
		audit_log_stats(t->srv->audit, &as);
		metrics_set(tm_s(t, TM_AUDIT_PENDING, NULL, NULL, NULL), (double)as.pending);
		metrics_counter_set(tm_s(t, TM_AUDIT_WRITTEN, NULL, NULL, NULL), as.written);
		metrics_counter_set(tm_s(t, TM_AUDIT_DROPPED, NULL, NULL, NULL), as.dropped);
	}
}

static int tm_make_families(struct telemetry *t)
{
	static const struct metrics_def per_cluster = {
	    METRICS_COUNTER, "lxcm_cluster_proxied_requests_total",
	    "Requests proxied to each cluster (--metrics-per-cluster), by status class.",
	    {"cluster", "code", NULL}, NULL, 0, TELEMETRY_MAX_CLUSTER_SERIES, 0};
	size_t i;

	for (i = 0; i < TM__COUNT; i++)
		if ((t->f[i] = metrics_family_new(t->m, &tm_defs[i])) == NULL)
			return -ENOMEM;
	if (t->per_cluster && (t->per_cluster_f = metrics_family_new(t->m, &per_cluster)) == NULL)
		return -ENOMEM;
	return 0;
}

struct telemetry *telemetry_new(struct server *srv, int per_cluster)
{
	struct telemetry *t = calloc(1, sizeof(*t));
	struct timeval now;

	if (t == NULL)
		return NULL;
	t->srv = srv;
	t->per_cluster = per_cluster;
	t->m = metrics_new();
	if (t->m == NULL || tm_make_families(t) < 0 || metrics_on_collect(t->m, tm_collect, t) < 0) {
		telemetry_free(t);
		return NULL;
	}
	gettimeofday(&now, NULL);
	metrics_set(tm_s(t, TM_START, NULL, NULL, NULL),
		    (double)now.tv_sec + (double)now.tv_usec / 1e6);
	metrics_set(tm_s(t, TM_BUILD, lxcm_version(), LXCM_COMMIT, NULL), 1);
	/* Series that exist from the start read 0 rather than being absent. */
	t->streams = tm_s(t, TM_STREAMS, NULL, NULL, NULL);
	t->rtt = tm_s(t, TM_TUNNEL_RTT, NULL, NULL, NULL);
	t->hb_seconds = tm_s(t, TM_HEARTBEAT_SECONDS, NULL, NULL, NULL);
	tm_s(t, TM_RATE_LIMITED, "join", NULL, NULL);
	tm_s(t, TM_TUNNELS_UP, "v2", NULL, NULL);
	tm_s(t, TM_TUNNELS_UP, "v1", NULL, NULL);
	tm_collect(t->m, t);
	return t;
}

void telemetry_free(struct telemetry *t)
{
	if (t == NULL)
		return;
	metrics_free(t->m);
	free(t);
}

/* ---- hooks ---- */

static struct telemetry *tm_of(struct server *srv)
{
	return srv ? srv->telemetry : NULL;
}

static const char *tm_class(int status)
{
	static const char *classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

	return status >= 100 && status < 600 ? classes[status / 100 - 1] : "other";
}

static const char *tm_listener(const struct server *srv, const struct http_request *req)
{
	if (req->server == srv->management)
		return "management";
	if (req->server == srv->connector)
		return "connector";
	if (req->server == srv->metrics_listener)
		return "metrics";
	return "other";
}

void telemetry_request_finished(struct http_request *req)
{
	struct server *srv = req->server_data;
	struct telemetry *t = tm_of(srv);

	if (t == NULL)
		return;
	metrics_inc(tm_s(t, TM_REQUESTS, tm_listener(srv, req),
			 req->route ? req->route->pattern : "unmatched", tm_class(req->status)),
		    1);
}

void telemetry_proxied(struct server *srv, const char *protocol, const char *cluster, int status,
		       uint64_t bytes_in, uint64_t bytes_out, uint64_t start_ms)
{
	struct telemetry *t = tm_of(srv);
	const char *pc[2] = {cluster, tm_class(status)};

	if (t == NULL)
		return;
	protocol = protocol ? protocol : "none";
	metrics_inc(tm_s(t, TM_PROXIED, protocol, tm_class(status), NULL), 1);
	metrics_inc(tm_s(t, TM_PROXIED_IN, protocol, NULL, NULL), bytes_in);
	metrics_inc(tm_s(t, TM_PROXIED_OUT, protocol, NULL, NULL), bytes_out);
	metrics_observe(tm_s(t, TM_PROXIED_SECONDS, protocol, NULL, NULL),
			(double)(uv_now(srv->loop) - start_ms) / 1000.0);
	if (t->per_cluster_f && cluster)
		metrics_inc(metrics_series(t->per_cluster_f, pc), 1);
}

void telemetry_stream(struct server *srv, int delta)
{
	struct telemetry *t = tm_of(srv);

	if (t)
		metrics_add(t->streams, delta);
}

static const char *tm_protocol(const struct tunnel_entry *e)
{
	return e->ops && e->ops->name ? e->ops->name : e->protocol == 1 ? "v1" : "v2";
}

void telemetry_tunnel_up(struct server *srv, const struct tunnel_entry *e)
{
	struct telemetry *t = tm_of(srv);

	if (t == NULL)
		return;
	metrics_add(tm_s(t, TM_TUNNELS_UP, tm_protocol(e), NULL, NULL), 1);
	metrics_inc(tm_s(t, TM_TUNNEL_CONNECTS, tm_protocol(e), NULL, NULL), 1);
}

void telemetry_tunnel_down(struct server *srv, const struct tunnel_entry *e, const char *reason)
{
	struct telemetry *t = tm_of(srv);

	if (t == NULL)
		return;
	metrics_add(tm_s(t, TM_TUNNELS_UP, tm_protocol(e), NULL, NULL), -1);
	metrics_inc(tm_s(t, TM_TUNNEL_DISCONNECTS, tm_protocol(e), reason ? reason : "closed", NULL),
		    1);
}

void telemetry_tunnel_rtt(struct server *srv, int64_t rtt_ms)
{
	struct telemetry *t = tm_of(srv);

	if (t && rtt_ms >= 0)
		metrics_observe(t->rtt, (double)rtt_ms / 1000.0);
}

void telemetry_heartbeat(struct server *srv, uint64_t start_ms, int rc)
{
	struct telemetry *t = tm_of(srv);

	if (t == NULL)
		return;
	metrics_inc(tm_s(t, TM_HEARTBEATS, rc == 0 ? "ok" : "error", NULL, NULL), 1);
	if (rc == 0)
		metrics_observe(t->hb_seconds, (double)(uv_now(srv->loop) - start_ms) / 1000.0);
}

void telemetry_join(struct server *srv, int rc)
{
	struct telemetry *t = tm_of(srv);
	const char *r = rc == 0 ? "ok" : rc == -ENOENT ? "no_token" : rc == -EACCES ? "bad_token" :
			rc == -EEXIST ? "exists" : "error";

	if (t)
		metrics_inc(tm_s(t, TM_JOINS, r, NULL, NULL), 1);
}

void telemetry_rate_limited(struct server *srv, const char *what)
{
	struct telemetry *t = tm_of(srv);

	if (t == NULL)
		return;
	metrics_inc(tm_s(t, TM_RATE_LIMITED, what, NULL, NULL), 1);
	if (strcmp(what, "join") == 0)
		metrics_inc(tm_s(t, TM_JOINS, "rate_limited", NULL, NULL), 1);
}

void telemetry_store_observe(void *data, const char *op, uint64_t ns, int rc)
{
	struct telemetry *t = data;

	(void)rc;
	metrics_observe(tm_s(t, TM_STORE_SECONDS, op, NULL, NULL), (double)ns / 1e9);
}

/* ---- the scrape ---- */

void telemetry_respond(struct http_request *req)
{
	struct server *srv = req->server_data;
	struct telemetry *t = tm_of(srv);
	struct slice accept = http_request_header(req, LIT("Accept"));
	enum metrics_format fmt = metrics_format_for_accept(accept.base, accept.len);
	struct http_header h = {LIT("Content-Type"), fmt == METRICS_OPENMETRICS
							 ? LIT(METRICS_CONTENT_TYPE_OM)
							 : LIT(METRICS_CONTENT_TYPE_004)};
	struct buf b;

	if (t == NULL) {
		http_respond_error(req, 503, "metrics are not enabled");
		return;
	}
	buf_init(&b, METRICS_RENDER_MAX);
	if (metrics_render(t->m, fmt, &b) < 0) {
		buf_free(&b);
		http_respond_error(req, 500, "cannot render the metrics");
		return;
	}
	http_respond(req, 200, &h, 1, b.data, b.len);
	buf_free(&b);
}
