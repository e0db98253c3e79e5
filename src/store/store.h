/*
 * store.h - the one storage interface of lxcm: records and operations.
 *
 * The store has three layers (docs/architecture.md, "The store"):
 *
 *   store_*()       the operations below, with the rules (the atomic join
 *                   with its constant-time secret check, single-use join
 *                   tokens, the last API token, audit dedupe, the cascade
 *                   on cluster removal), written once: store_cluster.c,
 *                   store_join_token.c, store_api_token.c, store_tunnel.c,
 *                   store_audit.c.
 *   store_tx        one operation's hold on a backend connection, with
 *                   typed statement runners (store_tx.c).
 *   struct store_ops  a backend: its SQL dialect, one text per statement
 *                   id, plus connections and transactions (store_ops.h;
 *                   sqlite.c now, postgres.c later).
 *
 * Every operation is synchronous and may block on disk or network, so code
 * on the event loop never calls one directly: it goes through store_run()
 * (store_async.h), which runs it on the store's own worker threads and
 * calls back on the loop. Operations are safe to call from several threads.
 * Writes announce what they changed to the change feed (store_feed.h) once
 * they have committed.
 *
 * Return values: 0 on success, or a negative errno-style code:
 *   -ENOENT  the row does not exist
 *   -EEXIST  a unique name is already taken
 *   -EACCES  a secret did not match or has expired
 *   -EBUSY   the change would lock everybody out (the last API token)
 *   -EINVAL  a required argument is missing
 *   -EIO     the database failed (logged once, by the backend)
 *   -ENOMEM  allocation failed
 * Strings in records are malloc'd and owned by the record; the *_clear and
 * *_free functions accept NULL. Times are Unix seconds (int64_t), 0 meaning
 * "never".
 */
#ifndef LXCM_STORE_H
#define LXCM_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_cluster {
	int64_t id;
	char *name;
	char *description;
	char *certificate;    /* PEM */
	char *fingerprint;    /* lowercase hex SHA-256 of the DER */
	char *status;	      /* "ACTIVE" */
	int disk_threshold;   /* percent, default 80 */
	int memory_threshold; /* percent, default 80 */
	int64_t joined_at;
	int64_t created_at;
	int64_t last_status_update_at;
	char *status_json; /* the last heartbeat body as JSON text, or NULL */
};

struct store_join_token {
	char *cluster_name;
	char *description;
	char *secret_hash; /* lowercase hex SHA-256 of the secret */
	int64_t expires_at;
	int64_t created_at;
};

struct store_api_token {
	char *name;
	int64_t created_at;
	char hash_prefix[13]; /* the first 12 hex digits of its SHA-256: audit rows name it so */
	char role[16];	      /* "admin", "operator" or "viewer" */
};

/* What a request's bearer token is (store_api_token_lookup): no secret in it. */
#define STORE_API_TOKEN_NAME_MAX 64
struct store_api_token_info {
	int64_t id; /* the row's id */
	char name[STORE_API_TOKEN_NAME_MAX];
	char role[16]; /* "admin", "operator" or "viewer" */
};

/* Which replica holds the tunnel of a cluster (store_tunnel_get). */
struct store_tunnel_owner {
	char *replica;
	char *protocol; /* "v1" or "v2" */
	int64_t epoch;
	int64_t since;
};

struct store_audit {
	const char *request_id; /* unique; a row with a known id is ignored */
	int64_t at;
	const char *actor;	/* the principal's stable id ("token:" + 12 hex digits) */
	const char *actor_name; /* its name for people ("api-token:ci-bot"), or NULL */
	const char *client;	/* the client's address, or NULL */
	const char *cluster;
	const char *method;
	const char *path;
	int status;
	int64_t bytes_in;
	int64_t bytes_out;
	int64_t duration_ms;
};

/* One heartbeat to write (store_cluster_set_status_many). */
struct store_status_row {
	const char *name;
	const char *status_json;
	int64_t now;
};

/* What a PATCH changes: NULL / -1 leave a field as it is. */
struct store_cluster_update {
	const char *description;
	int disk_threshold;
	int memory_threshold;
};

/*
 * Opens the store named by url: "sqlite:PATH" or a plain path for SQLite,
 * "postgres://..." or "postgresql://..." (a libpq URL) for PostgreSQL.
 * Applies pending migrations (on PostgreSQL under a lock, so replicas
 * starting together apply each once). Returns 0 and *out, or a negative
 * code with a logged reason (never the URL: it may carry a password).
 */
