/*
 * store_tx.h - how the rules run statements (store_tx.c).
 *
 * A struct store_tx is one operation's hold on a backend connection, in a
 * write transaction (STORE_TX_WRITE) or with each statement committing by
 * itself (STORE_TX_AUTO). Rows are read through column specs: a list of
 * (type, offset) pairs that say where each column of a row goes in a
 * record, so one spec serves a single row and a list of rows alike.
 *
 * Changes a rule makes are announced with store_tx_announce() and reach the
 * change feed only when store_tx_end() has committed them.
 *
 * For operations of one statement, store_read_one(), store_read_list() and
 * store_write_one() do begin, run and end in one call.
 */
#ifndef LXCM_STORE_TX_H
#define LXCM_STORE_TX_H

#include <stddef.h>

#include "store/store_feed.h"
#include "store/store_ops.h"

enum store_tx_mode {
	STORE_TX_AUTO,	/* no transaction: each statement commits by itself */
	STORE_TX_WRITE, /* one write transaction, committed by store_tx_end */
};

struct store_tx {
	struct store *s;
	struct store_conn *conn;
	const char *func;
	uint64_t start_ns; /* for the store's observer */
	int write;
	struct store_change *changes; /* announced, waiting for the commit */
	int lost;		      /* an announcement could not be allocated */
};

/* Where a column goes: a field at offset `off` of the record. */
enum store_col_type {
	SC_SKIP,   /* not read */
	SC_INT64,  /* int64_t; NULL reads as 0 */
	SC_INT,	   /* int, clamped; NULL reads as 0 */
	SC_TEXT,   /* char *, malloc'd; NULL reads as NULL */
	SC_SECRET, /* like SC_TEXT, and wiped when cleared */
	SC_CHARS,  /* char[size], truncated to fit; NULL reads as "" */
};

struct store_col {
	enum store_col_type type;
	size_t off;
	size_t size; /* SC_CHARS */
};

/* A bound value. */
#define SV_TEXT(v) ((struct store_val){.type = (v) != NULL ? STORE_TEXT : STORE_NULL, .text = (v)})
#define SV_INT(v) ((struct store_val){.type = STORE_INT, .i = (int64_t)(v)})
/* The (args, nargs) pair of a list of values. */
#define SV_ARGS(...)                                                                               \
	(const struct store_val[]){__VA_ARGS__},                                                   \
	    sizeof((const struct store_val[]){__VA_ARGS__}) / sizeof(struct store_val)
#define SV_NONE NULL, 0
/* The (cols, ncols) pair of a spec array. */
#define SC_SPEC(a) (a), (sizeof(a) / sizeof((a)[0]))
/* A spec of one column read into a plain variable (base = its address). */
#define SC_ONE(type) (const struct store_col[]){{(type), 0, 0}}, 1

int store_tx_begin(struct store *s, struct store_tx *tx, enum store_tx_mode mode, const char *func);
/*
 * Ends the operation: commits when rc is 0 and a transaction is open (or
 * rolls back when rc is not), gives the connection back and, once
 * committed, publishes the announced changes. Returns rc, or -EIO when the
 * commit failed.
 */
int store_tx_end(struct store_tx *tx, int rc);

/* Runs a statement that reads nothing; *changes may be NULL. */
int store_tx_exec(struct store_tx *tx, enum store_sql id, const struct store_val *args,
		  size_t nargs, int64_t *changes);
/* Like store_tx_exec, but -ENOENT when no row was written. */
int store_tx_change(struct store_tx *tx, enum store_sql id, const struct store_val *args,
		    size_t nargs);
/* Reads the first row into base by the spec: 0, -ENOENT (no row), or an error. */
int store_tx_one(struct store_tx *tx, enum store_sql id, const struct store_val *args, size_t nargs,
		 const struct store_col *cols, size_t ncols, void *base);
/* 1 when the statement returns a row, 0 when not, or a negative code. */
int store_tx_exists(struct store_tx *tx, enum store_sql id, const struct store_val *args,
		    size_t nargs);
/*
 * Reads every row into a malloc'd array of records of elem bytes. On
 * failure nothing is left allocated (*list NULL, *n 0).
 */
int store_tx_list(struct store_tx *tx, enum store_sql id, const struct store_val *args,
		  size_t nargs, const struct store_col *cols, size_t ncols, size_t elem,
		  void **list, size_t *n);
/* Runs a statement with its own row callback. */
int store_tx_rows(struct store_tx *tx, enum store_sql id, const struct store_val *args,
		  size_t nargs, store_row_fn row, void *ctx);

/* Announces a change (name and key copied; key may be NULL), see store_feed.h. */
void store_tx_announce(struct store_tx *tx, enum store_change_kind kind, const char *name,
		       const char *key);

/* One statement as a whole operation (no transaction). */
int store_read_one(struct store *s, const char *func, enum store_sql id,
		   const struct store_val *args, size_t nargs, const struct store_col *cols,
		   size_t ncols, void *base);
int store_read_list(struct store *s, const char *func, enum store_sql id,
		    const struct store_val *args, size_t nargs, const struct store_col *cols,
		    size_t ncols, size_t elem, void **list, size_t *n);
/* must_change: -ENOENT when no row was written. */
int store_write_one(struct store *s, const char *func, enum store_sql id,
		    const struct store_val *args, size_t nargs, int must_change);

/* Fills base from a row by the spec; on failure the SC_TEXT fields are freed. */
int store_cols_read(const struct store_val *vals, size_t nvals, const struct store_col *cols,
		    size_t ncols, void *base);
/* Frees the SC_TEXT and SC_SECRET fields of a record read by the spec. */
void store_cols_clear(const struct store_col *cols, size_t ncols, void *base);
/* Clears a whole record of size bytes (NULL ok): text fields freed, the rest zeroed. */
void store_cols_reset(const struct store_col *cols, size_t ncols, void *base, size_t size);
/* Clears each of n records of elem bytes by the spec, then frees the list. NULL ok. */
void store_cols_list_free(const struct store_col *cols, size_t ncols, void *list, size_t n,
			  size_t elem);

#endif
