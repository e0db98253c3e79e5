/*
 * lxd_collect.h - gathers one struct lxd_snapshot from the local LXD.
 *
 * The first round asks, in parallel: GET /1.0, /1.0/instances (all
 * projects), /1.0/resources, /1.0/cluster/members, /1.0/storage-pools and
 * /1.0/metrics. The second round asks each pool's resources and, when LXD is
 * clustered, each member's resources and pools with ?target=MEMBER. At most
 * LXD_COLLECT_PARALLEL requests are in flight at once.
 *
 * /1.0, instances and resources are required: if one fails the collection
 * fails. The rest are optional: a failure leaves that part of the snapshot
 * empty (the members list: standalone).
 */
#ifndef LXCM_AGENT_LXD_COLLECT_H
#define LXCM_AGENT_LXD_COLLECT_H

#include <stddef.h>

#include "agent/agent.h"
#include "agent/status.h"

/* Caps on what LXD may send us (STYLE.md rule 4). */
#define LXD_COLLECT_BODY_MAX (16 * 1024 * 1024)
/* Metrics go to the manager inside the heartbeat, which it caps at 8 MiB. */
#define LXD_COLLECT_METRICS_MAX (4 * 1024 * 1024)
#define LXD_COLLECT_PARALLEL 6
/* Most members and pools asked about one by one; the rest are skipped. */
#define LXD_COLLECT_MAX_MEMBERS 64
#define LXD_COLLECT_MAX_POOLS 64

struct lxd_collect;

/*
 * Called once. err 0: snap is complete (borrowed, valid during the call;
 * snap->load is left 0 for the caller). Otherwise errmsg says what failed,
 * e.g. "GET /1.0/instances: connection refused", and err is -EPROTO when
 * LXD answered but not as asked (an error status, bad JSON), -ENOMEM, or the
 * network error (LXD unreachable). The collection frees itself
 * after the callback returns; the callback must not cancel it.
 */
typedef void (*lxd_collect_cb)(int err, const char *errmsg, const struct lxd_snapshot *snap,
			       void *arg);

/*
 * Starts a collection. NULL when it failed at once (out of memory, no
 * request could be started): no callback then, the reason is in err.
 */
struct lxd_collect *lxd_collect_start(struct agent *ag, lxd_collect_cb cb, void *arg, char *err,
				      size_t errlen);
/* Abandons a collection in flight: no callback. NULL is fine. */
void lxd_collect_cancel(struct lxd_collect *lc);

#endif
