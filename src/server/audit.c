/* audit.c - audit rows of proxied requests (see audit.h). */
#include "server/audit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "server/audit_journal.h"
#include "server/principal.h"
#include "server/server.h"
#include "store/store_async.h"

/* One row with its strings inline. */
struct audit_row {
	char request_id[AUDIT_REQUEST_ID_LEN + 1];
	char actor[AUDIT_ACTOR_MAX], cluster[64], method[16], path[512];
	char actor_name[AUDIT_ACTOR_NAME_MAX], client[AUDIT_CLIENT_MAX];
	int status;
	int journal; /* the journal file that holds the row, or -1 */
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
	int writing;		     /* a batch is on a store worker */
	uint64_t dropped, journal_failed, seq;
	uint64_t written, writing_rows; /* for audit_log_stats */
	char id_prefix[17]; /* random per process: request ids never repeat */
	struct audit_journal *journal;
	/* Per journal file: rows not yet in the database; kept is set when a
	 * row of the file will never be (dropped from memory, or a failed
	 * replay): such a file is emptied only by the next start's replay. */
	uint64_t waiting[AUDIT_JOURNAL_FILES];
	int kept[AUDIT_JOURNAL_FILES];
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

/* The store's view of r: pointers to its inline strings, valid while r does not move. */
static struct store_audit audit_row_view(const struct audit_row *r)
{
	return (struct store_audit){.request_id = r->request_id,
				    .at = r->at,
				    .actor = r->actor,
				    .actor_name = r->actor_name[0] ? r->actor_name : NULL,
				    .client = r->client[0] ? r->client : NULL,
				    .cluster = r->cluster,
				    .method = r->method,
				    .path = r->path,
				    .status = r->status,
				    .bytes_in = r->bytes_in,
				    .bytes_out = r->bytes_out,
				    .duration_ms = r->duration_ms};
}

/* Points the store rows at the inline strings (after the array stopped moving). */
static int audit_batch_prepare(struct audit_batch *b)
{
	size_t i;

	b->a = calloc(b->n ? b->n : 1, sizeof(*b->a));
	if (b->a == NULL)
		return -ENOMEM;
	for (i = 0; i < b->n; i++)
		b->a[i] = audit_row_view(&b->rows[i]);
	return 0;
}

static void audit_start_write(struct audit_log *log);
static void audit_on_timer(uv_timer_t *t);

/* Rows of b are in the database: empty the journal files nothing else needs. */
static void audit_journal_committed(struct audit_log *log, const struct audit_batch *b,
				    int also_current)
{
	size_t i;
	int f;

	if (log->journal == NULL)
		return;
	for (i = 0; i < b->n; i++)
		if (b->rows[i].journal >= 0 && log->waiting[b->rows[i].journal])
			log->waiting[b->rows[i].journal]--;
	for (f = 0; f < AUDIT_JOURNAL_FILES; f++)
		if ((also_current || f != audit_journal_current(log->journal)) &&
		    log->waiting[f] == 0 && !log->kept[f])
			audit_journal_truncate(log->journal, f);
}

/* A batch is leaving for the database: new rows go to an empty file if there is one. */
static void audit_journal_rotate(struct audit_log *log)
{
	int cur, next;

	if (log->journal == NULL)
		return;
	cur = audit_journal_current(log->journal);
	next = (cur + 1) % AUDIT_JOURNAL_FILES;
	if (log->waiting[next] == 0 && !log->kept[next])
		audit_journal_use(log->journal, next);
}

/* The database refused b: its rows go back in front of the waiting ones. */
static void audit_requeue(struct audit_log *log, struct audit_batch *b)
{
	struct audit_batch *p = log->pending;
	size_t i, keep;

	if (p == NULL) {
		log->pending = b;
		free(b->a);
		b->a = NULL;
		return;
	}
	keep = b->n + p->n > AUDIT_MAX_PENDING ? AUDIT_MAX_PENDING - p->n : b->n;
	for (i = keep; i < b->n; i++) {
		if (b->rows[i].journal >= 0)
			log->kept[b->rows[i].journal] = 1;
		log->dropped++;
	}
	if (b->cap < keep + p->n) {
		struct audit_row *rows = realloc(b->rows, (keep + p->n) * sizeof(*rows));

		if (rows == NULL) {
			for (i = 0; i < b->n; i++)
				if (b->rows[i].journal >= 0)
					log->kept[b->rows[i].journal] = 1;
			log->dropped += keep;
			audit_batch_free(b);
			return;
		}
		b->rows = rows;
		b->cap = keep + p->n;
	}
	memcpy(b->rows + keep, p->rows, p->n * sizeof(*p->rows));
	b->n = keep + p->n;
	free(b->a);
	b->a = NULL;
	audit_batch_free(p);
	log->pending = b;
}

/* b could not be written: back in front of the waiting rows, tried again a little later. */
static void audit_retry_later(struct audit_log *log, struct audit_batch *b)
{
	audit_requeue(log, b);
	if (log->pending && !uv_is_active((uv_handle_t *)&log->timer))
		uv_timer_start(&log->timer, audit_on_timer, AUDIT_RETRY_MS, 0);
}

static void audit_work(struct store *s, void *arg)
{
	struct audit_batch *b = arg;

	b->rc = store_audit_append_many(s, b->a, b->n);
}

static void audit_done(void *arg)
{
	struct audit_batch *b = arg;
	struct audit_log *log = b->log;

	log->writing = 0;
	if (b->rc < 0) {
		/* Kept in memory (and in the journal) and tried again a little later. */
		LOG_WARN("%zu audit rows not written yet: the database refused them (%s); "
			 "retrying",
			 b->n, strerror(-b->rc));
		audit_retry_later(log, b);
		return;
	}
	log->written += b->n;
	audit_journal_committed(log, b, 0);
	audit_batch_free(b);
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
		LOG_WARN("%zu audit rows not written yet: cannot queue the write", b->n);
		audit_retry_later(log, b);
		return;
	}
	audit_journal_rotate(log);
	log->writing = 1;
	log->writing_rows = b->n;
}

