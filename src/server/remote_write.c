/*
 * remote_write.c - the queue and sender of Prometheus remote write
 * (remote_write.h): heartbeats in, encoded off the loop, queued with a
 * bound, sent one at a time with retries and backoff.
 */
#include "server/remote_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base64.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/version.h"
#include "net/http_client.h"
#include "net/tls.h"
#include "server/server.h"
#include "server/telemetry.h"

#define RW_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

struct rw_entry {
	struct rw_entry *next;
	char *body;
	size_t len, nsamples;
};

struct rw_job {
	uv_work_t work;
	struct remote_write *rw;
	json_t *body; /* the heartbeat, read only by the worker */
	char cluster[64];
	int64_t now_ms;
	struct remote_write_batch out;
	int rc;
};

enum {
	RW_S_QUEUED,
	RW_S_SENT,
	RW_S_DROPPED,
	RW_S_REJECTED,
	RW_S_MALFORMED,
	RW_S_BUSY,
	RW_S_QUEUE,
	RW_S_QUEUE_FULL,
	RW_S__COUNT,
};

struct remote_write {
	struct server *srv;
	char host[256];
	int port;
	char path[2048];
	SSL_CTX *tls;
	char auth[RW_SECRET_MAX * 2]; /* the Authorization value, or "" */
	struct rw_entry *head, *tail;
	size_t n, bytes, max;
	struct http_client *inflight;
	int status; /* of the response in flight */
	uv_timer_t timer;
	int timer_open;
	uint64_t backoff_ms;
	int encoding; /* jobs on the thread pool */
	int stopping, freeing;
	struct metrics_series *s[RW_S__COUNT];
	struct metrics_family *requests;
};

static void rw_kick(struct remote_write *rw);

/* ---- metrics ---- */

static const struct metrics_def rw_samples_def = {
	METRICS_COUNTER, "lxcm_remote_write_samples_total",
	"Cluster samples by fate in remote write (queued, sent, dropped when the queue was full, "
	"rejected by the receiver).",
	{"result", NULL}, NULL, 0, 8, 0};
static const struct metrics_def rw_malformed_def = {
	METRICS_COUNTER, "lxcm_cluster_metrics_malformed_total",
	"Exposition texts from clusters skipped as malformed.", {NULL}, NULL, 0, 0, 0};
static const struct metrics_def rw_dropped_def = {
	METRICS_COUNTER, "lxcm_remote_write_batches_dropped_total",
	"Heartbeats whose metrics were not sent, by reason (busy: too many being encoded; "
	"queue_full: the oldest waiting batch made room).",
	{"reason", NULL}, NULL, 0, 4, 0};
static const struct metrics_def rw_queue_def = {
	METRICS_GAUGE, "lxcm_remote_write_queue_batches", "Batches waiting to be sent.", {NULL},
	NULL, 0, 0, 0};
static const struct metrics_def rw_requests_def = {
	METRICS_COUNTER, "lxcm_remote_write_requests_total",
	"Remote-write requests by outcome (a status class, or error for no answer).", {"code", NULL},
	NULL, 0, 8, 0};

static struct metrics_series *rw_series1(struct metrics_family *f, const char *v)
{
	const char *vals[1] = {v};

	return metrics_series(f, vals);
}

static int rw_metrics(struct remote_write *rw)
{
	struct metrics *m = telemetry_registry(rw->srv->telemetry);
	struct metrics_family *samples, *dropped;

	if (m == NULL)
		return 0;
	samples = metrics_family_new(m, &rw_samples_def);
	dropped = metrics_family_new(m, &rw_dropped_def);
	rw->requests = metrics_family_new(m, &rw_requests_def);
	rw->s[RW_S_QUEUED] = rw_series1(samples, "queued");
	rw->s[RW_S_SENT] = rw_series1(samples, "sent");
	rw->s[RW_S_DROPPED] = rw_series1(samples, "dropped");
	rw->s[RW_S_REJECTED] = rw_series1(samples, "rejected");
	rw->s[RW_S_MALFORMED] = metrics_series0(metrics_family_new(m, &rw_malformed_def));
	rw->s[RW_S_BUSY] = rw_series1(dropped, "busy");
	rw->s[RW_S_QUEUE] = metrics_series0(metrics_family_new(m, &rw_queue_def));
	rw->s[RW_S_QUEUE_FULL] = rw_series1(dropped, "queue_full");
	return samples && dropped && rw->requests && rw->s[RW_S_MALFORMED] && rw->s[RW_S_QUEUE]
		       ? 0
		       : -ENOMEM;
}

