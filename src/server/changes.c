/*
 * changes.c - which in-memory caches follow which changes of the store.
 *
 * The caches are never updated by the handler that made a change: they
 * listen to the store's change feed (store_feed.h), so a change made by
 * any code path (an API call, a cluster leaving by itself, a direct store
 * call, later another replica) reaches them the same way, and before the
 * answer to the call that made it.
 */
#include <stddef.h>

#include "common/log.h"
#include "server/enrolled.h"
#include "server/oidc.h"
#include "server/server.h"
#include "server/tunnels.h"
#include "store/store_feed.h"

struct changes_sub {
	unsigned mask;
	store_feed_fn fn;
	void *data;
};

/* The subscriptions of srv; a cache srv does not have is left out. */
static size_t changes_subs(struct server *srv, struct changes_sub *out)
{
	size_t n = 0;

	out[n++] = (struct changes_sub){
	    STORE_CHANGE_API_TOKEN_CREATED | STORE_CHANGE_API_TOKEN_REVOKED, auth_on_change, srv};
	if (srv->enrolled != NULL)
		out[n++] =
		    (struct changes_sub){STORE_CHANGE_CLUSTER_ADDED | STORE_CHANGE_CLUSTER_REMOVED,
					 enrolled_on_change, srv->enrolled};
	if (srv->tunnels != NULL)
		out[n++] = (struct changes_sub){STORE_CHANGE_CLUSTER_REMOVED, tunnels_on_change,
						srv->tunnels};
	if (srv->oidc != NULL)
		out[n++] = (struct changes_sub){STORE_CHANGE_SESSION_CHANGED, auth_session_on_change,
						srv};
	return n;
}

int changes_listen(struct server *srv)
{
	struct changes_sub subs[4];
	size_t n = changes_subs(srv, subs);
	int rc;

	for (size_t i = 0; i < n; i++) {
		rc = store_feed_subscribe(srv->store, srv->loop, subs[i].mask, subs[i].fn,
					  subs[i].data);
		if (rc < 0) {
			LOG_ERROR("cannot follow the store's changes: %d", rc);
			changes_stop(srv);
			return rc;
		}
	}
	return 0;
}

/* Before the caches are freed and the loop closed. */
void changes_stop(struct server *srv)
{
	struct changes_sub subs[4];
	size_t n = changes_subs(srv, subs);

	for (size_t i = 0; i < n; i++)
		store_feed_unsubscribe(srv->store, subs[i].fn, subs[i].data);
}