int store_open(const char *url, struct store **out);
/* The same, with the database password given apart (NULL: none, or the URL's). */
int store_open_password(const char *url, const char *password, struct store **out);

/* What store_copy copied: clusters, status, settings, join tokens, API tokens, audit rows. */
struct store_copy_counts {
	int64_t rows[6];
};
/*
 * Copies every cluster (with its status and settings), join token, API
 * token and audit row of src into dst, keeping ids, in one transaction of
 * dst: all or nothing. dst must be empty (-EEXIST otherwise, logged). For
 * `lxcm-server migrate-db`; no server may run on either meanwhile.
 */
int store_copy(struct store *src, struct store *dst, struct store_copy_counts *counts);
/*
 * Waits for the worker threads to finish the work queued on them, then
 * closes the backend. No operation may be running or start any more.
 */
void store_close(struct store *s);
/* The backend's name ("sqlite"). */
/*
 * Called after every operation (one transaction of one rule function, on
 * whatever thread ran it, usually a store worker) with the operation's
 * name (its function's, a static string), its duration and its result.
 * Set it before the first store_run; fn must be thread safe.
 */
typedef void (*store_observe_fn)(void *data, const char *op, uint64_t ns, int rc);
void store_set_observer(struct store *s, store_observe_fn fn, void *data);
/* 0 when every migration this binary knows is applied, -ESTALE when not, or a store error. */
int store_schema_check(struct store *s);
const char *store_backend(const struct store *s);

/* ---- clusters (store_cluster.c) ---- */

int store_cluster_list(struct store *s, struct store_cluster **out, size_t *n);
int store_cluster_get(struct store *s, const char *name, struct store_cluster *out);
int store_cluster_get_by_fingerprint(struct store *s, const char *fp, struct store_cluster *out);
/* Only the name (malloc'd into *name): identifying a caller needs no more. */
int store_cluster_name_by_fingerprint(struct store *s, const char *fp, char **name);
int store_cluster_update(struct store *s, const char *name, const struct store_cluster_update *u);
/*
 * Removes a cluster with everything that hangs on it (status, settings,
 * tunnel row), in one transaction; announces STORE_CHANGE_CLUSTER_REMOVED.
 */
int store_cluster_delete(struct store *s, const char *name);
int store_cluster_set_status(struct store *s, const char *name, const char *status_json,
			     int64_t now);
/*
 * Writes n statuses in one transaction. rcs[i] gets row i's result:
 * 0, -ENOENT (no such cluster: the others still commit), -EINVAL (no
 * status_json), or -EIO for every row when the transaction failed and
 * was rolled back (then nothing of it was written). Returns 0 or -EIO.
 */
int store_cluster_set_status_many(struct store *s, const struct store_status_row *rows, size_t n,
				  int *rcs);
/*
 * Enrolls a cluster with a join token, atomically: the token for c->name
 * must exist (-ENOENT), its hash must equal secret_hash in constant time
 * and it must not have expired at `now` (-EACCES; secret_hash NULL, a
 * token that was made for another name, never matches: the name alone
 * decides between -ENOENT and -EACCES, as MicroCloud looks a token up by
 * the name first), the name and the
 * fingerprint must be free (-EEXIST). On success the cluster row is
 * inserted and the token used up in one transaction; a failed join writes
 * nothing. Announces STORE_CHANGE_CLUSTER_ADDED and _JOIN_TOKEN_USED.
 */
int store_cluster_join(struct store *s, const struct store_cluster *c, const char *secret_hash,
		       int64_t now);
void store_cluster_clear(struct store_cluster *c);
void store_cluster_list_free(struct store_cluster *list, size_t n);

/* ---- join tokens (store_join_token.c) ---- */

/* -EEXIST when a live token or a cluster of that name exists. */
int store_join_token_create(struct store *s, const struct store_join_token *t);
/* Every token, expired ones included, by cluster name. */
int store_join_token_list(struct store *s, struct store_join_token **out, size_t *n);
int store_join_token_delete(struct store *s, const char *cluster_name);
void store_join_token_clear(struct store_join_token *t);
void store_join_token_list_free(struct store_join_token *list, size_t n);

/* ---- API tokens (store_api_token.c) ---- */

