/*
 * store_async.c - runs store calls on libuv's thread pool.
 *
 * One store_job per call: it owns the uv_work_t and is freed in the
 * after-work callback, on the loop thread, once done has returned.
 */
#include "store/store_async.h"

#include <stdlib.h>

struct store_job {
	uv_work_t sj_req;
	struct store *sj_store;
	store_work_fn sj_work;
	store_done_fn sj_done;
	void *sj_ctx;
};

/* Runs on a thread-pool thread. */
static void store_job_work(uv_work_t *req)
{
	struct store_job *job = req->data;

	job->sj_work(job->sj_store, job->sj_ctx);
}

/*
 * Runs on the loop thread. The request is never handed out, so nobody can
 * uv_cancel() it and status is always 0: done follows every work.
 */
static void store_job_after(uv_work_t *req, int status)
{
	struct store_job *job = req->data;

	(void)status;
	if (job->sj_done != NULL)
		job->sj_done(job->sj_ctx);
	free(job);
}

int store_run(uv_loop_t *loop, struct store *s, store_work_fn work, store_done_fn done, void *ctx)
{
	struct store_job *job;
	int rc;

	if (loop == NULL || s == NULL || work == NULL)
		return UV_EINVAL;
	job = calloc(1, sizeof(*job));
	if (job == NULL)
		return UV_ENOMEM;
	job->sj_req.data = job;
	job->sj_store = s;
	job->sj_work = work;
	job->sj_done = done;
	job->sj_ctx = ctx;
	rc = uv_queue_work(loop, &job->sj_req, store_job_work, store_job_after);
	if (rc != 0)
		free(job);
	return rc;
}