static void audit_on_timer(uv_timer_t *t)
{
	audit_start_write(t->data);
}

struct audit_log *audit_log_new(struct server *srv)
{
	struct audit_log *log = calloc(1, sizeof(*log));
	int64_t n;

	if (log == NULL)
		return NULL;
	log->srv = srv;
	if (secret_random_hex(8, log->id_prefix, sizeof(log->id_prefix)) < 0) {
		free(log);
		return NULL;
	}
	if (srv->cfg.data_dir) {
		log->journal = audit_journal_open(srv->cfg.data_dir);
		if (log->journal == NULL) {
			free(log);
			return NULL;
		}
		n = audit_journal_replay(log->journal, srv->store);
		if (n < 0) {
			/* Kept for the next start; rows keep going to the journal meanwhile. */
			LOG_WARN("cannot write the audit journal's rows to the database (%s); "
				 "they are kept in %s",
				 strerror((int)-n), srv->cfg.data_dir);
			log->kept[0] = log->kept[1] = 1;
		} else if (n > 0) {
			LOG_INFO("%lld audit rows recovered from the journal", (long long)n);
		}
	}
	uv_timer_init(srv->loop, &log->timer);
	log->timer.data = log;
	uv_unref((uv_handle_t *)&log->timer);
	return log;
}

void audit_flush_sync(struct audit_log *log)
{
	struct audit_batch *b;

	if (log == NULL)
		return;
	if ((b = log->pending) == NULL || b->n == 0) {
		struct audit_batch none = {0};

		audit_journal_committed(log, &none, 1);
		return;
	}
	log->pending = NULL;
	if (audit_batch_prepare(b) == 0)
		b->rc = store_audit_append_many(log->srv->store, b->a, b->n);
	if (b->rc < 0 || b->a == NULL) {
		LOG_WARN("%zu audit rows not written at shutdown; the journal keeps them for the "
			 "next start",
			 b->n);
	} else {
		audit_journal_committed(log, b, 1);
	}
	audit_batch_free(b);
}

static void audit_on_closed(uv_handle_t *h)
{
	struct audit_log *log = h->data;

	audit_batch_free(log->pending);
	audit_journal_close(log->journal);
	free(log);
}

void audit_log_free(struct audit_log *log)
{
	if (log == NULL)
		return;
	uv_close((uv_handle_t *)&log->timer, audit_on_closed);
}

void audit_actor_of(const struct principal *p, char out[AUDIT_ACTOR_MAX])
{
	snprintf(out, AUDIT_ACTOR_MAX, "%s", p ? p->id : "anonymous");
}

