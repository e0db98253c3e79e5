/*
 * audit.h - the audit log of proxied requests.
 *
 * One row per request that reached a cluster's tunnel (v1 or v2): who,
 * which cluster, method, path, status, bytes each way, duration. Rows are
 * gathered in memory and written in batches, one transaction each, on a
 * store worker thread: every AUDIT_FLUSH_MS or as soon as AUDIT_BATCH_ROWS
 * are waiting (one transaction per request cost a third of the small-request
 * throughput). At most AUDIT_MAX_PENDING rows wait; past that a row is
 * dropped and counted in the log, never a failed request. audit_flush_sync
 * writes what waits at shutdown.
 *
 * No row is lost to a crash: each is appended to a journal file in the
 * data directory before it waits (audit_journal.h), and the journal is
 * written to the database at the next start. A batch the database refuses
 * stays in memory and is tried again every AUDIT_RETRY_MS.
 */
#ifndef LXCM_AUDIT_H
#define LXCM_AUDIT_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct principal;

#define AUDIT_ACTOR_MAX 160 /* "alice@example.com (oidc)": PRINCIPAL_ID_MAX */
#define AUDIT_ACTOR_NAME_MAX 96 /* PRINCIPAL_NAME_MAX */
#define AUDIT_CLIENT_MAX 48	/* NET_ADDR_TEXT_MAX */
#define AUDIT_REQUEST_ID_LEN 32 /* hex digits */
#define AUDIT_FLUSH_MS 20
#define AUDIT_BATCH_ROWS 256
#define AUDIT_MAX_PENDING 16384
#define AUDIT_RETRY_MS 1000 /* after the database refused a batch */

struct audit_log;

struct audit_entry {
	char actor[AUDIT_ACTOR_MAX];
	char actor_name[AUDIT_ACTOR_NAME_MAX]; /* "" when there is no principal */
	/* From audit_request_id when the request was sent on with it; NULL: a new one. */
	const char *request_id;
	const char *client; /* the client's address, or NULL */
	const char *cluster;
	const char *method;
	const char *path;
	int status;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t start_ms; /* uv_now() when the request arrived */
};

/*
 * The actor of a request's row: its principal's stable id ("token:" and
 * the first 12 hex digits of the SHA-256 of its API token; principal.h),
 * or "anonymous". Never the secret, never read from a header.
 */
void audit_actor_of(const struct principal *p, char out[AUDIT_ACTOR_MAX]);
/* Fills e's actor (audit_actor_of) and actor_name (the principal's name, or ""). */
void audit_entry_principal(struct audit_entry *e, const struct principal *p);
/*
 * A new request id (AUDIT_REQUEST_ID_LEN hex digits and a NUL): 16 random
 * per process and a counter, so ids never repeat. The proxy sends it to the
 * cluster (X-Request-Id) and gives it back in its audit_entry.
 */
void audit_request_id(struct server *srv, char out[AUDIT_REQUEST_ID_LEN + 1]);
struct audit_log *audit_log_new(struct server *srv);
/* Writes the rows still waiting, synchronously (the loop has stopped). */
void audit_flush_sync(struct audit_log *log);
/* Frees after the loop closed the timer (call before the final uv_run). */
void audit_log_free(struct audit_log *log);
/*
 * Records the row of one request and logs its line (request id, actor,
 * cluster, method, path, status, bytes each way, duration): the one place
 * both are made, so they always agree.
 */
void audit_record(struct server *srv, const struct audit_entry *e);

/* For metrics: rows waiting (in memory or being written), committed, dropped. */
struct audit_stats {
	uint64_t pending, written, dropped;
};
void audit_log_stats(const struct audit_log *log, struct audit_stats *out);

#endif
