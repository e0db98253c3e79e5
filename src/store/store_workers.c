/*
 * store_workers.c - the store's worker threads and the completion ports
 * that bring results back to the loops (see store_workers.h).
 *
 * Two kinds of mutex, so the loop and the workers meet as little as
 * possible (a worker preempted while it holds a lock the loop wants stalls
 * the loop): the workers' mutex guards the job queue and the list of
 * ports; each port's mutex guards its list of finished jobs. A worker
 * signals a port's uv_async while it holds the port's mutex, as libuv's
 * own pool does. A port's in-flight count is touched only by its loop's
 * thread (which submits and delivers), and the loop frees a port only when
 * that count is 0: then no job of it is queued, running or finished, so no
 * worker can signal a port that is gone.
 */
#include "store/store_workers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/store_feed.h"
#include "store/store_ops.h"

struct store_job {
	struct store_job *j_next;
	struct store_port *j_port;
	store_work_fn j_work;
	store_done_fn j_done;
	void *j_ctx;
};

/* The done callbacks of one loop. */
struct store_port {
	uv_async_t p_async;
	struct store_workers *p_w;
	uv_loop_t *p_loop;
	pthread_mutex_t p_mu;
	struct store_job *p_done, **p_done_tail; /* finished, not yet delivered (p_mu) */
	size_t p_inflight; /* submitted, not yet delivered (loop thread only) */
	struct store_port *p_next;
};

struct store_workers {
	struct store *w_store;
	pthread_mutex_t w_mu;
	pthread_cond_t w_cv;
	pthread_t w_threads[STORE_THREADS_MAX];
	unsigned w_nthreads; /* configured */
	unsigned w_running;  /* started */
	int w_stopping;
	struct store_job *w_head, **w_tail; /* queued, not started */
	size_t w_queued;
	struct store_port *w_ports;
};

/* Pops the next job, waiting for one; NULL once stopping and drained. */
static struct store_job *store_workers_next(struct store_workers *w)
{
	struct store_job *j;

	while (w->w_head == NULL && !w->w_stopping)
		pthread_cond_wait(&w->w_cv, &w->w_mu);
	j = w->w_head;
	if (j != NULL) {
		w->w_head = j->j_next;
		if (w->w_head == NULL)
			w->w_tail = &w->w_head;
		w->w_queued--;
	}
	return j;
}

