/*
 * status.h - the status heartbeat body (MICROCLOUD-PROTOCOL.md, "Status
 * heartbeat body") computed from LXD API responses.
 *
 * agent_status_build() is a pure function: the caller fetches LXD, parses the
 * bodies (with its own size caps), hands in the `metadata` parts and gets the
 * JSON object to POST. Nothing here does I/O or logs. Every input is LXD's
 * word, i.e. peer data: missing or odd-typed fields are skipped, never
 * trusted, never a crash.
 */
#ifndef LXCM_AGENT_STATUS_H
#define LXCM_AGENT_STATUS_H

#include <stddef.h>

#include <jansson.h>

/* At most this many entries per status list; values past the first
 * AGENT_STATUS_MAX_KINDS - 1 are counted under "Other" (LXD has about
 * fifteen statuses). */
#define AGENT_STATUS_MAX_KINDS 32
/* At most this many storage_pool_usages entries; the rest are dropped. */
#define AGENT_STATUS_MAX_POOL_USAGES 256

/*
 * Everything is borrowed; agent_status_build() takes no reference and changes
 * nothing. Any pointer may be NULL (the matching part of the body is then
 * empty or zero).
 */
struct lxd_snapshot {
	/* metadata of GET /1.0/instances?recursion=1&all-projects=true (array) */
	json_t *instances;
	/* metadata of GET /1.0/resources (object): the member we talk to */
	json_t *resources;
	/* metadata of GET /1.0/cluster/members?recursion=1 (array); NULL when
	 * not clustered (LXD then answers that request with 500 "Server is
	 * not clustered": check environment.server_clustered of GET /1.0) */
	json_t *members;
	/* metadata of GET /1.0/storage-pools?recursion=1 (array) */
	json_t *pools;
	/* object: pool name -> metadata of GET /1.0/storage-pools/NAME/resources
	 * (the member we talk to, for local pools) */
	json_t *pool_resources;
	/* body of GET /1.0/metrics (Prometheus text), metrics_len bytes, not
	 * NUL-terminated; the caller caps its size */
	const char *metrics;
	size_t metrics_len;
	/* name of the member we talk to: environment.server_name of GET /1.0
	 * (the host name for a standalone LXD, the member name in a cluster) */
	const char *member_name;
	const char *ui_url; /* NULL -> "" */
	double load[3];	    /* 1/5/15 min load averages, from getloadavg() */

	/*
	 * Optional, for clusters, fetched with ?target=MEMBER (LXD 5.0 has no
	 * /1.0/cluster/members/NAME/state, so this is how to see the other
	 * members). When NULL or empty, only the member we talk to is counted.
	 *   member_resources: object member name -> metadata of
	 *     GET /1.0/resources?target=NAME; replaces `resources` for
	 *     cpu_total_count and memory_*, summed over members.
	 *   member_pool_resources: object member name -> object pool name ->
	 *     metadata of GET /1.0/storage-pools/POOL/resources?target=NAME;
	 *     replaces `pool_resources` for local pools (one entry per member).
	 */
	json_t *member_resources;
	json_t *member_pool_resources;
};

/*
 * Returns a new reference to the heartbeat body:
 *
 *   instance_statuses    counts of instances[].status, in order of first sight
 *   member_statuses      counts of members[].status; [{"Online",1}] when
 *                        members is NULL or an empty array (standalone LXD)
 *   ceph_statuses        [] (no Ceph detection)
 *   cpu_total_count      resources.cpu.total
 *   cpu_load_1/5/15      load[] as "%.2f" strings ("0.00" when not finite)
 *   memory_total_amount  resources.memory.total
 *   memory_usage         resources.memory.used
 *   storage_pool_usages  one {"name","member","total","usage"} per pool from
 *                        space.total / space.used; "member" is "" for pools
 *                        whose driver is shared (ceph, cephfs, cephobject,
 *                        powerflex, pure, lvmcluster, ...), else the member
 *                        whose disk it is (member_name, or each key of
 *                        member_pool_resources). Pools with total <= 0 (LXD's
 *                        "no information") are left out. Without `pools`,
 *                        the keys of pool_resources are taken as local pools.
 *   ui_url               ui_url or ""
 *   server_metrics       [{"member": member_name, "service": "LXD",
 *                        "metrics": text}] when metrics is non-NULL and valid
 *                        UTF-8, else []
 *
 * NULL only when memory ran out.
 */
json_t *agent_status_build(const struct lxd_snapshot *snap);

#endif
