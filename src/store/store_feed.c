/*
 * store_feed.c - the change feed (see store_feed.h).
 *
 * Changes are published from any thread into one queue under a mutex and
 * delivered on the subscribers' loop, by the feed's own uv_async or, first
 * thing, by a worker completion port on the same loop (store_workers.c).
 * The subscriber list is touched on the loop thread only.
 */
#include "store/store_feed.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/store_ops.h"

struct store_sub {
	struct store_sub *next;
	unsigned mask;
	store_feed_fn fn;
	void *data;
};

struct store_feed {
	pthread_mutex_t f_mu;
	uv_async_t *f_async; /* while someone listens */
	uv_loop_t *f_loop;
	struct store_change *f_head, **f_tail; /* published, not delivered */
	struct store_sub *f_subs;
	int f_watching; /* ops->feed_watch was called */
};

struct store_change *store_change_new(enum store_change_kind kind, const char *name,
				      const char *key)
{
	size_t nlen = name ? strlen(name) + 1 : 0, klen = key ? strlen(key) + 1 : 0;
	struct store_change *c = malloc(sizeof(*c) + nlen + klen);
	char *p;

	if (c == NULL)
		return NULL;
	p = (char *)(c + 1);
	c->next = NULL;
	c->kind = kind;
	c->name = name ? memcpy(p, name, nlen) : "";
	c->key = key ? memcpy(p + nlen, key, klen) : NULL;
	return c;
}

void store_change_free_list(struct store_change *list)
{
	while (list != NULL) {
		struct store_change *next = list->next;

		free(list);
		list = next;
	}
}

void store_feed__publish(struct store *s, struct store_change *list)
{
	struct store_feed *f = s->feed;

	if (list == NULL)
		return;
	pthread_mutex_lock(&f->f_mu);
	if (f->f_async == NULL) {
		pthread_mutex_unlock(&f->f_mu);
		store_change_free_list(list); /* nobody listens */
		return;
	}
	*f->f_tail = list;
	while (list->next != NULL)
		list = list->next;
	f->f_tail = &list->next;
	/* Under the mutex: unsubscribing closes the handle only after taking it. */
	uv_async_send(f->f_async);
	pthread_mutex_unlock(&f->f_mu);
}

static void store_feed_dispatch(struct store_feed *f, const struct store_change *c)
{
	for (struct store_sub *sub = f->f_subs; sub; sub = sub->next)
		if (sub->mask & (unsigned)c->kind)
			sub->fn(c, sub->data);
}

void store_feed__deliver(struct store *s, uv_loop_t *loop)
{
	struct store_feed *f = s->feed;
	struct store_change *list = NULL;

	pthread_mutex_lock(&f->f_mu);
	if (f->f_loop == loop) {
		list = f->f_head;
		f->f_head = NULL;
		f->f_tail = &f->f_head;
	}
	pthread_mutex_unlock(&f->f_mu);
	for (struct store_change *c = list; c; c = c->next)
		store_feed_dispatch(f, c);
	store_change_free_list(list);
}

static void store_feed_on_async(uv_async_t *a)
{
	struct store *s = a->data;

	store_feed__deliver(s, a->loop);
}

static void store_feed_free_handle(uv_handle_t *h)
{
	free(h);
}

/* Makes the feed's loop handle; it never keeps the loop alive. */
static int store_feed_attach(struct store *s, uv_loop_t *loop)
{
	struct store_feed *f = s->feed;
	uv_async_t *a = calloc(1, sizeof(*a));
	int rc;

	if (a == NULL)
		return -ENOMEM;
	rc = uv_async_init(loop, a, store_feed_on_async);
	if (rc != 0) {
		free(a);
		return rc;
	}
	a->data = s;
	uv_unref((uv_handle_t *)a);
	pthread_mutex_lock(&f->f_mu);
	f->f_async = a;
	f->f_loop = loop;
	pthread_mutex_unlock(&f->f_mu);
	return 0;
}

int store_feed_subscribe(struct store *s, uv_loop_t *loop, unsigned mask, store_feed_fn fn,
			 void *data)
{
	struct store_feed *f = s->feed;
	struct store_sub *sub;
	int rc = 0;

	if (loop == NULL || fn == NULL || (f->f_loop != NULL && f->f_loop != loop))
		return -EINVAL;
	sub = calloc(1, sizeof(*sub));
	if (sub == NULL)
		return -ENOMEM;
	if (f->f_async == NULL)
		rc = store_feed_attach(s, loop);
	if (rc == 0 && s->ops->feed_watch != NULL && !f->f_watching) {
		rc = s->ops->feed_watch(s);
		f->f_watching = rc == 0;
	}
	if (rc != 0) {
		free(sub);
		return rc;
	}
	*sub = (struct store_sub){f->f_subs, mask, fn, data};
	f->f_subs = sub;
	return 0;
}

void store_feed_unsubscribe(struct store *s, store_feed_fn fn, void *data)
{
	struct store_feed *f = s->feed;
	struct store_sub **pp, *sub;
	struct store_change *lost;
	uv_async_t *a;

	for (pp = &f->f_subs; (sub = *pp) != NULL; pp = &sub->next)
		if (sub->fn == fn && sub->data == data)
			break;
	if (sub == NULL)
		return;
	*pp = sub->next;
	free(sub);
	if (f->f_subs != NULL || f->f_async == NULL)
		return;
	pthread_mutex_lock(&f->f_mu);
	a = f->f_async;
	lost = f->f_head;
	f->f_async = NULL;
	f->f_loop = NULL;
	f->f_head = NULL;
	f->f_tail = &f->f_head;
	pthread_mutex_unlock(&f->f_mu);
	store_change_free_list(lost);
	uv_close((uv_handle_t *)a, store_feed_free_handle);
}

int store_feed__init(struct store *s)
{
	struct store_feed *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -ENOMEM;
	if (pthread_mutex_init(&f->f_mu, NULL) != 0) {
		free(f);
		return -ENOMEM;
	}
	f->f_tail = &f->f_head;
	s->feed = f;
	return 0;
}

/*
 * A subscriber left behind keeps its handle on the loop (the loop still
 * lists it); everything else goes.
 */
void store_feed__free(struct store *s)
{
	struct store_feed *f = s->feed;

	if (f == NULL)
		return;
	if (f->f_async != NULL)
		LOG_WARN("the store closes with feed subscribers left");
	while (f->f_subs != NULL) {
		struct store_sub *next = f->f_subs->next;

		free(f->f_subs);
		f->f_subs = next;
	}
	store_change_free_list(f->f_head);
	pthread_mutex_destroy(&f->f_mu);
	free(f);
	s->feed = NULL;
}
