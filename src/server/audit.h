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
#define AUDIT_REQUEST_ID_LEN 32 /* hex digits */
#define AUDIT_FLUSH_MS 20
#define AUDIT_BATCH_ROWS 256
#define AUDIT_MAX_PENDING 16384
#define AUDIT_RETRY_MS 1000 /* after the database refused a batch */

struct audit_log;

struct audit_entry {
	char actor[AUDIT_ACTOR_MAX];
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
struct audit_log *audit_log_new(struct server *srv);
/* Writes the rows still waiting, synchronously (the loop has stopped). */
void audit_flush_sync(struct audit_log *log);
/* Frees after the loop closed the timer (call before the final uv_run). */
void audit_log_free(struct audit_log *log);
void audit_record(struct server *srv, const struct audit_entry *e);

#endif