void audit_entry_principal(struct audit_entry *e, const struct principal *p)
{
	audit_actor_of(p, e->actor);
	snprintf(e->actor_name, sizeof(e->actor_name), "%s", p ? p->name : "");
}

void audit_request_id(struct server *srv, char out[AUDIT_REQUEST_ID_LEN + 1])
{
	struct audit_log *log = srv->audit;

	if (log == NULL) {
		out[0] = '\0';
		return;
	}
	snprintf(out, AUDIT_REQUEST_ID_LEN + 1, "%s%016llx", log->id_prefix,
		 (unsigned long long)++log->seq);
}

/*
 * The request's log line, from its row: the same id, actor and numbers.
 * The path goes without its query, which may carry secrets (LXD's
 * operation websocket secrets, values of a cluster's API) that have no
 * place in log files; the row keeps it whole.
 */
static void audit_log_line(const struct audit_row *r)
{
	char path[sizeof(r->path)];
	struct log_field f[] = {
	    LOG_FSTR("request_id", r->request_id), LOG_FSTR("actor", r->actor),
	    LOG_FSTR("actor_name", r->actor_name), LOG_FSTR("client", r->client),
	    LOG_FSTR("cluster", r->cluster),	   LOG_FSTR("method", r->method),
	    LOG_FSTR("path", path),		   LOG_FINT("status", r->status),
	    LOG_FINT("bytes_in", r->bytes_in),	   LOG_FINT("bytes_out", r->bytes_out),
	    LOG_FINT("duration_ms", r->duration_ms),
	};

	snprintf(path, sizeof(path), "%.*s", (int)strcspn(r->path, "?"), r->path);
	log_event(LOG_LEVEL_INFO, "proxy", f, sizeof(f) / sizeof(f[0]), "%s %s %s %d",
		  r->cluster, r->method, path, r->status);
}

/* Makes r survive a crash before its batch is written: see audit_journal.h. */
static void audit_row_journal(struct audit_log *log, struct audit_row *r)
{
	struct store_audit a = audit_row_view(r);

	r->journal = log->journal ? audit_journal_append(log->journal, &a) : -1;
	if (r->journal >= 0) {
		log->waiting[r->journal]++;
	} else if (log->journal && log->journal_failed++ % 1000 == 0) {
		LOG_WARN("cannot append to the audit journal (%s): %llu rows so far are only in "
			 "memory until written",
			 strerror(-r->journal), (unsigned long long)log->journal_failed);
	}
}

/* The row of e, as it is logged and written. */
static void audit_row_fill(struct server *srv, const struct audit_entry *e, struct audit_row *r)
{
	if (e->request_id != NULL && e->request_id[0] != '\0')
		snprintf(r->request_id, sizeof(r->request_id), "%s", e->request_id);
	else
		audit_request_id(srv, r->request_id);
	snprintf(r->actor, sizeof(r->actor), "%s", e->actor);
	snprintf(r->actor_name, sizeof(r->actor_name), "%s", e->actor_name);
	snprintf(r->client, sizeof(r->client), "%s", e->client ? e->client : "");
	snprintf(r->cluster, sizeof(r->cluster), "%s", e->cluster ? e->cluster : "");
	snprintf(r->method, sizeof(r->method), "%s", e->method ? e->method : "");
	snprintf(r->path, sizeof(r->path), "%.*s", (int)sizeof(r->path) - 1, e->path ? e->path : "");
	r->at = time_now();
	r->status = e->status;
	r->bytes_in = (int64_t)e->bytes_in;
	r->bytes_out = (int64_t)e->bytes_out;
	r->duration_ms = (int64_t)(uv_now(srv->loop) - e->start_ms);
	r->journal = -1;
}

/* Logs the request, appends its row to the waiting batch, schedules or starts its write. */
void audit_record(struct server *srv, const struct audit_entry *e)
{
	struct audit_log *log = srv->audit;
	struct audit_batch *b;
	struct audit_row row;

	if (log == NULL)
		return;
	audit_row_fill(srv, e, &row);
	audit_log_line(&row);
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
	b->rows[b->n] = row;
	audit_row_journal(log, &b->rows[b->n++]);
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

void audit_log_stats(const struct audit_log *log, struct audit_stats *out)
{
	out->pending = (log->pending ? log->pending->n : 0) + (log->writing ? log->writing_rows : 0);
	out->written = log->written;
	out->dropped = log->dropped;
}
