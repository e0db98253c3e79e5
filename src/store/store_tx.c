/*
 * store_tx.c - one operation's hold on a backend connection, and the typed
 * statement runners the rules use (see store_tx.h).
 */
#include "store/store_tx.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/secret.h"

#include <uv.h>

int store_tx_begin(struct store *s, struct store_tx *tx, enum store_tx_mode mode, const char *func)
{
	int rc;

	memset(tx, 0, sizeof(*tx));
	tx->s = s;
	tx->func = func;
	if (s->observe)
		tx->start_ns = uv_hrtime();
	rc = s->ops->acquire(s, func, &tx->conn);
	if (rc != 0) {
		tx->conn = NULL;
		return rc;
	}
	if (mode == STORE_TX_WRITE) {
		rc = s->ops->begin(tx->conn);
		tx->write = rc == 0;
	}
	return rc;
}

/*
 * The changes are published after the connection is given back: a
 * subscriber on another thread may read the store at once and must see
 * the commit, and must not wait for this connection.
 */
int store_tx_end(struct store_tx *tx, int rc)
{
	struct store *s = tx->s;

	/* In a write transaction the announcement commits with it; outside
	 * one, each statement committed already and so does this. */
	if (rc == 0 && tx->changes != NULL && s->ops->announce != NULL)
		rc = s->ops->announce(tx->conn, tx->changes);
	if (tx->write && rc == 0)
		rc = s->ops->commit(tx->conn);
	else if (tx->write)
		s->ops->rollback(tx->conn);
	if (tx->conn != NULL)
		s->ops->release(s, tx->conn);
	tx->conn = NULL;
	if (s->observe)
		s->observe(s->observe_data, tx->func, uv_hrtime() - tx->start_ns, rc);
	if (tx->lost && rc == 0)
		log_msg(LOG_LEVEL_ERROR, tx->func, "out of memory: a change was not announced");
	if (rc == 0)
		store_feed__publish(s, tx->changes);
	else
		store_change_free_list(tx->changes);
	tx->changes = NULL;
	return rc;
}

void store_tx_announce(struct store_tx *tx, enum store_change_kind kind, const char *name,
		       const char *key)
{
	struct store_change *c = store_change_new(kind, name, key), **pp;

	if (c == NULL) {
		tx->lost = 1;
		return;
	}
	/* In order: subscribers see the changes as they were made. */
	for (pp = &tx->changes; *pp; pp = &(*pp)->next)
		;
	*pp = c;
}

int store_tx_exec(struct store_tx *tx, enum store_sql id, const struct store_val *args,
		  size_t nargs, int64_t *changes)
{
	return tx->s->ops->exec(tx->conn, id, args, nargs, NULL, NULL, changes);
}

int store_tx_change(struct store_tx *tx, enum store_sql id, const struct store_val *args,
		    size_t nargs)
{
	int64_t changes = 0;
	int rc = store_tx_exec(tx, id, args, nargs, &changes);

	return rc == 0 && changes == 0 ? -ENOENT : rc;
}

int store_tx_rows(struct store_tx *tx, enum store_sql id, const struct store_val *args,
		  size_t nargs, store_row_fn row, void *ctx)
{
	return tx->s->ops->exec(tx->conn, id, args, nargs, row, ctx, NULL);
}

/* ---- reading rows by spec ---- */

static int store_col_text(const struct store_val *v, char **dst)
{
	*dst = NULL;
	if (v->type == STORE_NULL)
		return 0;
	if (v->type != STORE_TEXT)
		return -EIO;
	*dst = malloc(v->len + 1);
	if (*dst == NULL)
		return -ENOMEM;
	memcpy(*dst, v->text, v->len);
	(*dst)[v->len] = '\0';
	return 0;
}

static void store_col_chars(const struct store_val *v, char *dst, size_t size)
{
	size_t n = v->type == STORE_TEXT ? v->len : 0;

	if (size == 0)
		return;
	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(dst, v->text, n);
	dst[n] = '\0';
}

static int store_col_read(const struct store_val *v, const struct store_col *c, void *base)
{
	char *p = (char *)base + c->off;
	int64_t i = v->type == STORE_INT ? v->i : 0;

	switch (c->type) {
	case SC_SKIP:
		return 0;
	case SC_INT64:
		memcpy(p, &i, sizeof(i));
		return 0;
	case SC_INT: {
		int n = i > INT_MAX ? INT_MAX : i < INT_MIN ? INT_MIN : (int)i;

		memcpy(p, &n, sizeof(n));
		return 0;
	}
	case SC_TEXT:
	case SC_SECRET:
		return store_col_text(v, (char **)(void *)p);
	case SC_CHARS:
		store_col_chars(v, p, c->size);
		return 0;
	}
	return -EINVAL;
}

static int store_col_is_text(const struct store_col *c)
{
	return c->type == SC_TEXT || c->type == SC_SECRET;
}

