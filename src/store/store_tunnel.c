/*
 * store_tunnel.c - which replica holds the tunnel of each cluster. A row
 * goes with its cluster (store_cluster_delete).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_tx.h"

#define OF(field) offsetof(struct store_tunnel_owner, field)
/* clang-format off */
static const struct store_col tunnel_cols[] = {
    {SC_TEXT, OF(replica), 0}, {SC_TEXT, OF(protocol), 0},
    {SC_INT64, OF(epoch), 0}, {SC_INT64, OF(since), 0},
};
/* clang-format on */

int store_tunnel_set(struct store *s, const char *cluster, const char *replica, int64_t epoch,
		     const char *protocol, int64_t since)
{
	return store_write_one(s, __func__, STORE_SQL_TUNNEL_SET,
			       SV_ARGS(SV_TEXT(cluster), SV_TEXT(replica), SV_INT(epoch),
				       SV_TEXT(protocol), SV_INT(since)),
			       1);
}

int store_tunnel_clear(struct store *s, const char *cluster, const char *replica, int64_t epoch)
{
	return store_write_one(s, __func__, STORE_SQL_TUNNEL_CLEAR,
			       SV_ARGS(SV_TEXT(cluster), SV_TEXT(replica), SV_INT(epoch)), 0);
}

int store_tunnel_clear_replica(struct store *s, const char *replica)
{
	return store_write_one(s, __func__, STORE_SQL_TUNNEL_CLEAR_REPLICA,
			       SV_ARGS(SV_TEXT(replica)), 0);
}

int store_tunnel_get(struct store *s, const char *cluster, struct store_tunnel_owner *out)
{
	memset(out, 0, sizeof(*out));
	return store_read_one(s, __func__, STORE_SQL_TUNNEL_GET, SV_ARGS(SV_TEXT(cluster)),
			      SC_SPEC(tunnel_cols), out);
}

void store_tunnel_owner_clear(struct store_tunnel_owner *t)
{
	store_cols_reset(SC_SPEC(tunnel_cols), t, sizeof(*t));
}
