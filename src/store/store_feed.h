/*
 * store_feed.h - the store's change feed: what changed, told to the caches.
 *
 * Caches of store data (the API token hashes of auth.c, the enrolled set,
 * the tunnel registry) subscribe here instead of being updated by the
 * handler that made a change, so a change is seen the same way whatever
 * code path made it (and, with PostgreSQL, whatever replica).
 *
 * The rules announce their own changes once committed (store_tx_announce),
 * from whatever thread ran them. A backend shared by other processes
 * (PostgreSQL) also sends them to those processes inside the transaction
 * (ops->announce: NOTIFY) and reports theirs here (ops->feed_watch:
 * LISTEN), through store_feed__publish(), so every replica's caches hear
 * of a change whichever replica made it.
 *
 * Subscribers are called on the loop they subscribed with, never from
 * inside a store call. A change made by a store_run() job on that loop is
 * delivered before the job's done callback runs, so a cache is up to date
 * before the answer to the request that changed it leaves. The feed's loop
 * handle does not keep the loop alive.
 */
#ifndef LXCM_STORE_FEED_H
#define LXCM_STORE_FEED_H

#include <uv.h>

#include "store/store.h"

enum store_change_kind {
	STORE_CHANGE_API_TOKEN_CREATED = 1u << 0,  /* name: token name; key: its hash */
	STORE_CHANGE_API_TOKEN_REVOKED = 1u << 1,  /* name: token name; key: its hash */
	STORE_CHANGE_CLUSTER_ADDED = 1u << 2,	   /* name: cluster; key: its fingerprint */
	STORE_CHANGE_CLUSTER_REMOVED = 1u << 3,	   /* name: cluster; key: its fingerprint */
	STORE_CHANGE_JOIN_TOKEN_CREATED = 1u << 4, /* name: cluster the token is for */
	STORE_CHANGE_JOIN_TOKEN_USED = 1u << 5,	   /* name: cluster that joined with it */
	STORE_CHANGE_JOIN_TOKEN_REVOKED = 1u << 6, /* name: cluster the token was for */
	/* A session ended (logout, revoke, expiry) or its role changed (refresh).
	 * name: its id; key: the SHA-256 of its cookie */
	STORE_CHANGE_SESSION_CHANGED = 1u << 7,
};
#define STORE_CHANGE_ALL 0xffu

struct store_change {
	struct store_change *next; /* the feed's queue */
	enum store_change_kind kind;
	const char *name;
	const char *key; /* NULL when the kind has none */
};

typedef void (*store_feed_fn)(const struct store_change *c, void *data);

/*
 * Calls fn(change, data) on loop for every change whose kind is in mask.
 * Every subscriber of a store uses the same loop (-EINVAL otherwise).
 * 0, -EINVAL, -ENOMEM or a negative uv code.
 */
int store_feed_subscribe(struct store *s, uv_loop_t *loop, unsigned mask, store_feed_fn fn,
			 void *data);
/*
 * Drops the subscription (fn, data), on the loop thread and not from
 * inside a feed callback. When the last one goes, the feed's loop handle
 * is closed and changes are no longer queued.
 */
void store_feed_unsubscribe(struct store *s, store_feed_fn fn, void *data);

/* ---- for the store's layers and backends ---- */

/* A change with copies of name and key (key may be NULL), or NULL. */
struct store_change *store_change_new(enum store_change_kind kind, const char *name,
				      const char *key);
void store_change_free_list(struct store_change *list);
/* Queues a list of changes for the subscribers (any thread); takes the list. */
void store_feed__publish(struct store *s, struct store_change *list);
/* Delivers what is queued, if loop is the feed's loop (store_workers.c). */
void store_feed__deliver(struct store *s, uv_loop_t *loop);
int store_feed__init(struct store *s);
void store_feed__free(struct store *s);

#endif
