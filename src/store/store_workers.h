/*
 * store_workers.h - the store's own worker threads.
 *
 * Store work runs on a fixed number of threads that belong to the store
 * (not on libuv's shared pool, where it would queue behind DNS lookups and
 * file work, and where a slow database would hold every thread). The
 * threads start with the first submission. Each loop that submits work
 * gets a completion port: a uv_async that delivers the done callbacks on
 * that loop, and keeps the loop alive while work of it is queued or
 * running. A port is closed when its last job is delivered, so a loop with
 * no store work in flight holds no handle of the store.
 *
 * Shutdown drains: store_workers_stop() lets the threads finish the work
 * queued on them, joins them, delivers every result still undelivered (the
 * loop may have been stopped before they came back) and closes the ports;
 * work submitted from then on is refused. store_close() does the same
 * without a loop to deliver on: results still undelivered then are dropped
 * with a warning.
 */
#ifndef LXCM_STORE_WORKERS_H
#define LXCM_STORE_WORKERS_H

#include <uv.h>

#include "store/store.h"

#define STORE_THREADS_DEFAULT 2
#define STORE_THREADS_MAX 64
/* Jobs queued and not yet started, all loops together; past it submission fails. */
#define STORE_QUEUE_MAX 65536

typedef void (*store_work_fn)(struct store *s, void *ctx);
typedef void (*store_done_fn)(void *ctx);

/*
 * Sets the number of worker threads (1..STORE_THREADS_MAX), before the
 * first submission. 0, -EINVAL, or -EBUSY once the threads run.
 */
int store_workers_set_threads(struct store *s, unsigned n);
/* Threads running now (0 before the first submission). */
unsigned store_workers_running(struct store *s);

/*
 * Runs work(s, ctx) on a worker thread, then done(ctx) (may be NULL) on
 * loop's thread. Called on loop's thread. 0, or a negative uv code
 * (UV_EINVAL, UV_ENOMEM, UV_EAGAIN when the queue is full or no thread
 * could start, UV_ECANCELED once stopped), and then neither callback runs.
 */
int store_workers_submit(struct store *s, uv_loop_t *loop, store_work_fn work, store_done_fn done,
			 void *ctx);

/*
 * Drains and stops the workers (see above). Called on the thread of the
 * loops that submitted work, before they are closed; done callbacks run
 * here, and the caller runs the loop once more to free the ports.
 */
void store_workers_stop(struct store *s);

int store_workers__init(struct store *s);
void store_workers__free(struct store *s);

#endif