static void rw_count_request(struct remote_write *rw, const char *code)
{
	metrics_inc(rw_series1(rw->requests, code), 1);
}

/* ---- configuration ---- */

/* http[s]://host[:port][/path]; no user info, no fragment. */
static int rw_parse_url(struct remote_write *rw, const char *url, int *https)
{
	const char *p, *host, *hend, *path;
	size_t hl;
	long long port;

	if (strncmp(url, "http://", 7) == 0)
		*https = 0, p = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		*https = 1, p = url + 8;
	else
		return -EINVAL;
	path = p + strcspn(p, "/");
	if (memchr(p, '@', (size_t)(path - p)) || strchr(url, '#'))
		return -EINVAL;
	host = p;
	if (*p == '[') {
		hend = memchr(p, ']', (size_t)(path - p));
		if (hend == NULL)
			return -EINVAL;
		host = p + 1;
		p = hend + 1;
	} else {
		hend = memchr(p, ':', (size_t)(path - p));
		hend = hend ? hend : path;
		p = hend;
	}
	hl = (size_t)(hend - host);
	port = *https ? 443 : 80;
	if (p < path && (*p != ':' || slice_to_int64(slice_make(p + 1, (size_t)(path - p - 1)), 1,
						     65535, &port) < 0))
		return -EINVAL;
	if (hl == 0 || hl >= sizeof(rw->host) || strlen(path) >= sizeof(rw->path))
		return -EINVAL;
	memcpy(rw->host, host, hl);
	rw->host[hl] = '\0';
	rw->port = (int)port;
	snprintf(rw->path, sizeof(rw->path), "%s", *path ? path : "/");
	return 0;
}

/* The first line of a small secret file, without its line end. */
static int rw_read_secret(const char *path, char *out, size_t cap)
{
	char *data = NULL;
	size_t len = 0;
	int rc = fs_read_file(path, RW_SECRET_MAX, &data, &len);

	if (rc < 0)
		return rc;
	len = strcspn(data, "\r\n");
	if (len == 0 || len >= cap) {
		secret_wipe(data, strlen(data));
		free(data);
		return -EINVAL;
	}
	memcpy(out, data, len);
	out[len] = '\0';
	secret_wipe(data, strlen(data));
	free(data);
	return 0;
}

static int rw_auth(struct remote_write *rw, const struct remote_write_config *cfg)
{
	char secret[RW_SECRET_MAX];
	int n, rc;

	if (cfg->bearer_file && cfg->basic_auth_file) {
		LOG_ERROR("--metrics-remote-write-bearer-file and -basic-auth-file exclude each other");
		return -EINVAL;
	}
	if (cfg->bearer_file == NULL && cfg->basic_auth_file == NULL)
		return 0;
	rc = rw_read_secret(cfg->bearer_file ? cfg->bearer_file : cfg->basic_auth_file, secret,
			    sizeof(secret));
	if (rc < 0) {
		LOG_ERROR("cannot read the remote-write credentials file %s: %s",
			  cfg->bearer_file ? cfg->bearer_file : cfg->basic_auth_file, strerror(-rc));
		return rc;
	}
	if (cfg->bearer_file) {
		n = snprintf(rw->auth, sizeof(rw->auth), "Bearer %s", secret);
	} else if (strchr(secret, ':') == NULL) {
		LOG_ERROR("the remote-write basic-auth file must hold user:password");
		n = -1;
	} else {
		n = snprintf(rw->auth, sizeof(rw->auth), "Basic ");
		base64_encode(secret, strlen(secret), rw->auth + n);
		n += (int)base64_encoded_len(strlen(secret));
		rw->auth[n] = '\0';
	}
	secret_wipe(secret, sizeof(secret));
	return n < 0 || (size_t)n >= sizeof(rw->auth) ? -EINVAL : 0;
}

