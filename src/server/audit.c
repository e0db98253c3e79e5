/* audit.c - audit rows of proxied requests (see audit.h). */
#include "server/audit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "server/server.h"
#include "store/store_async.h"

/* One row with its strings inline. */
struct audit_row {
	char request_id[AUDIT_REQUEST_ID_LEN + 1];
	char actor[AUDIT_ACTOR_MAX], cluster[64], method[16], path[512];
	int status;
	int64_t at, bytes_in, bytes_out, duration_ms;
};

struct audit_batch {
	struct audit_log *log;
	struct audit_row *rows;
	struct store_audit *a;
	size_t n, cap;
	int rc;
};

struct audit_log {
	struct server *srv;
	uv_timer_t timer;
	struct audit_batch *pending; /* rows waiting */
	int writing;		     /* a batch is on the thread pool */
	uint64_t dropped;
};

static struct audit_batch *audit_batch_new(struct audit_log *log)
{
	struct audit_batch *b = calloc(1, sizeof(*b));

	if (b)
		b->log = log;
	return b;
}

static void audit_batch_free(struct audit_batch *b)
{
	if (b == NULL)
		return;
	free(b->rows);
	free(b->a);
	free(b);
}

/* Points the store rows at the inline strings (after the array stopped moving). */
static int audit_batch_prepare(struct audit_batch *b)
{
	size_t i;

	b->a = calloc(b->n ? b->n : 1, sizeof(*b->a));
	if (b->a == NULL)
		return -ENOMEM;
	for (i = 0; i < b->n; i++) {
		struct audit_row *r = &b->rows[i];

		b->a[i] = (struct store_audit){.request_id = r->request_id,
					       .at = r->at,
					       .actor = r->actor,
					       .cluster = r->cluster,
					       .method = r->method,
					       .path = r->path,
					       .status = r->status,
					       .bytes_in = r->bytes_in,
					       .bytes_out = r->bytes_out,
					       .duration_ms = r->duration_ms};
	}
	return 0;
}

static void audit_start_write(struct audit_log *log);
static void audit_on_timer(uv_timer_t *t);

static void audit_work(struct store *s, void *arg)
{
	struct audit_batch *b = arg;

	b->rc = s->ops->audit_append_many(s, b->a, b->n);
}

static void audit_done(void *arg)
{
	struct audit_batch *b = arg;
	struct audit_log *log = b->log;

	if (b->rc < 0)
		LOG_WARN("%zu audit rows lost: the database refused them (%d)", b->n, b->rc);
	audit_batch_free(b);
	log->writing = 0;
	if (log->pending && log->pending->n >= AUDIT_BATCH_ROWS)
		audit_start_write(log);
	else if (log->pending && log->pending->n && !uv_is_active((uv_handle_t *)&log->timer))
		uv_timer_start(&log->timer, audit_on_timer, AUDIT_FLUSH_MS, 0);
}

static void audit_start_write(struct audit_log *log)
{
	struct audit_batch *b = log->pending;

	if (log->writing || b == NULL || b->n == 0)
		return;
	log->pending = NULL;
	uv_timer_stop(&log->timer);
	if (audit_batch_prepare(b) < 0 ||
	    store_run(log->srv->loop, log->srv->store, audit_work, audit_done, b) < 0) {
		LOG_WARN("%zu audit rows lost: cannot queue the write", b->n);
		audit_batch_free(b);
		return;
	}
	log->writing = 1;
}

static void audit_on_timer(uv_timer_t *t)
{
	audit_start_write(t->data);
}

struct audit_log *audit_log_new(struct server *srv)
{
	struct audit_log *log = calloc(1, sizeof(*log));

	if (log == NULL)
		return NULL;
	log->srv = srv;
	uv_timer_init(srv->loop, &log->timer);
	log->timer.data = log;
	uv_unref((uv_handle_t *)&log->timer);
	return log;
}

void audit_flush_sync(struct audit_log *log)
{
	struct audit_batch *b;

	if (log == NULL || (b = log->pending) == NULL || b->n == 0)
		return;
	log->pending = NULL;
	if (audit_batch_prepare(b) == 0)
		b->rc = log->srv->store->ops->audit_append_many(log->srv->store, b->a, b->n);
	if (b->rc < 0 || b->a == NULL)
		LOG_WARN("%zu audit rows lost at shutdown", b->n);
	audit_batch_free(b);
}

static void audit_on_closed(uv_handle_t *h)
{
	struct audit_log *log = h->data;

	audit_batch_free(log->pending);
	free(log);
}

void audit_log_free(struct audit_log *log)
{
	if (log == NULL)
		return;
	uv_close((uv_handle_t *)&log->timer, audit_on_closed);
}

void audit_actor(const struct http_request *req, char out[AUDIT_ACTOR_MAX])
{
	struct slice h = http_request_header(req, LIT("Authorization"));
	char hash[65];

	if (h.len <= 7 || h.len > 512 || strncasecmp(h.base, "Bearer ", 7) != 0) {
		snprintf(out, AUDIT_ACTOR_MAX, "anonymous");
		return;
	}
	secret_sha256_hex(h.base + 7, h.len - 7, hash);
	snprintf(out, AUDIT_ACTOR_MAX, "token:%.12s", hash);
}

/* Appends one row to the waiting batch; schedules or starts its write. */
void audit_record(struct server *srv, const struct audit_entry *e)
{
	struct audit_log *log = srv->audit;
	struct audit_batch *b;
	struct audit_row *r;

	if (log == NULL)
		return;
	if (log->pending == NULL && (log->pending = audit_batch_new(log)) == NULL)
		goto drop;
	b = log->pending;
	if (b->n >= AUDIT_MAX_PENDING)
		goto drop;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct audit_row *rows = realloc(b->rows, cap * sizeof(*rows));

		if (rows == NULL)
			goto drop;
		b->rows = rows;
		b->cap = cap;
	}
	r = &b->rows[b->n++];
	snprintf(r->actor, sizeof(r->actor), "%s", e->actor);
	snprintf(r->cluster, sizeof(r->cluster), "%s", e->cluster ? e->cluster : "");
	snprintf(r->method, sizeof(r->method), "%s", e->method ? e->method : "");
	snprintf(r->path, sizeof(r->path), "%.*s", (int)sizeof(r->path) - 1, e->path ? e->path : "");
	r->at = time_now();
	r->status = e->status;
	r->bytes_in = (int64_t)e->bytes_in;
	r->bytes_out = (int64_t)e->bytes_out;
	r->duration_ms = (int64_t)(uv_now(srv->loop) - e->start_ms);
	if (b->n >= AUDIT_BATCH_ROWS)
		audit_start_write(log);
	else if (!uv_is_active((uv_handle_t *)&log->timer))
		uv_timer_start(&log->timer, audit_on_timer, AUDIT_FLUSH_MS, 0);
	return;
drop:
	if (log->dropped++ % 1000 == 0)
		LOG_WARN("audit rows dropped: %llu so far (the database is too slow?)",
			 (unsigned long long)log->dropped);
}
