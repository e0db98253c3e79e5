/*
 * postgres.c - the PostgreSQL backend of the store: connections, typed
 * binding, transactions and the dialect's migrations (the contract is
 * store_ops.h; the rules are above, in store_*.c).
 *
 * Statements: the shared texts of store_sql.c, with ?N rewritten to $N
 * once at first open, and every value bound with its type (bigint or
 * text), so "SELECT id, ?2 ..." means the same in both dialects. The few
 * statements whose dialects differ are in pg_override below.
 *
 * Connections: a small pool, one per store worker thread at most plus one
 * for the loop's own calls at startup, made on demand. An operation holds
 * one connection from acquire to release; a connection found broken at
 * acquire is reset (libpq reconnects), so a database restart costs the
 * operations in flight, not the process.
 *
 * Write transactions serialize on one transaction-scoped advisory lock:
 * begin takes it, commit or rollback frees it. That is what SQLite's BEGIN
 * IMMEDIATE gives the rules (no other writer changes what a rule read
 * until it commits), across every replica on the database, without
 * SERIALIZABLE's retry loop. Migrations take the same lock, so replicas
 * starting together apply each migration once.
 *
 * Every failure is logged here, once, with the operation's name, and
 * returned as -EIO; a UNIQUE or PRIMARY KEY refusal is -EEXIST, not logged.
 * The URL and password are never logged.
 */
#include "store/store_ops.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/log.h"
#include "common/secret.h"
#include "store/store_feed.h"

#define PG_POOL_MAX (64 + 1)	      /* STORE_THREADS_MAX workers + the loop */
#define PG_MAX_COLUMNS 16
#define PG_MAX_ARGS 16
#define PG_SQL_MAX 2048		      /* bytes of one rewritten statement */
#define PG_WRITE_LOCK "1819042669"    /* pg_advisory_xact_lock key: "lxcm" */
#define PG_SQLSTATE_UNIQUE "23505"
#define PG_OID_BOOL 16
#define PG_OID_INT8 20
#define PG_OID_INT2 21
#define PG_OID_INT4 23
#define PG_OID_TEXT 25
#define PG_OID_NUMERIC 1700
#define PG_CHANNEL "lxcm_changes"
#define PG_PAYLOAD_MAX 7900	      /* NOTIFY payloads must stay under 8000 bytes */
#define PG_INSTANCE_BYTES 8	      /* a random id per open store, hex in payloads */
#define PG_LISTEN_POLL_MS 500	      /* how often the listener looks at its stop flag */
#define PG_LISTEN_BACKOFF_MAX_MS 5000 /* reconnects of the listener back off up to this */

/*
 * Texts that differ from store_sql.c. The migrations table is made under
 * the write lock: two replicas creating it at once would otherwise race
 * on PostgreSQL's catalog (CREATE TABLE IF NOT EXISTS is not atomic there).
 */
static const char *const pg_override[STORE_SQL__COUNT] = {
    [STORE_SQL_MIGRATIONS_TABLE] = "DO $$ BEGIN PERFORM pg_advisory_xact_lock(" PG_WRITE_LOCK ");"
				   " CREATE TABLE IF NOT EXISTS schema_migrations ("
				   " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
				   " applied_at BIGINT NOT NULL); END $$",
    /* Identity columns given explicit ids do not move their sequences. */
    [STORE_SQL_COPY_RESEED] =
	"SELECT setval(pg_get_serial_sequence(t, 'id'), m + 1, false) FROM ("
	" SELECT 'clusters' AS t, COALESCE(MAX(id), 0) AS m FROM clusters"
	" UNION ALL SELECT 'join_tokens', COALESCE(MAX(id), 0) FROM join_tokens"
	" UNION ALL SELECT 'api_tokens', COALESCE(MAX(id), 0) FROM api_tokens"
	" UNION ALL SELECT 'audit_log', COALESCE(MAX(id), 0) FROM audit_log) AS s",
};

static char *pg_sql[STORE_SQL__COUNT];
static pthread_once_t pg_sql_once = PTHREAD_ONCE_INIT;
static int pg_sql_failed;

struct pg_store;

struct store_conn {
	struct pg_store *owner;
	PGconn *pg;
	const char *func; /* the operation holding the connection, for logs */
	int busy;
};

