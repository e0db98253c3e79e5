/* audit_retention.c - pruning old audit rows in small steps (see audit_retention.h). */
#include "server/audit_retention.h"

#include <stdlib.h>

#include "common/log.h"
#include "common/timefmt.h"
#include "server/server.h"
#include "store/store_async.h"

struct audit_retention {
	struct server *srv;
	uv_timer_t timer;
	int closing;	 /* set by audit_retention_free: nothing more starts */
	int64_t before;	 /* the round's cut: rows with at < before go */
	int64_t deleted; /* by the last batch */
	int64_t total;	 /* by the round so far */
	int rc;
};

/* Between rounds: a minute, or half the retention when that is shorter. */
static uint64_t audit_retention_every_ms(const struct audit_retention *r)
{
	uint64_t half = (uint64_t)r->srv->cfg.audit_retention_s * 500;

	if (half < 1000)
		half = 1000;
	return half < AUDIT_PRUNE_EVERY_MS ? half : AUDIT_PRUNE_EVERY_MS;
}

static void audit_retention_work(struct store *s, void *arg)
{
	struct audit_retention *r = arg;

	r->rc = store_audit_prune(s, r->before, AUDIT_PRUNE_BATCH, &r->deleted);
}

static void audit_retention_batch(uv_timer_t *t);
static void audit_retention_round(uv_timer_t *t);

static void audit_retention_done(void *arg)
{
	struct audit_retention *r = arg;
	int more = r->rc == 0 && r->deleted >= AUDIT_PRUNE_BATCH;

	if (r->closing)
		return;
	if (r->rc == 0)
		r->total += r->deleted;
	else
		LOG_WARN("cannot prune the audit log now; trying again later");
	if (!more && r->total > 0)
		LOG_INFO("pruned %lld audit rows older than %lld s", (long long)r->total,
			 (long long)r->srv->cfg.audit_retention_s);
	/* After a full batch more may wait: the loop and other store work go first. */
	if (more)
		uv_timer_start(&r->timer, audit_retention_batch, AUDIT_PRUNE_YIELD_MS, 0);
	else
		uv_timer_start(&r->timer, audit_retention_round, audit_retention_every_ms(r), 0);
}

/* One batch on a store worker; a busy store is tried again at the next round. */
static void audit_retention_batch(uv_timer_t *t)
{
	struct audit_retention *r = t->data;

	if (store_run(r->srv->loop, r->srv->store, audit_retention_work, audit_retention_done, r) <
	    0)
		uv_timer_start(&r->timer, audit_retention_round, audit_retention_every_ms(r), 0);
}

static void audit_retention_round(uv_timer_t *t)
{
	struct audit_retention *r = t->data;

	r->before = time_now() - r->srv->cfg.audit_retention_s;
	r->total = 0;
	audit_retention_batch(t);
}

struct audit_retention *audit_retention_start(struct server *srv)
{
	struct audit_retention *r;

	if (srv->cfg.audit_retention_s <= 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		LOG_WARN("out of memory: old audit rows will not be pruned");
		return NULL;
	}
	r->srv = srv;
	uv_timer_init(srv->loop, &r->timer);
	r->timer.data = r;
	uv_unref((uv_handle_t *)&r->timer); /* never what keeps the loop alive */
	uv_timer_start(&r->timer, audit_retention_round, 0, 0);
	return r;
}

static void audit_retention_closed(uv_handle_t *h)
{
	free(h->data);
}

void audit_retention_free(struct audit_retention *r)
{
	if (r == NULL)
		return;
	r->closing = 1;
	uv_close((uv_handle_t *)&r->timer, audit_retention_closed);
}