static int rw_tls(struct remote_write *rw, const struct remote_write_config *cfg)
{
	struct tls_client_opts o = {0};
	char err[256];

	o.ca_file = cfg->ca_file ? cfg->ca_file : RW_SYSTEM_CA;
	rw->tls = tls_client_ctx_new(&o, err, sizeof(err));
	if (rw->tls == NULL)
		LOG_ERROR("remote write TLS setup failed: %s", err);
	return rw->tls ? 0 : -EINVAL;
}

struct remote_write *remote_write_new(struct server *srv, const struct remote_write_config *cfg)
{
	struct remote_write *rw = calloc(1, sizeof(*rw));
	int https = 0;

	if (rw == NULL)
		return NULL;
	rw->srv = srv;
	rw->max = cfg->queue_max ? cfg->queue_max : RW_DEFAULT_QUEUE;
	rw->backoff_ms = RW_BACKOFF_MIN_MS;
	if (rw_parse_url(rw, cfg->url, &https) < 0) {
		LOG_ERROR("invalid --metrics-remote-write-url %s", cfg->url);
		goto fail;
	}
	if (rw_auth(rw, cfg) < 0 || (https && rw_tls(rw, cfg) < 0) || rw_metrics(rw) < 0)
		goto fail;
	uv_timer_init(srv->loop, &rw->timer);
	rw->timer.data = rw;
	rw->timer_open = 1;
	LOG_INFO("cluster metrics go by remote write to %s://%s:%d%s", https ? "https" : "http",
		 rw->host, rw->port, rw->path);
	return rw;
fail:
	SSL_CTX_free(rw->tls);
	secret_wipe(rw->auth, sizeof(rw->auth));
	free(rw);
	return NULL;
}

/* ---- the queue ---- */

static void rw_entry_free(struct rw_entry *e)
{
	if (e == NULL)
		return;
	free(e->body);
	free(e);
}

/* Drops the oldest batch not in flight; 0, or -1 when there is none. */
static int rw_drop_oldest(struct remote_write *rw)
{
	struct rw_entry **pp = &rw->head, *e, *prev = NULL;

	if (rw->inflight && *pp) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	e = *pp;
	if (e == NULL)
		return -1;
	*pp = e->next;
	if (rw->tail == e)
		rw->tail = prev;
	rw->n--;
	rw->bytes -= e->len;
	metrics_inc(rw->s[RW_S_DROPPED], e->nsamples);
	metrics_inc(rw->s[RW_S_QUEUE_FULL], 1);
	rw_entry_free(e);
	return 0;
}

static void rw_enqueue(struct remote_write *rw, struct remote_write_batch *b)
{
	struct rw_entry *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		metrics_inc(rw->s[RW_S_DROPPED], b->nsamples);
		free(b->body);
		return;
	}
	e->body = b->body;
	e->len = b->len;
	e->nsamples = b->nsamples;
	b->body = NULL;
	while ((rw->n >= rw->max || rw->bytes + e->len > RW_QUEUE_MAX_BYTES) &&
	       rw_drop_oldest(rw) == 0)
		;
	if (rw->tail)
		rw->tail->next = e;
	else
		rw->head = e;
	rw->tail = e;
	rw->n++;
	rw->bytes += e->len;
	metrics_inc(rw->s[RW_S_QUEUED], e->nsamples);
	metrics_set(rw->s[RW_S_QUEUE], (double)rw->n);
}

static struct rw_entry *rw_pop(struct remote_write *rw)
{
	struct rw_entry *e = rw->head;

	rw->head = e->next;
	if (rw->head == NULL)
		rw->tail = NULL;
	rw->n--;
	rw->bytes -= e->len;
	metrics_set(rw->s[RW_S_QUEUE], (double)rw->n);
	return e;
}

