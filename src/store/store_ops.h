/*
 * store_ops.h - what a store backend provides (STYLE.md rule 8).
 *
 * A backend is SQL in its own dialect plus connections and transactions.
 * It knows no rule: the rules (store.h) are written once, above this
 * table, as sequences of the statements below inside transactions. A
 * backend gives one SQL text per statement id (ops->sql[id]) and one
 * runner (ops->exec) that binds typed values and hands back typed rows.
 *
 * Adding an operation is one rule function (store_<resource>.c) and one
 * statement: an id here, with its contract, and its text in each backend.
 *
 * Contracts: "(a, b)" are the bound values ?1, ?2 in order (text unless
 * marked int; a NULL text binds SQL NULL); "-> x, y" are the columns of each
 * row, in order. A statement that refuses a row for a UNIQUE or PRIMARY KEY
 * constraint makes exec return -EEXIST (not logged); any other failure
 * -EIO (logged once by the backend, with the operation's name).
 */
#ifndef LXCM_STORE_OPS_H
#define LXCM_STORE_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "store/migrations.h"
#include "store/store.h"

/* The columns of a cluster row (store_cluster.c reads them in this order). */
#define STORE_CLUSTER_COLUMNS                                                                      \
	"id, name, description, certificate, fingerprint, status, joined_at, created_at,"          \
	" disk_threshold (default 80), memory_threshold (default 80), status updated_at or 0,"     \
	" status body or NULL"

/* The columns of a session row (store_session.c reads them in this order). */
#define STORE_SESSION_COLUMNS                                                                      \
	"id, hash, issuer, subject, name, email, groups, role, created_at, last_seen,"             \
	" idle_expires_at, expires_at, user_agent, address, tokens, access_expires_at"

enum store_sql {
	/* Migrations (store_migrate.c). */
	STORE_SQL_MIGRATIONS_TABLE,  /* creates schema_migrations if missing */
	STORE_SQL_MIGRATION_APPLIED, /* (int version) -> 1 when recorded */
	STORE_SQL_MIGRATION_RECORD,  /* (int version, name, int applied_at) */
	STORE_SQL_MIGRATION_MAX,     /* -> highest recorded version, or 0 */

	/* Clusters (store_cluster.c). */
	STORE_SQL_CLUSTER_LIST,	      /* -> STORE_CLUSTER_COLUMNS, by name */
	STORE_SQL_CLUSTER_GET,	      /* (name) -> STORE_CLUSTER_COLUMNS */
	STORE_SQL_CLUSTER_GET_BY_FP,  /* (fingerprint) -> STORE_CLUSTER_COLUMNS */
	STORE_SQL_CLUSTER_NAME_BY_FP, /* (fingerprint) -> name */
	STORE_SQL_CLUSTER_KEYS,	      /* (name) -> id, fingerprint */
	STORE_SQL_CLUSTER_TAKEN,      /* (name, fingerprint) -> a row when either is in use */
	/* (name, description, certificate, fingerprint, status, int now) -> id;
	 * joined_at = created_at = now */
	STORE_SQL_CLUSTER_INSERT,
	STORE_SQL_CLUSTER_SET_DESC, /* (int id, description) */
	STORE_SQL_CLUSTER_DELETE,   /* (int id) */
	STORE_SQL_CONFIG_SET,	    /* (int id, key, value): insert or replace one setting */
	STORE_SQL_CONFIG_DELETE,    /* (int id): every setting of a cluster */
	/* (name, int at, body): insert or replace the last status; no row
	 * changed when there is no such cluster */
	STORE_SQL_STATUS_SET,
	STORE_SQL_STATUS_DELETE, /* (int id) */

	/* Join tokens (store_join_token.c, store_cluster.c). */
	STORE_SQL_JOIN_TOKEN_GET,	 /* (name) -> secret_hash, expires_at, description */
	STORE_SQL_JOIN_TOKEN_NAME_TAKEN, /* (name) -> a row when a token or a cluster has it */
	STORE_SQL_JOIN_TOKEN_INSERT,	 /* (name, description, hash, int expires, int created) */
	STORE_SQL_JOIN_TOKEN_LIST,	 /* -> name, description, hash, expires, created; by name */
	STORE_SQL_JOIN_TOKEN_DELETE,	 /* (name) */
	STORE_SQL_JOIN_TOKEN_DELETE_EXPIRED, /* (name, int now): if expires <= now */