void store_cols_clear(const struct store_col *cols, size_t ncols, void *base)
{
	for (size_t i = 0; i < ncols; i++) {
		char **p = (char **)(void *)((char *)base + cols[i].off);

		if (!store_col_is_text(&cols[i]))
			continue;
		if (cols[i].type == SC_SECRET && *p != NULL)
			secret_wipe(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void store_cols_reset(const struct store_col *cols, size_t ncols, void *base, size_t size)
{
	if (base == NULL)
		return;
	store_cols_clear(cols, ncols, base);
	memset(base, 0, size);
}

void store_cols_list_free(const struct store_col *cols, size_t ncols, void *list, size_t n,
			  size_t elem)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_cols_clear(cols, ncols, (char *)list + i * elem);
	free(list);
}

int store_cols_read(const struct store_val *vals, size_t nvals, const struct store_col *cols,
		    size_t ncols, void *base)
{
	int rc = 0;

	/* Every text field starts NULL, so a failure frees only what was read. */
	for (size_t i = 0; i < ncols; i++)
		if (store_col_is_text(&cols[i]))
			*(char **)(void *)((char *)base + cols[i].off) = NULL;
	if (nvals < ncols) {
		LOG_ERROR("a statement returned %zu columns, %zu expected", nvals, ncols);
		return -EIO;
	}
	for (size_t i = 0; rc == 0 && i < ncols; i++)
		rc = store_col_read(&vals[i], &cols[i], base);
	if (rc != 0)
		store_cols_clear(cols, ncols, base);
	return rc;
}

struct store_one_ctx {
	const struct store_col *cols;
	size_t ncols;
	void *base;
	int found;
};

static int store_one_row(void *arg, const struct store_val *vals, size_t nvals)
{
	struct store_one_ctx *o = arg;
	int rc = store_cols_read(vals, nvals, o->cols, o->ncols, o->base);

	o->found = rc == 0;
	return rc == 0 ? 1 : rc;
}

int store_tx_one(struct store_tx *tx, enum store_sql id, const struct store_val *args, size_t nargs,
		 const struct store_col *cols, size_t ncols, void *base)
{
	struct store_one_ctx o = {cols, ncols, base, 0};
	int rc = store_tx_rows(tx, id, args, nargs, store_one_row, &o);

	if (rc == 0 && !o.found)
		rc = -ENOENT;
	if (rc != 0 && o.found)
		store_cols_clear(cols, ncols, base);
	return rc;
}

static int store_exists_row(void *arg, const struct store_val *vals, size_t nvals)
{
	*(int *)arg = 1;
	return 1;
}

int store_tx_exists(struct store_tx *tx, enum store_sql id, const struct store_val *args,
		    size_t nargs)
{
	int found = 0;
	int rc = store_tx_rows(tx, id, args, nargs, store_exists_row, &found);

	return rc < 0 ? rc : found;
}

struct store_list_ctx {
	const struct store_col *cols;
	size_t ncols;
	size_t elem;
	char *list;
	size_t len, cap;
};

static int store_list_row(void *arg, const struct store_val *vals, size_t nvals)
{
	struct store_list_ctx *l = arg;
	size_t ncap;
	char *grown;
	int rc;

	if (l->len == l->cap) {
		ncap = l->cap ? l->cap * 2 : 16;
		if (ncap > SIZE_MAX / l->elem)
			return -ENOMEM;
		grown = realloc(l->list, ncap * l->elem);
		if (grown == NULL)
			return -ENOMEM;
		l->list = grown;
		l->cap = ncap;
	}
	memset(l->list + l->len * l->elem, 0, l->elem);
	rc = store_cols_read(vals, nvals, l->cols, l->ncols, l->list + l->len * l->elem);
	if (rc != 0)
		return rc;
	l->len++;
	return 0;
}

int store_tx_list(struct store_tx *tx, enum store_sql id, const struct store_val *args,
		  size_t nargs, const struct store_col *cols, size_t ncols, size_t elem,
		  void **list, size_t *n)
{
	struct store_list_ctx l = {cols, ncols, elem, NULL, 0, 0};
	int rc = store_tx_rows(tx, id, args, nargs, store_list_row, &l);

	if (rc != 0) {
		store_cols_list_free(cols, ncols, l.list, l.len, elem);
		l.list = NULL;
		l.len = 0;
	}
	*list = l.list;
	*n = l.len;
	return rc;
}

/* ---- one statement, one operation ---- */

int store_read_one(struct store *s, const char *func, enum store_sql id,
		   const struct store_val *args, size_t nargs, const struct store_col *cols,
		   size_t ncols, void *base)
{
	struct store_tx tx;
	int rc = store_tx_begin(s, &tx, STORE_TX_AUTO, func);

	if (rc == 0)
		rc = store_tx_one(&tx, id, args, nargs, cols, ncols, base);
	return store_tx_end(&tx, rc);
}

int store_read_list(struct store *s, const char *func, enum store_sql id,
		    const struct store_val *args, size_t nargs, const struct store_col *cols,
		    size_t ncols, size_t elem, void **list, size_t *n)
{
	struct store_tx tx;
	int rc = store_tx_begin(s, &tx, STORE_TX_AUTO, func);

	*list = NULL;
	*n = 0;
	if (rc == 0)
		rc = store_tx_list(&tx, id, args, nargs, cols, ncols, elem, list, n);
	return store_tx_end(&tx, rc);
}

int store_write_one(struct store *s, const char *func, enum store_sql id,
		    const struct store_val *args, size_t nargs, int must_change)
{
	struct store_tx tx;
	int rc = store_tx_begin(s, &tx, STORE_TX_AUTO, func);

	if (rc == 0)
		rc = must_change ? store_tx_change(&tx, id, args, nargs)
				 : store_tx_exec(&tx, id, args, nargs, NULL);
	return store_tx_end(&tx, rc);
}