struct pg_store {
	struct store pg_base; /* first: a struct store * is a struct pg_store * */
	pthread_mutex_t pg_mu;
	pthread_cond_t pg_free;
	char *pg_url;
	char *pg_password;
	size_t pg_nconns;
	struct store_conn pg_conns[PG_POOL_MAX];
	/* The change feed between processes (announce / feed_watch). */
	char pg_instance[2 * PG_INSTANCE_BYTES + 1];
	atomic_ullong pg_seq;	 /* makes each payload unique: NOTIFY drops duplicates */
	pthread_t pg_listener;
	int pg_listening;	 /* the listener thread runs */
	atomic_int pg_stop;	 /* tells it to end */
	PGconn *pg_listen_conn;	 /* the listener's first connection, made by feed_watch */
};

/* Rewrites ?N into $N (no ? appears in our texts but as a placeholder). */
static char *pg_rewrite(const char *sql)
{
	char *out = malloc(PG_SQL_MAX);
	size_t o = 0;

	if (out == NULL)
		return NULL;
	for (const char *p = sql; *p != '\0'; p++) {
		if (o + 2 >= PG_SQL_MAX) {
			free(out);
			return NULL;
		}
		out[o++] = *p == '?' ? '$' : *p;
	}
	out[o] = '\0';
	return out;
}

static void pg_sql_build(void)
{
	for (int i = 0; i < STORE_SQL__COUNT; i++) {
		const char *src = pg_override[i] ? pg_override[i] : store_sql_text[i];

		if (src == NULL)
			continue; /* store_open refuses the backend, naming the statement */
		pg_sql[i] = pg_rewrite(src);
		if (pg_sql[i] == NULL)
			pg_sql_failed = 1;
	}
}

/* Logs the failure for the operation that holds c; returns -EIO. */
static int pg_err(struct store_conn *c, const char *what, const PGresult *res)
{
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg);
	size_t n = strlen(msg);

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	log_msg(LOG_LEVEL_ERROR, c->func ? c->func : "postgres", "postgres %s: %.*s", what, (int)n,
		msg);
	return -EIO;
}

/* PostgreSQL's notices ("relation already exists, skipping") are not ours to print. */
static void pg_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Makes or repairs one connection. 0 or -EIO (logged). */
static int pg_connect(struct pg_store *q, struct store_conn *c)
{
	const char *keys[4] = {"dbname", "application_name", NULL, NULL};
	const char *vals[4] = {q->pg_url, "lxcm-server", NULL, NULL};

	if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	if (q->pg_password != NULL) {
		keys[2] = "password";
		vals[2] = q->pg_password;
	}
	if (c->pg != NULL)
		PQreset(c->pg);
	else
		c->pg = PQconnectdbParams(keys, vals, 1);
	if (c->pg == NULL) {
		LOG_ERROR("postgres: out of memory");
		return -ENOMEM;
	}
	if (PQstatus(c->pg) != CONNECTION_OK)
		return pg_err(c, "connect", NULL);
	PQsetNoticeProcessor(c->pg, pg_notice, NULL);
	return 0;
}

static int pg_acquire(struct store *s, const char *func, struct store_conn **out)
{
	struct pg_store *q = (struct pg_store *)s;
	struct store_conn *c = NULL;
	int rc;

	pthread_mutex_lock(&q->pg_mu);
	for (;;) {
		for (size_t i = 0; i < q->pg_nconns && c == NULL; i++)
			if (!q->pg_conns[i].busy)
				c = &q->pg_conns[i];
		if (c == NULL && q->pg_nconns < PG_POOL_MAX)
			c = &q->pg_conns[q->pg_nconns++];
		if (c != NULL)
			break;
		pthread_cond_wait(&q->pg_free, &q->pg_mu);
	}
	c->busy = 1;
	pthread_mutex_unlock(&q->pg_mu);
	c->func = func;
	/* Connecting happens outside the pool's lock: it may take a while. */
	rc = pg_connect(q, c);
	if (rc != 0) {
		c->func = NULL;
		pthread_mutex_lock(&q->pg_mu);
		c->busy = 0;
		pthread_cond_signal(&q->pg_free);
		pthread_mutex_unlock(&q->pg_mu);
		return rc;
	}
	*out = c;
	return 0;
}

