/*
 * store_async.h - database calls off the event loop.
 *
 * store_run() queues work(s, ctx) on libuv's thread pool and then calls
 * done(ctx) on the loop thread. work may call any store_ops function; it
 * must not touch loop-owned objects. ctx is owned by the caller and must
 * stay valid until done runs. Returns 0 or a negative uv error, in which
 * case neither callback runs.
 */
#ifndef LXCM_STORE_ASYNC_H
#define LXCM_STORE_ASYNC_H

#include <uv.h>

#include "store/store.h"

typedef void (*store_work_fn)(struct store *s, void *ctx);
typedef void (*store_done_fn)(void *ctx);

int store_run(uv_loop_t *loop, struct store *s, store_work_fn work, store_done_fn done,
	      void *ctx);

#endif
