/*
 * store_async.c - store calls off the loop: store_run on the store's worker
 * threads, and the group commit of heartbeats.
 */
#include "store/store_async.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

int store_run(uv_loop_t *loop, struct store *s, store_work_fn work, store_done_fn done, void *ctx)
{
	return store_workers_submit(s, loop, work, done, ctx);
}

/* ---- group commit of status rows ---- */

/*
 * One queue per (loop, store), made by the first post and freed when it
 * runs dry, so nothing stays allocated between bursts or at exit. Only the
 * loop thread touches a queue outside the work function, and the work
 * function touches only its own batch. The list of queues is shared by
 * every loop, so it has a mutex.
 */
struct status_queue {
	struct status_queue *sq_next;
	uv_loop_t *sq_loop;
	struct store *sq_store;
	struct store_status_post *sq_head, **sq_tailp; /* waiting */
	int sq_running;
	/* The batch on a worker thread. */
	struct store_status_post *sq_batch[STORE_STATUS_BATCH_MAX];
	struct store_status_row sq_rows[STORE_STATUS_BATCH_MAX];
	int sq_rcs[STORE_STATUS_BATCH_MAX];
	size_t sq_n;
};

static struct status_queue *status_queues;
static pthread_mutex_t status_queues_mu = PTHREAD_MUTEX_INITIALIZER;

static struct status_queue *status_queue_find(uv_loop_t *loop, struct store *s)
{
	struct status_queue *q;

	for (q = status_queues; q; q = q->sq_next)
		if (q->sq_loop == loop && q->sq_store == s)
			return q;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->sq_loop = loop;
	q->sq_store = s;
	q->sq_tailp = &q->sq_head;
	q->sq_next = status_queues;
	status_queues = q;
	return q;
}

static struct status_queue *status_queue_get(uv_loop_t *loop, struct store *s)
{
	struct status_queue *q;

	pthread_mutex_lock(&status_queues_mu);
	q = status_queue_find(loop, s);
	pthread_mutex_unlock(&status_queues_mu);
	return q;
}

static void status_queue_free(struct status_queue *q)
{
	struct status_queue **pp;

	pthread_mutex_lock(&status_queues_mu);
	for (pp = &status_queues; *pp; pp = &(*pp)->sq_next)
		if (*pp == q) {
			*pp = q->sq_next;
			break;
		}
	pthread_mutex_unlock(&status_queues_mu);
	free(q);
}

static void status_batch_work(struct store *s, void *ctx)
{
	struct status_queue *q = ctx;

	store_cluster_set_status_many(s, q->sq_rows, q->sq_n, q->sq_rcs);
}

static void status_batch_done(void *ctx);

/*
 * Moves up to STORE_STATUS_BATCH_MAX waiting posts into a batch and starts
 * it; frees q when nothing waits. sq_running stays set while failed posts
 * are answered, so a post made from their callbacks only queues.
 */
static void status_batch_start(struct status_queue *q)
{
	struct store_status_post *p;
	size_t i;
	int rc;

	q->sq_running = 1;
	while (q->sq_head) {
		q->sq_n = 0;
		while (q->sq_head && q->sq_n < STORE_STATUS_BATCH_MAX) {
			p = q->sq_head;
			q->sq_head = p->ssp_next;
			p->ssp_next = NULL;
			q->sq_batch[q->sq_n] = p;
			q->sq_rows[q->sq_n] = p->row;
			q->sq_n++;
		}
		if (q->sq_head == NULL)
			q->sq_tailp = &q->sq_head;
		rc = store_run(q->sq_loop, q->sq_store, status_batch_work, status_batch_done, q);
		if (rc == 0)
			return;
		/* The workers refused: fail this batch, then try the rest. */
		for (i = 0; i < q->sq_n; i++) {
			q->sq_batch[i]->rc = rc;
			q->sq_batch[i]->done(q->sq_batch[i]);
		}
	}
	status_queue_free(q);
}

static void status_batch_done(void *ctx)
{
	struct status_queue *q = ctx;
	struct store_status_post *batch[STORE_STATUS_BATCH_MAX];
	size_t i, n = q->sq_n;

	/* Copied first: a done callback may post again and start a batch. */
	for (i = 0; i < n; i++) {
		batch[i] = q->sq_batch[i];
		batch[i]->rc = q->sq_rcs[i];
	}
	q->sq_running = 0;
	q->sq_n = 0;
	/* The next batch leaves before the answers: the disk works while we reply. */
	if (q->sq_head)
		status_batch_start(q);
	else
		status_queue_free(q);
	for (i = 0; i < n; i++)
		batch[i]->done(batch[i]);
}

int store_status_post(uv_loop_t *loop, struct store *s, struct store_status_post *post)
{
	struct status_queue *q;

	if (loop == NULL || s == NULL || post == NULL || post->done == NULL)
		return -EINVAL;
	q = status_queue_get(loop, s);
	if (q == NULL)
		return -ENOMEM;
	post->ssp_next = NULL;
	*q->sq_tailp = post;
	q->sq_tailp = &post->ssp_next;
	if (!q->sq_running)
		status_batch_start(q);
	return 0;
}