	/* API tokens (store_api_token.c). */
	STORE_SQL_API_TOKEN_INSERT,	  /* (name, hash, int created_at) */
	STORE_SQL_API_TOKEN_BY_HASH,	  /* (hash) -> name */
	STORE_SQL_API_TOKEN_HASH_BY_NAME, /* (name) -> hash */
	STORE_SQL_API_TOKEN_COUNT,	  /* -> number of tokens */
	STORE_SQL_API_TOKEN_HASHES,	  /* -> hash; in creation order */
	STORE_SQL_API_TOKEN_LIST,	  /* -> name, created_at, hash, role; by name */
	STORE_SQL_API_TOKEN_DELETE,	  /* (name) */
	STORE_SQL_API_TOKEN_INSERT_ROLE,  /* (name, hash, int created_at, role) */
	STORE_SQL_API_TOKEN_LOOKUP,	  /* (hash) -> id, name, role */
	STORE_SQL_API_TOKEN_ADMIN_COUNT,  /* -> number of tokens with the role admin */

	/* Tunnel ownership (store_tunnel.c, store_cluster.c). */
	/* (cluster name, replica, int epoch, protocol, int since): insert or
	 * replace; no row changed when there is no such cluster */
	STORE_SQL_TUNNEL_SET,
	STORE_SQL_TUNNEL_CLEAR,		/* (cluster name, replica, int epoch) */
	STORE_SQL_TUNNEL_CLEAR_REPLICA, /* (replica) */
	STORE_SQL_TUNNEL_GET,		/* (cluster name) -> replica, protocol, epoch, since */
	STORE_SQL_TUNNEL_DELETE,	/* (int cluster id) */

	/* Audit log (store_audit.c). */
	STORE_SQL_AUDIT_SEEN, /* (request_id) -> a row when a row has that id */
	/* (int at, actor, cluster, method, path, int status, int bytes_in,
	 * int bytes_out, int duration_ms, request_id, actor_name, client) */
	STORE_SQL_AUDIT_INSERT,
	STORE_SQL_AUDIT_COUNT, /* -> number of rows */
	/*
	 * Reading the log (store_audit_query), all with the same values:
	 * (cluster, actor or actor name, owner, int status_min, int status_max,
	 * int since, int until, int after_at, int after_id, int limit); a NULL
	 * text matches any row. -> id, at, request_id, actor, actor_name,
	 * client, cluster, method, path, status, bytes_in, bytes_out,
	 * duration_ms; newest first by (at, id), rows with (at, id) below
	 * (after_at, after_id) only. The variants differ only in the filter
	 * they lead with, which a backend may use to pick an index: none
	 * (time), cluster, actor (stable id or name), owner (stable id).
	 */
	STORE_SQL_AUDIT_QUERY,
	STORE_SQL_AUDIT_QUERY_CLUSTER,
	STORE_SQL_AUDIT_QUERY_ACTOR,
	STORE_SQL_AUDIT_QUERY_OWNER,
	STORE_SQL_AUDIT_PRUNE, /* (int before, int max): up to max rows with at < before, oldest first */

	/* Copying a whole store to another (store_copy.c, migrate-db). Each
	 * READ gives the table's rows by id with every column, in the order
	 * its WRITE binds them; WRITE keeps the ids. Runtime state (tunnels,
	 * replicas) is not copied. */
	STORE_SQL_COPY_HAS_DATA, /* -> a row when clusters, tokens or audit rows exist */
	STORE_SQL_COPY_READ_CLUSTERS,
	STORE_SQL_COPY_WRITE_CLUSTERS,
	STORE_SQL_COPY_READ_STATUS,
	STORE_SQL_COPY_WRITE_STATUS,
	STORE_SQL_COPY_READ_CONFIG,
	STORE_SQL_COPY_WRITE_CONFIG,
	STORE_SQL_COPY_READ_JOIN_TOKENS,
	STORE_SQL_COPY_WRITE_JOIN_TOKENS,
	STORE_SQL_COPY_READ_API_TOKENS,
	STORE_SQL_COPY_WRITE_API_TOKENS,
	STORE_SQL_COPY_READ_AUDIT,
	STORE_SQL_COPY_WRITE_AUDIT,
	/* After ids were written: the next generated id follows the largest
	 * (PostgreSQL's identity sequences; nothing to do for SQLite). */
	STORE_SQL_COPY_RESEED,