/* ---- encoding on the thread pool ---- */

static void rw_maybe_free(struct remote_write *rw);

static void rw_encode_work(uv_work_t *w)
{
	struct rw_job *j = w->data;
	json_t *list = json_object_get(j->body, "server_metrics"), *item;
	struct remote_write_text *texts;
	size_t i, n = 0;

	if (!json_is_array(list) || json_array_size(list) == 0)
		return;
	texts = calloc(json_array_size(list), sizeof(*texts));
	if (texts == NULL) {
		j->rc = -ENOMEM;
		return;
	}
	json_array_foreach(list, i, item) {
		json_t *member = json_object_get(item, "member"), *text = json_object_get(item, "metrics");

		if (!json_is_string(text)) {
			j->out.malformed++;
			continue;
		}
		texts[n].member = json_is_string(member) ? json_string_value(member) : "";
		texts[n].text = json_string_value(text);
		texts[n].len = json_string_length(text);
		n++;
	}
	i = j->out.malformed;
	j->rc = remote_write_encode(j->cluster, texts, n, j->now_ms, &j->out);
	j->out.malformed += i;
	free(texts);
}

static void rw_encode_done(uv_work_t *w, int status)
{
	struct rw_job *j = w->data;
	struct remote_write *rw = j->rw;

	rw->encoding--;
	json_decref(j->body);
	metrics_inc(rw->s[RW_S_MALFORMED], j->out.malformed);
	if (status == 0 && j->rc == 0 && j->out.body && !rw->stopping)
		rw_enqueue(rw, &j->out);
	else if (j->rc < 0)
		LOG_WARN("cannot encode the metrics of %s for remote write: %s", j->cluster,
			 strerror(-j->rc));
	free(j->out.body);
	free(j);
	if (rw->freeing)
		rw_maybe_free(rw);
	else
		rw_kick(rw);
}

/* Wall-clock milliseconds: the samples' timestamps (time_now_ms is monotonic). */
static int64_t rw_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void remote_write_heartbeat(struct remote_write *rw, const char *cluster, json_t *body)
{
	struct rw_job *j;

	if (rw == NULL || rw->stopping || !json_is_array(json_object_get(body, "server_metrics")))
		return;
	if (rw->encoding >= RW_MAX_ENCODING || (j = calloc(1, sizeof(*j))) == NULL) {
		metrics_inc(rw->s[RW_S_BUSY], 1);
		return;
	}
	j->rw = rw;
	j->body = json_incref(body);
	j->work.data = j;
	j->now_ms = rw_wall_ms();
	snprintf(j->cluster, sizeof(j->cluster), "%s", cluster);
	if (uv_queue_work(rw->srv->loop, &j->work, rw_encode_work, rw_encode_done) != 0) {
		json_decref(body);
		free(j);
		metrics_inc(rw->s[RW_S_BUSY], 1);
		return;
	}
	rw->encoding++;
}

/* ---- sending ---- */

static void rw_on_timer(uv_timer_t *t)
{
	rw_kick(t->data);
}

static void rw_retry_later(struct remote_write *rw)
{
	if (rw->timer_open && !rw->stopping)
		uv_timer_start(&rw->timer, rw_on_timer, rw->backoff_ms, 0);
	rw->backoff_ms = rw->backoff_ms * 2 > RW_BACKOFF_MAX_MS ? RW_BACKOFF_MAX_MS
							       : rw->backoff_ms * 2;
}

static void rw_on_head(struct http_client *cl, const struct http_response_head *head)
{
	struct remote_write *rw = http_client_data(cl);

	rw->status = head->status;
}

static void rw_on_body(struct http_client *cl, const char *data, size_t len)
{
	(void)cl, (void)data, (void)len; /* the receiver's error text is not kept */
}