static void *store_workers_main(void *arg)
{
	struct store_workers *w = arg;
	struct store_port *p;
	struct store_job *j;
	sigset_t all;

	/* Signals are the loop's business (uv_signal), never a worker's. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&w->w_mu);
	while ((j = store_workers_next(w)) != NULL) {
		pthread_mutex_unlock(&w->w_mu);
		j->j_work(w->w_store, j->j_ctx);
		p = j->j_port;
		j->j_next = NULL;
		pthread_mutex_lock(&p->p_mu);
		*p->p_done_tail = j;
		p->p_done_tail = &j->j_next;
		uv_async_send(&p->p_async);
		pthread_mutex_unlock(&p->p_mu);
		pthread_mutex_lock(&w->w_mu);
	}
	pthread_mutex_unlock(&w->w_mu);
	return NULL;
}

/* ---- completion ports (loop thread) ---- */

static void store_port_free(uv_handle_t *h)
{
	struct store_port *p = h->data;

	pthread_mutex_destroy(&p->p_mu);
	free(p);
}

/*
 * Delivers the port's finished jobs: first the feed's changes (so caches
 * see a change before the answer to the request that made it), then each
 * done callback. A done callback may submit more work to this port. The
 * port closes when nothing of it is in flight any more.
 */
static void store_port_on_async(uv_async_t *a)
{
	struct store_port *p = a->data;
	struct store_workers *w = p->p_w;
	struct store_job *list, *j;
	struct store_port **pp;

	pthread_mutex_lock(&p->p_mu);
	list = p->p_done;
	p->p_done = NULL;
	p->p_done_tail = &p->p_done;
	pthread_mutex_unlock(&p->p_mu);
	/* After taking the list: a job's changes were published before it finished. */
	store_feed__deliver(w->w_store, p->p_loop);
	while ((j = list) != NULL) {
		list = j->j_next;
		p->p_inflight--;
		if (j->j_done != NULL)
			j->j_done(j->j_ctx);
		free(j);
	}
	if (p->p_inflight != 0)
		return;
	pthread_mutex_lock(&w->w_mu);
	for (pp = &w->w_ports; *pp; pp = &(*pp)->p_next)
		if (*pp == p) {
			*pp = p->p_next;
			break;
		}
	pthread_mutex_unlock(&w->w_mu);
	uv_close((uv_handle_t *)&p->p_async, store_port_free);
}

/* The port of loop, made on first use; the caller holds the mutex. */
static struct store_port *store_port_get(struct store_workers *w, uv_loop_t *loop)
{
	struct store_port *p;

	for (p = w->w_ports; p; p = p->p_next)
		if (p->p_loop == loop)
			return p;
	p = calloc(1, sizeof(*p));
	if (p == NULL || pthread_mutex_init(&p->p_mu, NULL) != 0) {
		free(p);
		return NULL;
	}
	if (uv_async_init(loop, &p->p_async, store_port_on_async) != 0) {
		pthread_mutex_destroy(&p->p_mu);
		free(p);
		return NULL;
	}
	p->p_async.data = p;
	p->p_w = w;
	p->p_loop = loop;
	p->p_done_tail = &p->p_done;
	p->p_next = w->w_ports;
	w->w_ports = p;
	return p;
}

/* Starts the configured threads; the caller holds the mutex. 0 when at least one runs. */
static int store_workers_start(struct store_workers *w)
{
	while (w->w_running < w->w_nthreads) {
		int rc = pthread_create(&w->w_threads[w->w_running], NULL, store_workers_main, w);

		if (rc != 0) {
			LOG_ERROR("cannot start a store worker thread: %s", strerror(rc));
			break;
		}
		w->w_running++;
	}
	return w->w_running > 0 ? 0 : UV_EAGAIN;
}

int store_workers_submit(struct store *s, uv_loop_t *loop, store_work_fn work, store_done_fn done,
			 void *ctx)
{
	struct store_workers *w = s != NULL ? s->workers : NULL;
	struct store_port *p = NULL;
	struct store_job *j;
	int rc;

	if (w == NULL || loop == NULL || work == NULL)
		return UV_EINVAL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return UV_ENOMEM;
	*j = (struct store_job){NULL, NULL, work, done, ctx};
	pthread_mutex_lock(&w->w_mu);
	if (w->w_stopping)
		rc = UV_ECANCELED;
	else if (w->w_queued >= STORE_QUEUE_MAX)
		rc = UV_EAGAIN;
	else if ((rc = store_workers_start(w)) == 0 && (p = store_port_get(w, loop)) == NULL)
		rc = UV_ENOMEM;
	if (rc == 0) {
		j->j_port = p;
		p->p_inflight++;
		*w->w_tail = j;
		w->w_tail = &j->j_next;
		w->w_queued++;
		pthread_cond_signal(&w->w_cv);
	}
	pthread_mutex_unlock(&w->w_mu);
	if (rc != 0)
		free(j);
	return rc;
}

int store_workers_set_threads(struct store *s, unsigned n)
{
	struct store_workers *w = s->workers;
	int rc = 0;

	if (n == 0 || n > STORE_THREADS_MAX)
		return -EINVAL;
	pthread_mutex_lock(&w->w_mu);
	if (w->w_running > 0)
		rc = -EBUSY;
	else
		w->w_nthreads = n;
	pthread_mutex_unlock(&w->w_mu);
	return rc;
}

unsigned store_workers_running(struct store *s)
{
	struct store_workers *w = s->workers;
	unsigned n;

	pthread_mutex_lock(&w->w_mu);
	n = w->w_running;
	pthread_mutex_unlock(&w->w_mu);
	return n;
}

int store_workers__init(struct store *s)
{
	struct store_workers *w = calloc(1, sizeof(*w));

	/* Neither init can fail on Linux without attributes; checked all the same. */
	if (w == NULL || pthread_mutex_init(&w->w_mu, NULL) != 0)
		goto fail;
	if (pthread_cond_init(&w->w_cv, NULL) != 0) {
		pthread_mutex_destroy(&w->w_mu);
		goto fail;
	}
	w->w_store = s;
	w->w_nthreads = STORE_THREADS_DEFAULT;
	w->w_tail = &w->w_head;
	s->workers = w;
	return 0;
fail:
	free(w);
	return -ENOMEM;
}

/*
 * Drops what no loop will deliver any more: the store is closed with work
 * in flight and without store_workers_stop(). The port handles stay
 * allocated: their loop still lists them.
 */
static void store_workers_drop_undelivered(struct store_workers *w)
{
	size_t lost = 0;

	for (struct store_port *p = w->w_ports; p; p = p->p_next) {
		while (p->p_done != NULL) {
			struct store_job *j = p->p_done;

			p->p_done = j->j_next;
			free(j);
			lost++;
		}
		p->p_done_tail = &p->p_done;
	}
	if (lost)
		LOG_WARN("%zu store results were never delivered (the loop stopped first)", lost);
}

/* Lets the threads run what is queued, then joins them. */
static void store_workers_join(struct store_workers *w)
{
	pthread_mutex_lock(&w->w_mu);
	w->w_stopping = 1;
	pthread_cond_broadcast(&w->w_cv);
	pthread_mutex_unlock(&w->w_mu);
	for (unsigned i = 0; i < w->w_running; i++)
		pthread_join(w->w_threads[i], NULL);
	w->w_running = 0;
}

/*
 * With the threads gone, every job of a port is in its done list: one
 * delivery each empties the ports and closes them (a done callback that
 * submits more work is refused, so nothing new comes in flight).
 */
void store_workers_stop(struct store *s)
{
	struct store_workers *w = s->workers;
	struct store_port *p, *next;

	if (w == NULL)
		return;
	store_workers_join(w);
	for (p = w->w_ports; p; p = next) {
		next = p->p_next;
		store_port_on_async(&p->p_async);
	}
}

void store_workers__free(struct store *s)
{
	struct store_workers *w = s->workers;

	if (w == NULL)
		return;
	store_workers_join(w);
	store_workers_drop_undelivered(w);
	pthread_cond_destroy(&w->w_cv);
	pthread_mutex_destroy(&w->w_mu);
	free(w);
	s->workers = NULL;
}
