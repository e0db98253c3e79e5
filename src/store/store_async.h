/*
 * store_async.h - database calls off the event loop.
 *
 * store_run() queues work(s, ctx) on the store's own worker threads
 * (store_workers.h; --store-threads) and then calls done(ctx) on the loop
 * thread. work may call any store_* operation; it must not touch
 * loop-owned objects. ctx is owned by the caller and must stay valid until
 * done runs. Returns 0 or a negative uv error, in which case neither
 * callback runs. Changes the work made reach the change feed's
 * subscribers (store_feed.h) before done runs.
 */
#ifndef LXCM_STORE_ASYNC_H
#define LXCM_STORE_ASYNC_H

#include <uv.h>

#include "store/store.h"
#include "store/store_workers.h"

int store_run(uv_loop_t *loop, struct store *s, store_work_fn work, store_done_fn done, void *ctx);

/*
 * Group commit of status heartbeats. store_status_post queues one row; if
 * no write of (loop, s) is running it starts one at once, otherwise the row
 * waits, and every row that arrived meanwhile goes into the next
 * transaction together (at most STORE_STATUS_BATCH_MAX). done(post) runs on
 * the loop once the post's own transaction has ended, with post->rc: 0 (the
 * row is committed), -ENOENT (the cluster is gone), -EIO (the transaction
 * failed and was rolled back: nothing of it was written) or a negative uv
 * code (the workers refused the work). So nothing is acknowledged
 * before it is on disk, as with one transaction per post.
 *
 * The caller owns post and its strings until done runs; done may free them.
 * 0, or a negative code (then done never runs).
 */
#define STORE_STATUS_BATCH_MAX 256

struct store_status_post {
	struct store_status_row row;
	void (*done)(struct store_status_post *post);
	void *data;
	int rc;
	struct store_status_post *ssp_next; /* internal */
};

int store_status_post(uv_loop_t *loop, struct store *s, struct store_status_post *post);

#endif