	/* Sessions of people (store_session.c). */
	/* (id, hash, issuer, subject, name, email, groups, role, int created_at,
	 * int idle_expires_at, int expires_at, user_agent, address, tokens,
	 * int access_expires_at); last_seen = created_at */
	STORE_SQL_SESSION_INSERT,
	STORE_SQL_SESSION_BY_HASH, /* (hash) -> STORE_SESSION_COLUMNS */
	STORE_SQL_SESSION_BY_ID,   /* (id) -> STORE_SESSION_COLUMNS */
	STORE_SQL_SESSION_TOUCH,   /* (hash, int last_seen, int idle_expires_at) */
	/* (hash, groups, role, tokens, int access_expires_at) */
	STORE_SQL_SESSION_UPDATE,
	STORE_SQL_SESSION_DELETE, /* (hash) */
	STORE_SQL_SESSION_LIST,	  /* -> STORE_SESSION_COLUMNS, by created_at */
	STORE_SQL_SESSION_LIST_USER, /* (issuer, subject) -> STORE_SESSION_COLUMNS, by created_at */
	/* (int now) -> hash of each session past either expiry */
	STORE_SQL_SESSION_EXPIRED,
	/* (issuer, subject, name, email, groups, role, int now): insert, or
	 * update all but first_seen */
	STORE_SQL_IDENTITY_UPSERT,
	/* -> issuer, subject, name, email, groups, role, first_seen, last_seen,
	 * number of sessions; by email, subject */
	STORE_SQL_IDENTITY_LIST,
	STORE_SQL_KEY_INSERT, /* (name, value, int now): kept when the name exists */
	STORE_SQL_KEY_GET,    /* (name) -> value */

	STORE_SQL__COUNT
};

/* A bound value or a column of a row. */
enum store_type {
	STORE_NULL,
	STORE_INT,
	STORE_TEXT,
};

struct store_val {
	enum store_type type;
	int64_t i;	  /* STORE_INT */
	const char *text; /* STORE_TEXT: NUL-terminated; in a row, valid until the next row */
	size_t len;	  /* STORE_TEXT in a row: its length */
};

/*
 * Called by exec for each row with its columns. Returns 0 for the next
 * row, 1 to stop reading (exec then returns 0), or a negative code that
 * exec returns as it is.
 */
typedef int (*store_row_fn)(void *ctx, const struct store_val *cols, size_t ncols);

/* One connection of a backend, held by one operation at a time. */
struct store_conn;
struct store_change; /* store_feed.h */

struct store_ops {
	const char *name;
	/* SQL text of every statement id in this backend's dialect. */
	const char *const *sql;
	/* This dialect's numbered migrations (cmake/embed_migrations.cmake). */
	const struct store_migration *migrations;
	const int *nmigrations;

	/*
	 * Lends a connection to the operation called func (named in the
	 * backend's error logs) until release. Other threads wait for their
	 * own; a connection is never shared by two operations at once.
	 */
	int (*acquire)(struct store *s, const char *func, struct store_conn **out);
	void (*release)(struct store *s, struct store_conn *c);
	/*
	 * A write transaction: from begin, no other writer may change what
	 * this one reads until it commits (SQLite: BEGIN IMMEDIATE; PostgreSQL
	 * would use SERIALIZABLE or SELECT ... FOR UPDATE in the statements'
	 * text). Without begin, each statement commits by itself.
	 */
	int (*begin)(struct store_conn *c);
	int (*commit)(struct store_conn *c);
	void (*rollback)(struct store_conn *c);
	/*
	 * Runs statement id with nargs bound values, calls row (may be NULL)
	 * for each row, and sets *changes (may be NULL) to the number of rows
	 * written. 0, -EEXIST, -EIO, -ENOMEM or row's negative code.
	 */
	int (*exec)(struct store_conn *c, enum store_sql id, const struct store_val *args,
		    size_t nargs, store_row_fn row, void *ctx, int64_t *changes);
	/* Runs SQL text with several statements and no values (a migration). */
	int (*script)(struct store_conn *c, const char *sql);

	/*
	 * Changes are always published in this process by the rules, after
	 * commit (store_tx.c). A backend shared by other processes (PostgreSQL:
	 * several replicas on one database) also tells them:
	 * - announce (may be NULL) is called with a write transaction's changes
	 *   inside it, just before commit, so other processes hear of them only
	 *   if they commit (PostgreSQL: pg_notify);
	 * - feed_watch (may be NULL) is called once, at the first subscription,
	 *   and from then on the backend hands the changes other processes
	 *   announce to store_feed__publish() (PostgreSQL: LISTEN), never its
	 *   own (they are published already).
	 */
	int (*announce)(struct store_conn *c, const struct store_change *list);
	int (*feed_watch)(struct store *s);
	/* Frees the backend. Nothing runs on s any more. */
	void (*close)(struct store *s);
};

struct store_feed;
struct store_workers;

/* The part of every backend's store that the layers above own. */
struct store {
	const struct store_ops *ops;
	struct store_feed *feed;       /* store_feed.c */
	struct store_workers *workers; /* store_workers.c */
	store_observe_fn observe;      /* store_set_observer: timing of each operation */
	void *observe_data;
};

/* Statement texts both backends share, ?N placeholders (store_sql.c). */
extern const char *const store_sql_text[STORE_SQL__COUNT];

/* Backend constructors (one file each); store_open picks one. */
int store_sqlite_open(const char *path, struct store **out);
int store_postgres_open(const char *url, const char *password, struct store **out);

/* Applies the backend's pending migrations (store_migrate.c). */
int store_migrate(struct store *s);

#endif