/* -EEXIST when a token with that name or hash exists. */
int store_api_token_create(struct store *s, const char *name, const char *hash, int64_t now);
/* 0 when a token with that hash exists (name copied to *name_out if non-NULL). */
int store_api_token_check(struct store *s, const char *hash, char **name_out);
int store_api_token_count(struct store *s, int64_t *count);
int store_api_token_list(struct store *s, struct store_api_token **out, size_t *n);
/* -ENOENT unknown name; -EBUSY when it is the last admin token (nobody could manage tokens). */
int store_api_token_delete(struct store *s, const char *name);
/* Copies up to max token hashes (64 hex chars + NUL each) into out. */
int store_api_token_hashes(struct store *s, char (*out)[65], size_t max, size_t *n);
void store_api_token_list_free(struct store_api_token *list, size_t n);
/*
 * Roles (migration 004). store_api_token_create_role is
 * store_api_token_create with a role: "admin", "operator" or "viewer"
 * (anything else -EINVAL); store_api_token_create makes admins.
 * store_api_token_lookup finds the token whose SHA-256 (lowercase hex) is
 * hash: its id, name and role, or -ENOENT.
 */
int store_api_token_create_role(struct store *s, const char *name, const char *hash,
				const char *role, int64_t now);
int store_api_token_lookup(struct store *s, const char *hash, struct store_api_token_info *out);

/* ---- tunnel ownership (store_tunnel.c) ---- */

/*
 * Which replica holds the tunnel of a cluster, with an epoch that grows
 * with every new tunnel. tunnel_clear removes the row only if it still
 * names this replica and epoch (a newer tunnel, maybe on another replica,
 * must not be erased by an old one closing). set: -ENOENT for an unknown
 * cluster.
 */
int store_tunnel_set(struct store *s, const char *cluster, const char *replica, int64_t epoch,
		     const char *protocol, int64_t since);
int store_tunnel_clear(struct store *s, const char *cluster, const char *replica, int64_t epoch);
/* Drops every tunnel row of a replica (at its start: it holds none). */
int store_tunnel_clear_replica(struct store *s, const char *replica);
/* -ENOENT when no replica holds the cluster's tunnel. */
int store_tunnel_get(struct store *s, const char *cluster, struct store_tunnel_owner *out);
void store_tunnel_owner_clear(struct store_tunnel_owner *t);

/* ---- audit log (store_audit.c) ---- */

int store_audit_append(struct store *s, const struct store_audit *a);
/*
 * Appends n rows in one transaction: all or none. A row whose request id
 * is already in the log (a journal replay) is skipped, so each request is
 * written once.
 */
int store_audit_append_many(struct store *s, const struct store_audit *a, size_t n);
int store_audit_count(struct store *s, int64_t *count);

/*
 * Reading the log (migration 006): which rows store_audit_query returns.
 * Rows come newest first, ordered by (at, id) descending; a page after
 * another starts strictly after the last row it returned (keyset
 * pagination: rows added meanwhile never shift a page), given by
 * after_at/after_id.
 */
#define STORE_AUDIT_QUERY_MAX 1000 /* rows per query */
struct store_audit_filter {
	const char *cluster; /* the cluster's name; NULL: any */
	const char *actor;   /* the actor (stable id) or the actor's name; NULL: any */
	const char *owner;   /* only rows whose actor is this id (a viewer's own); NULL: any */
	int status_min, status_max; /* both inclusive; 0 and 999 for any */
	int64_t since, until;	    /* at in [since, until]; 0 and INT64_MAX for any */
	int has_after;		    /* 1: only rows before (after_at, after_id) */
	int64_t after_at, after_id;
	size_t limit; /* 1..STORE_AUDIT_QUERY_MAX */
};

struct store_audit_row {
	int64_t id; /* the row's key: with at, the position of a page's end */
	int64_t at;
	char *request_id, *actor, *actor_name, *client, *cluster, *method, *path; /* may be NULL */
	int status;
	int64_t bytes_in, bytes_out, duration_ms;
};

/*
 * The rows f selects, at most f->limit, into a malloc'd *out of *n rows
 * (free with store_audit_rows_free). -EINVAL for a limit out of range or
 * an empty status range.
 */
int store_audit_query(struct store *s, const struct store_audit_filter *f,
		      struct store_audit_row **out, size_t *n);
void store_audit_rows_free(struct store_audit_row *rows, size_t n);
/*
 * Deletes at most max rows older than before (at < before), oldest first,
 * in one short statement, so that a prune of millions of rows is many small
 * steps between which other work runs. *deleted gets the number deleted:
 * fewer than max means nothing older is left.
 */
int store_audit_prune(struct store *s, int64_t before, size_t max, int64_t *deleted);

#endif