static void rw_on_done(struct http_client *cl, int err)
{
	struct remote_write *rw = http_client_data(cl);
	int st = rw->status;
	static const char *classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

	rw->inflight = NULL;
	rw_count_request(rw, err == 0 && st >= 100 && st < 600 ? classes[st / 100 - 1] : "error");
	if (err == 0 && st >= 200 && st < 300) {
		struct rw_entry *e = rw_pop(rw);

		metrics_inc(rw->s[RW_S_SENT], e->nsamples);
		rw_entry_free(e);
		rw->backoff_ms = RW_BACKOFF_MIN_MS;
		rw_kick(rw);
	} else if (err == 0 && st >= 400 && st < 500 && st != 429) {
		struct rw_entry *e = rw_pop(rw);

		LOG_WARN("remote write: the receiver refused a batch of %zu samples (HTTP %d); "
			 "dropping it",
			 e->nsamples, st);
		metrics_inc(rw->s[RW_S_REJECTED], e->nsamples);
		rw_entry_free(e);
		rw_kick(rw);
	} else {
		LOG_DEBUG("remote write failed (%s %d); retrying in %llu ms", err ? "error" : "HTTP",
			  err ? err : st, (unsigned long long)rw->backoff_ms);
		rw_retry_later(rw);
	}
}

static const struct http_client_callbacks rw_client_cbs = {
	.on_head = rw_on_head,
	.on_body = rw_on_body,
	.on_done = rw_on_done,
};

/* Sends the head of the queue unless a request or a backoff is under way. */
static void rw_kick(struct remote_write *rw)
{
	struct http_client_opts o = {0};
	struct http_header h[5] = {
		{LIT("Content-Type"), LIT("application/x-protobuf")},
		{LIT("Content-Encoding"), LIT("snappy")},
		{LIT("X-Prometheus-Remote-Write-Version"), LIT("0.1.0")},
		{LIT("User-Agent"), LIT("lxcm/" LXCM_VERSION)},
		{LIT("Authorization"), slice_cstr(rw->auth)},
	};

	if (rw->stopping || rw->inflight || rw->head == NULL ||
	    uv_is_active((uv_handle_t *)&rw->timer))
		return;
	o.host = rw->host;
	o.port = rw->port;
	o.tls = rw->tls;
	o.connect_timeout_ms = RW_CONNECT_TIMEOUT_MS;
	o.response_timeout_ms = RW_RESPONSE_TIMEOUT_MS;
	o.idle_timeout_ms = RW_RESPONSE_TIMEOUT_MS;
	rw->status = 0;
	rw->inflight = http_client_request(rw->srv->loop, &o, "POST", rw->path, h,
					   rw->auth[0] ? 5 : 4, (int64_t)rw->head->len,
					   &rw_client_cbs, rw);
	if (rw->inflight == NULL) {
		rw_count_request(rw, "error");
		rw_retry_later(rw);
		return;
	}
	if (http_client_write(rw->inflight, rw->head->body, rw->head->len) < 0)
		LOG_WARN("remote write: could not queue the request body");
}

/* ---- shutdown ---- */

static void rw_on_timer_closed(uv_handle_t *h)
{
	struct remote_write *rw = h->data;

	rw->timer_open = 0;
	if (rw->freeing)
		rw_maybe_free(rw);
}

void remote_write_stop(struct remote_write *rw)
{
	if (rw == NULL || rw->stopping)
		return;
	rw->stopping = 1;
	if (rw->inflight)
		http_client_cancel(rw->inflight);
	rw->inflight = NULL;
	if (rw->timer_open && !uv_is_closing((uv_handle_t *)&rw->timer))
		uv_close((uv_handle_t *)&rw->timer, rw_on_timer_closed);
}

static void rw_maybe_free(struct remote_write *rw)
{
	if (rw->timer_open || rw->encoding)
		return; /* the last callback frees it */
	while (rw->head)
		rw_entry_free(rw_pop(rw));
	SSL_CTX_free(rw->tls);
	secret_wipe(rw->auth, sizeof(rw->auth));
	free(rw);
}

void remote_write_free(struct remote_write *rw)
{
	if (rw == NULL)
		return;
	remote_write_stop(rw);
	rw->freeing = 1;
	rw_maybe_free(rw);
}