static void pg_release(struct store *s, struct store_conn *c)
{
	struct pg_store *q = (struct pg_store *)s;

	c->func = NULL;
	pthread_mutex_lock(&q->pg_mu);
	c->busy = 0;
	pthread_cond_signal(&q->pg_free);
	pthread_mutex_unlock(&q->pg_mu);
}

/*
 * Runs SQL text without values (transaction control, a migration: several
 * statements are allowed). 0 or -EIO.
 */
static int pg_script(struct store_conn *c, const char *sql)
{
	PGresult *res = PQexec(c->pg, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		rc = pg_err(c, "script", res);
	PQclear(res);
	return rc;
}

static int pg_begin(struct store_conn *c)
{
	int rc = pg_script(c, "BEGIN");

	if (rc == 0)
		rc = pg_script(c, "SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK ")");
	if (rc != 0 && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		pg_script(c, "ROLLBACK");
	return rc;
}

static void pg_rollback(struct store_conn *c)
{
	if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		pg_script(c, "ROLLBACK");
}

/* A transaction that failed inside answers COMMIT with ROLLBACK: that is a failure. */
static int pg_commit(struct store_conn *c)
{
	PGresult *res = PQexec(c->pg, "COMMIT");
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = pg_err(c, "commit", res);
	else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
		rc = pg_err(c, "commit rolled back", NULL);
	PQclear(res);
	pg_rollback(c);
	return rc;
}

/* A column of row r: bigint-like types are STORE_INT, everything else text. */
static void pg_column(const PGresult *res, int r, int i, struct store_val *v)
{
	const char *text = PQgetvalue(res, r, i);
	Oid type = PQftype(res, i);

	memset(v, 0, sizeof(*v));
	if (PQgetisnull(res, r, i)) {
		v->type = STORE_NULL;
	} else if (type == PG_OID_INT8 || type == PG_OID_INT4 || type == PG_OID_INT2 ||
		   type == PG_OID_NUMERIC) {
		v->type = STORE_INT;
		v->i = strtoll(text, NULL, 10);
	} else if (type == PG_OID_BOOL) {
		v->type = STORE_INT;
		v->i = text[0] == 't';
	} else {
		v->type = STORE_TEXT;
		v->text = text;
		v->len = (size_t)PQgetlength(res, r, i);
	}
}

/* The one statement runner (store_ops.exec). */
static int pg_exec(struct store_conn *c, enum store_sql id, const struct store_val *args,
		   size_t nargs, store_row_fn row, void *ctx, int64_t *changes)
{
	char ints[PG_MAX_ARGS][24];
	const char *vals[PG_MAX_ARGS];
	Oid types[PG_MAX_ARGS];
	struct store_val cols[PG_MAX_COLUMNS];
	PGresult *res;
	ExecStatusType st;
	const char *state;
	int rc = 0, nrows, ncols;

	if (nargs > PG_MAX_ARGS)
		return pg_err(c, "too many values", NULL);
	for (size_t i = 0; i < nargs; i++) {
		/* A NULL is a text NULL: SV_TEXT(NULL) is how the rules write one
		 * (every integer they bind is a value), and "?1 IS NULL OR x = ?1"
		 * needs a type before PostgreSQL reaches the comparison. */
		types[i] = PG_OID_TEXT;
		vals[i] = NULL;
		if (args[i].type == STORE_INT) {
			snprintf(ints[i], sizeof(ints[i]), "%lld", (long long)args[i].i);
			types[i] = PG_OID_INT8;
			vals[i] = ints[i];
		} else if (args[i].type == STORE_TEXT && args[i].text != NULL) {
			types[i] = PG_OID_TEXT;
			vals[i] = args[i].text;
		}
	}
	res = PQexecParams(c->pg, pg_sql[id], (int)nargs, types, vals, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		rc = state && strcmp(state, PG_SQLSTATE_UNIQUE) == 0 ? -EEXIST
								     : pg_err(c, "statement", res);
		PQclear(res);
		return rc;
	}
	nrows = PQntuples(res);
	ncols = PQnfields(res);
	if (ncols > PG_MAX_COLUMNS)
		rc = pg_err(c, "too many columns", NULL);
	for (int r = 0; rc == 0 && r < nrows && row != NULL; r++) {
		for (int i = 0; i < ncols; i++)
			pg_column(res, r, i, &cols[i]);
		rc = row(ctx, cols, (size_t)ncols);
	}
	if (rc > 0) /* the reader has what it wants */
		rc = 0;
	if (rc == 0 && changes != NULL)
		*changes = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return rc;
}

/* The change feed between processes ------------------------------------ */

/*
 * A payload is "INSTANCE SEQ KIND NAMELEN NAME KEY": the announcing store's
 * random id (so it skips its own), a sequence number (PostgreSQL delivers
 * one of several identical payloads of a transaction), the change kind,
 * and the name by length (names are validated elsewhere, but the format
 * does not depend on it); the key is the rest ("" for none).
 */
static int pg_announce(struct store_conn *c, const struct store_change *list)
{
	struct pg_store *q = c->owner;
	char payload[PG_PAYLOAD_MAX];
	const char *vals[1] = {payload};
	PGresult *res;
	int n, rc = 0;

	for (const struct store_change *ch = list; ch != NULL && rc == 0; ch = ch->next) {
		n = snprintf(payload, sizeof(payload), "%s %llu %u %zu %s%s", q->pg_instance,
			     (unsigned long long)atomic_fetch_add(&q->pg_seq, 1), (unsigned)ch->kind,
			     strlen(ch->name), ch->name, ch->key ? ch->key : "");
		if (n < 0 || (size_t)n >= sizeof(payload))
			return pg_err(c, "change too long to announce", NULL);
		res = PQexecParams(c->pg, "SELECT pg_notify('" PG_CHANNEL "', $1)", 1, NULL, vals,
				   NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			rc = pg_err(c, "notify", res);
		PQclear(res);
	}
	return rc;
}

/* A change another process announced, or NULL (ours, or not a payload of ours). */
static struct store_change *pg_parse_change(const struct pg_store *q, const char *p)
{
	char name[PG_PAYLOAD_MAX];
	unsigned long long kind, len;
	char *end;

	if (strncmp(p, q->pg_instance, strlen(q->pg_instance)) == 0)
		return NULL;
	p = strchr(p, ' ');
	if (p == NULL || (p = strchr(p + 1, ' ')) == NULL)
		return NULL;
	kind = strtoull(p + 1, &end, 10);
	if (*end != ' ' || kind == 0 || (kind & ~(unsigned long long)STORE_CHANGE_ALL) != 0)
		return NULL;
	len = strtoull(end + 1, &end, 10);
	if (*end != ' ' || len >= sizeof(name) || strlen(end + 1) < len)
		return NULL;
	memcpy(name, end + 1, len);
	name[len] = '\0';
	p = end + 1 + len;
	return store_change_new((enum store_change_kind)kind, name, *p ? p : NULL);
}

/* Connects the listener and subscribes; NULL when the database is away. */
static PGconn *pg_listen_connect(struct pg_store *q)
{
	struct store_conn c = {.owner = q, .func = "store feed"};
	PGresult *res;

	if (pg_connect(q, &c) != 0) {
		if (c.pg != NULL)
			PQfinish(c.pg);
		return NULL;
	}
	res = PQexec(c.pg, "LISTEN " PG_CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_err(&c, "listen", res);
		PQclear(res);
		PQfinish(c.pg);
		return NULL;
	}
	PQclear(res);
	return c.pg;
}

/* Hands what arrived to the feed; -1 when the connection is lost. */
static int pg_listen_read(struct pg_store *q, PGconn *pg)
{
	struct store_change *list = NULL, **tail = &list, *ch;
	PGnotify *n;

	if (!PQconsumeInput(pg))
		return -1;
	while ((n = PQnotifies(pg)) != NULL) {
		ch = pg_parse_change(q, n->extra);
		PQfreemem(n);
		if (ch != NULL) {
			*tail = ch;
			tail = &ch->next;
		}
	}
	if (list != NULL)
		store_feed__publish(&q->pg_base, list);
	return 0;
}

/*
 * The listener: one connection of its own, LISTENing, polled with a
 * timeout so close can stop it. A lost connection is made again with
 * backoff. Changes announced while it was away are not replayed: the
 * caches that depend on them also expire by themselves (auth.c's token
 * cache keeps an entry seconds, not forever).
 */
static void *pg_listen_main(void *arg)
{
	struct pg_store *q = arg;
	unsigned backoff = 100;
	struct pollfd pfd;
	PGconn *pg = q->pg_listen_conn;

	while (!atomic_load(&q->pg_stop)) {
		if (pg == NULL && (pg = pg_listen_connect(q)) == NULL) {
			usleep(backoff * 1000);
			backoff = backoff * 2 > PG_LISTEN_BACKOFF_MAX_MS ? PG_LISTEN_BACKOFF_MAX_MS
								     : backoff * 2;
			continue;
		}
		backoff = 100;
		pfd = (struct pollfd){.fd = PQsocket(pg), .events = POLLIN};
		if (poll(&pfd, 1, PG_LISTEN_POLL_MS) < 0 && errno != EINTR)
			break;
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && pg_listen_read(q, pg) < 0) {
			LOG_WARN("store feed: lost the database connection, reconnecting");
			PQfinish(pg);
			pg = NULL;
		}
	}
	if (pg != NULL)
		PQfinish(pg);
	return NULL;
}

static int pg_feed_watch(struct store *s)
{
	struct pg_store *q = (struct pg_store *)s;
	int rc;

	if (q->pg_listening)
		return 0;
	/* LISTEN before returning: a change committed after the subscription is heard. */
	q->pg_listen_conn = pg_listen_connect(q);
	if (q->pg_listen_conn == NULL)
		return -EIO;
	rc = pthread_create(&q->pg_listener, NULL, pg_listen_main, q);
	if (rc != 0) {
		PQfinish(q->pg_listen_conn);
		q->pg_listen_conn = NULL;
		LOG_ERROR("store feed: cannot start its thread: %s", strerror(rc));
		return -rc;
	}
	q->pg_listening = 1;
	return 0;
}

/* Open and close -------------------------------------------------------- */

static void pg_free(struct pg_store *q)
{
	if (q->pg_listening) {
		atomic_store(&q->pg_stop, 1);
		pthread_join(q->pg_listener, NULL);
	}
	for (size_t i = 0; i < q->pg_nconns; i++)
		if (q->pg_conns[i].pg != NULL)
			PQfinish(q->pg_conns[i].pg);
	free(q->pg_url);
	if (q->pg_password != NULL) {
		memset(q->pg_password, 0, strlen(q->pg_password));
		free(q->pg_password);
	}
	pthread_cond_destroy(&q->pg_free);
	pthread_mutex_destroy(&q->pg_mu);
	free(q);
}

static void pg_close(struct store *s)
{
	pg_free((struct pg_store *)s);
}

static const struct store_ops pg_ops = {
    .name = "postgres",
    .sql = (const char *const *)pg_sql,
    .migrations = store_pg_migrations,
    .nmigrations = &store_pg_migration_count,
    .acquire = pg_acquire,
    .release = pg_release,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .exec = pg_exec,
    .script = pg_script,
    .announce = pg_announce,
    .feed_watch = pg_feed_watch,
    .close = pg_close,
};

/*
 * Opens a pool on the database at url (a libpq URL or connection string)
 * and checks one connection now, so a wrong address or password is an
 * error at startup. password may be NULL (then the URL's, ~/.pgpass or
 * none). 0 and *out, or -ENOMEM/-EIO (logged, without the URL).
 */
int store_postgres_open(const char *url, const char *password, struct store **out)
{
	struct store_conn *c;
	struct pg_store *q;
	int rc;

	*out = NULL;
	pthread_once(&pg_sql_once, pg_sql_build);
	if (pg_sql_failed)
		return -ENOMEM;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->pg_base.ops = &pg_ops;
	pthread_mutex_init(&q->pg_mu, NULL);
	pthread_cond_init(&q->pg_free, NULL);
	if (secret_random_hex(PG_INSTANCE_BYTES, q->pg_instance, sizeof(q->pg_instance)) != 0) {
		pg_free(q);
		return -EIO;
	}
	for (size_t i = 0; i < PG_POOL_MAX; i++)
		q->pg_conns[i].owner = q;
	q->pg_url = strdup(url);
	q->pg_password = password ? strdup(password) : NULL;
	if (q->pg_url == NULL || (password != NULL && q->pg_password == NULL)) {
		pg_free(q);
		return -ENOMEM;
	}
	rc = pg_acquire(&q->pg_base, __func__, &c);
	if (rc != 0) {
		pg_free(q);
		return rc;
	}
	pg_release(&q->pg_base, c);
	*out = &q->pg_base;
	return 0;
}
