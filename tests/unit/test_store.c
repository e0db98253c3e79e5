/*
 * test_store.c - the SQLite store against a temporary database file.
 *
 * Every test gets a fresh directory under /tmp and an open store; a second
 * raw SQLite connection looks at what the store wrote where the store API
 * does not tell (schema_migrations, cascades, journal mode).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "store/migrations.h"
#include "store/store.h"
#include "store/store_async.h"
#include "store/store_ops.h"

#define NOW 1700000000
#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HASH_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define FP_1 "1111111111111111111111111111111111111111111111111111111111111111"
#define FP_2 "2222222222222222222222222222222222222222222222222222222222222222"
#define FP_3 "3333333333333333333333333333333333333333333333333333333333333333"
#define CERT "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

struct fixture {
	char dir[64];
	char path[128];
	struct store *s;
};

static void path_in(const struct fixture *f, const char *suffix, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%s", f->path, suffix);

	assert_true(n > 0 && (size_t)n < size);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int n;

	assert_non_null(f);
	n = snprintf(f->dir, sizeof(f->dir), "/tmp/lxcm-store-XXXXXX");
	assert_true(n > 0 && (size_t)n < sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	n = snprintf(f->path, sizeof(f->path), "%s/lxcm.db", f->dir);
	assert_true(n > 0 && (size_t)n < sizeof(f->path));
	assert_int_equal(store_open(f->path, &f->s), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char p[160];

	store_close(f->s);
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		path_in(f, suffixes[i], p, sizeof(p));
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Runs a query returning one integer on a separate raw connection. */
static int64_t raw_int(const struct fixture *f, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void raw_exec(const struct fixture *f, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void make_token(struct fixture *f, const char *name, const char *hash, int64_t expires,
		       int want)
{
	struct store_join_token t = {
	    .cluster_name = (char *)name,
	    .description = (char *)"test token",
	    .secret_hash = (char *)hash,
	    .expires_at = expires,
	    .created_at = NOW,
	};

	assert_int_equal(store_join_token_create(f->s, &t), want);
}

static int join(struct fixture *f, const char *name, const char *fp, const char *hash, int64_t now)
{
	struct store_cluster c = {
	    .name = (char *)name,
	    .description = (char *)"a cluster",
	    .certificate = (char *)CERT,
	    .fingerprint = (char *)fp,
	};

	return store_cluster_join(f->s, &c, hash, now);
}

static size_t token_count(struct fixture *f)
{
	struct store_join_token *list = NULL;
	size_t n = 0;

	assert_int_equal(store_join_token_list(f->s, &list, &n), 0);
	store_join_token_list_free(list, n);
	return n;
}

static void test_migrations(void **state)
{
	struct fixture *f = *state;
	int64_t applied = raw_int(f, "SELECT COUNT(*) FROM schema_migrations");
	char url[160];

	assert_true(store_migration_count >= 1);
	assert_int_equal(applied, store_migration_count);
	assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
				    " AND name IN ('clusters', 'cluster_status', 'cluster_config',"
				    " 'join_tokens', 'api_tokens', 'audit_log', 'replicas',"
				    " 'tunnels')"),
			 8);
	assert_int_equal(raw_int(f, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);

	/* Re-opening, with and without the scheme, applies nothing new. */
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(f->path, &f->s), 0);
	store_close(f->s);
	f->s = NULL;
	assert_true((size_t)snprintf(url, sizeof(url), "sqlite:%s", f->path) < sizeof(url));
	assert_int_equal(store_open(url, &f->s), 0);
	assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM schema_migrations"), applied);
	assert_string_equal(f->s->ops->name, "sqlite");
}

static void test_open_urls(void **state)
{
	struct store *s = (struct store *)1;

	(void)state;
	/* PostgreSQL URLs go to libpq; nothing listens on port 1: the open fails. */
	assert_int_equal(store_open("postgres://u:p@127.0.0.1:1/db?connect_timeout=5", &s), -EIO);
	assert_null(s);
	assert_int_equal(store_open("postgresql://127.0.0.1:1/db?connect_timeout=5", &s), -EIO);
	assert_int_equal(store_open("mysql://localhost/db", &s), -EINVAL);
	assert_int_equal(store_open("", &s), -EINVAL);
	assert_int_equal(store_open("sqlite:", &s), -EINVAL);
	assert_int_equal(store_open(NULL, &s), -EINVAL);
	assert_int_equal(store_open("/nonexistent-lxcm-dir/x/y.db", &s), -EIO);
	assert_null(s);
	/* The free helpers accept NULL. */
	store_close(NULL);
	store_cluster_clear(NULL);
	store_cluster_list_free(NULL, 0);
	store_join_token_clear(NULL);
	store_join_token_list_free(NULL, 0);
}

static void test_tokens(void **state)
{
	struct fixture *f = *state;
	struct store_join_token *list = NULL;
	size_t n = 0;

	assert_int_equal(token_count(f), 0);
	make_token(f, "beta", HASH_B, NOW + 3600, 0);
	make_token(f, "alpha", HASH_A, NOW + 60, 0);
	make_token(f, "alpha", HASH_C, NOW + 60, -EEXIST);

	assert_int_equal(store_join_token_list(f->s, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].cluster_name, "alpha");
	assert_string_equal(list[0].secret_hash, HASH_A);
	assert_string_equal(list[0].description, "test token");
	assert_int_equal(list[0].expires_at, NOW + 60);
	assert_int_equal(list[0].created_at, NOW);
	assert_string_equal(list[1].cluster_name, "beta");
	store_join_token_list_free(list, n);

	assert_int_equal(store_join_token_delete(f->s, "alpha"), 0);
	assert_int_equal(store_join_token_delete(f->s, "alpha"), -ENOENT);
	assert_int_equal(token_count(f), 1);

	/* A cluster's name cannot get a token. */
	assert_int_equal(join(f, "beta", FP_1, HASH_B, NOW), 0);
	make_token(f, "beta", HASH_C, NOW + 60, -EEXIST);
}

static void test_join(void **state)
{
	struct fixture *f = *state;
	struct store_cluster c;

	assert_int_equal(join(f, "nope", FP_1, HASH_A, NOW), -ENOENT);

	make_token(f, "one", HASH_A, NOW + 60, 0);
	assert_int_equal(join(f, "one", FP_1, HASH_B, NOW), -EACCES);
	assert_int_equal(join(f, "one", FP_1, "aaaa", NOW), -EACCES);
	assert_int_equal(join(f, "one", FP_1, HASH_A "a", NOW), -EACCES);
	assert_int_equal(token_count(f), 1); /* a wrong secret leaves the token */
	assert_int_equal(join(f, "one", FP_1, HASH_A, NOW + 60), -EACCES); /* expired */
	assert_int_equal(join(f, "one", FP_1, HASH_A, NOW + 61), -EACCES);
	assert_int_equal(token_count(f), 1);

	assert_int_equal(join(f, "one", FP_1, HASH_A, NOW), 0);
	assert_int_equal(token_count(f), 0);
	assert_int_equal(store_cluster_get(f->s, "one", &c), 0);
	assert_true(c.id > 0);
	assert_string_equal(c.name, "one");
	assert_string_equal(c.description, "a cluster");
	assert_string_equal(c.certificate, CERT);
	assert_string_equal(c.fingerprint, FP_1);
	assert_string_equal(c.status, "ACTIVE");
	assert_int_equal(c.disk_threshold, 80);
	assert_int_equal(c.memory_threshold, 80);
	assert_int_equal(c.joined_at, NOW);
	assert_int_equal(c.created_at, NOW);
	assert_int_equal(c.last_status_update_at, 0);
	assert_null(c.status_json);
	store_cluster_clear(&c);

	/* The token was single-use. */
	assert_int_equal(join(f, "one", FP_2, HASH_A, NOW), -ENOENT);

	/* A fingerprint in use refuses the join and keeps the token. */
	make_token(f, "two", HASH_B, NOW + 60, 0);
	assert_int_equal(join(f, "two", FP_1, HASH_B, NOW), -EEXIST);
	assert_int_equal(token_count(f), 1);
	assert_int_equal(store_cluster_get(f->s, "two", &c), -ENOENT);

	/* So does a name in use (only reachable by writing the token directly). */
	raw_exec(f, "INSERT INTO join_tokens (cluster_name, secret_hash, expires_at, created_at)"
		    " VALUES ('one', '" HASH_C "', 1800000000, 1700000000)");
	assert_int_equal(join(f, "one", FP_2, HASH_C, NOW), -EEXIST);
	assert_int_equal(token_count(f), 2);

	assert_int_equal(join(f, "two", FP_2, HASH_B, NOW), 0);
	assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM cluster_config"), 4);

	/* An expired token does not hold its name: a new one replaces it. */
	make_token(f, "four", HASH_A, NOW - 1, 0);
	make_token(f, "four", HASH_B, NOW + 60, 0); /* made at NOW, after the first expired */
	make_token(f, "four", HASH_C, NOW + 60, -EEXIST); /* a live one does hold it */

	/* A join without a description takes the token's (the operator's words). */
	make_token(f, "three", HASH_A, NOW + 60, 0);
	{
		struct store_cluster j = {
		    .name = (char *)"three",
		    .description = (char *)"",
		    .certificate = (char *)CERT,
		    .fingerprint = (char *)FP_3,
		};

		assert_int_equal(store_cluster_join(f->s, &j, HASH_A, NOW), 0);
	}
	assert_int_equal(store_cluster_get(f->s, "three", &c), 0);
	assert_string_equal(c.description, "test token");
	store_cluster_clear(&c);
}

static void test_clusters(void **state)
{
	struct fixture *f = *state;
	struct store_cluster_update u = {NULL, -1, -1};
	struct store_cluster c, *list = NULL;
	size_t n = 0;

	make_token(f, "b", HASH_B, NOW + 60, 0);
	make_token(f, "a", HASH_A, NOW + 60, 0);
	assert_int_equal(join(f, "b", FP_2, HASH_B, NOW), 0);
	assert_int_equal(join(f, "a", FP_1, HASH_A, NOW), 0);

	/* Nothing set: nothing changes. */
	assert_int_equal(store_cluster_update(f->s, "a", &u), 0);
	u.disk_threshold = 90;
	assert_int_equal(store_cluster_update(f->s, "a", &u), 0);
	u.disk_threshold = -1;
	u.memory_threshold = 70;
	u.description = "renamed";
	assert_int_equal(store_cluster_update(f->s, "a", &u), 0);
	assert_int_equal(store_cluster_update(f->s, "zzz", &u), -ENOENT);

	assert_int_equal(store_cluster_get(f->s, "a", &c), 0);
	assert_string_equal(c.description, "renamed");
	assert_int_equal(c.disk_threshold, 90);
	assert_int_equal(c.memory_threshold, 70);
	store_cluster_clear(&c);
	assert_null(c.name);

	/* Status. */
	assert_int_equal(store_cluster_set_status(f->s, "a", "{\"cpu_total_count\":4}", NOW + 5), 0);
	assert_int_equal(store_cluster_set_status(f->s, "a", "{\"cpu_total_count\":8}", NOW + 9), 0);
	assert_int_equal(store_cluster_set_status(f->s, "zzz", "{}", NOW), -ENOENT);
	assert_int_equal(store_cluster_get_by_fingerprint(f->s, FP_1, &c), 0);
	assert_string_equal(c.name, "a");
	assert_string_equal(c.status_json, "{\"cpu_total_count\":8}");
	assert_int_equal(c.last_status_update_at, NOW + 9);
	store_cluster_clear(&c);
	assert_int_equal(store_cluster_get_by_fingerprint(f->s, HASH_C, &c), -ENOENT);

	assert_int_equal(store_cluster_list(f->s, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "a");
	assert_int_equal(list[0].disk_threshold, 90);
	assert_string_equal(list[0].status_json, "{\"cpu_total_count\":8}");
	assert_string_equal(list[1].name, "b");
	assert_int_equal(list[1].disk_threshold, 80);
	assert_null(list[1].status_json);
	store_cluster_list_free(list, n);

	/* Delete cascades to status and config. */
	assert_int_equal(store_cluster_delete(f->s, "a"), 0);
	assert_int_equal(store_cluster_delete(f->s, "a"), -ENOENT);
	assert_int_equal(store_cluster_get(f->s, "a", &c), -ENOENT);
	assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM cluster_status"), 0);
	assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM cluster_config"), 2);
	assert_int_equal(store_cluster_list(f->s, &list, &n), 0);
	assert_int_equal(n, 1);
	store_cluster_list_free(list, n);
	assert_int_equal(store_cluster_delete(f->s, "b"), 0);
	assert_int_equal(store_cluster_list(f->s, &list, &n), 0);
	assert_int_equal(n, 0);
	assert_null(list);
}

static void test_api_tokens(void **state)
{
	struct fixture *f = *state;
	int64_t count = -1;
	char *name = NULL;

	assert_int_equal(store_api_token_count(f->s, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_api_token_create(f->s, "admin", HASH_A, NOW), 0);
	assert_int_equal(store_api_token_create(f->s, "other", HASH_A, NOW), -EEXIST);
	assert_int_equal(store_api_token_create(f->s, "ci", HASH_B, NOW), 0);
	assert_int_equal(store_api_token_count(f->s, &count), 0);
	assert_int_equal(count, 2);

	assert_int_equal(store_api_token_check(f->s, HASH_A, &name), 0);
	assert_string_equal(name, "admin");
	free(name);
	assert_int_equal(store_api_token_check(f->s, HASH_B, NULL), 0);
	assert_int_equal(store_api_token_check(f->s, HASH_C, &name), -ENOENT);
	assert_null(name);
}

static void test_audit(void **state)
{
	struct fixture *f = *state;
	struct store_audit a = {
	    .at = NOW,
	    .actor = "admin",
	    .cluster = "one",
	    .method = "GET",
	    .path = "/1.0/instances",
	    .status = 200,
	    .bytes_in = 0,
	    .bytes_out = 1234,
	    .duration_ms = 7,
	};
	int64_t count = -1;

	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_audit_append(f->s, &a), 0);
	a.cluster = NULL;
	a.actor = NULL;
	assert_int_equal(store_audit_append(f->s, &a), 0);
	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(raw_int(f, "SELECT SUM(bytes_out) FROM audit_log"), 2468);

	/* A batch lands whole, in one transaction. */
	{
		struct store_audit many[300];
		size_t i;

		for (i = 0; i < 300; i++) {
			many[i] = a;
			many[i].bytes_out = 1;
		}
		assert_int_equal(store_audit_append_many(f->s, many, 300), 0);
		assert_int_equal(store_audit_append_many(f->s, many, 0), 0);
	}
	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 302);
	assert_int_equal(raw_int(f, "SELECT SUM(bytes_out) FROM audit_log"), 2768);

	/* A row replayed from the journal with a known request id is written once. */
	{
		struct store_audit r[3] = {a, a, a};

		r[0].request_id = "id-1";
		r[1].request_id = "id-2";
		r[2].request_id = "id-1";
		assert_int_equal(store_audit_append_many(f->s, r, 3), 0);
		assert_int_equal(store_audit_append_many(f->s, r, 2), 0);
		assert_int_equal(store_audit_append(f->s, &r[1]), 0);
	}
	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 304);
}

static void test_cluster_list_many(void **state)
{
	struct fixture *f = *state;
	struct store_cluster *list = NULL;
	char name[32], fp[80];
	size_t n = 0;

	for (int i = 0; i < 40; i++) {
		assert_true((size_t)snprintf(name, sizeof(name), "c%02d", i) < sizeof(name));
		assert_true((size_t)snprintf(fp, sizeof(fp), "%064d", i) < sizeof(fp));
		make_token(f, name, HASH_A, NOW + 60, 0);
		assert_int_equal(join(f, name, fp, HASH_A, NOW), 0);
	}
	assert_int_equal(store_cluster_list(f->s, &list, &n), 0);
	assert_int_equal(n, 40);
	assert_string_equal(list[0].name, "c00");
	assert_string_equal(list[39].name, "c39");
	assert_string_equal(list[39].fingerprint,
			    "0000000000000000000000000000000000000000000000000000000000000039");
	store_cluster_list_free(list, n);
}

/* A database failure comes back as -EIO (and is logged). */
static void test_db_error(void **state)
{
	struct fixture *f = *state;
	int64_t count = 0;

	raw_exec(f, "DROP TABLE api_tokens");
	assert_int_equal(store_api_token_count(f->s, &count), -EIO);
	assert_int_equal(store_api_token_create(f->s, "x", HASH_A, NOW), -EIO);
	/* The rest of the store still works. */
	assert_int_equal(store_audit_count(f->s, &count), 0);
}

/* store_run ------------------------------------------------------------- */

#define JOBS 64

struct job {
	uv_thread_t loop_thread;
	uv_thread_t work_thread;
	uv_thread_t done_thread;
	int work_rc;
	int done;
	int *done_total;
};

static void job_work(struct store *s, void *ctx)
{
	struct job *j = ctx;
	struct store_audit a = {.at = NOW, .method = "GET", .path = "/", .status = 200};

	j->work_thread = uv_thread_self();
	j->work_rc = store_audit_append(s, &a);
}

static void job_done(void *ctx)
{
	struct job *j = ctx;

	j->done_thread = uv_thread_self();
	j->done++;
	(*j->done_total)++;
}

static void test_store_run(void **state)
{
	struct fixture *f = *state;
	struct job jobs[JOBS];
	uv_loop_t loop;
	int done_total = 0;
	int64_t count = 0;
	uv_thread_t self = uv_thread_self();

	memset(jobs, 0, sizeof(jobs));
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_run(&loop, f->s, NULL, job_done, &jobs[0]), UV_EINVAL);
	for (int i = 0; i < JOBS; i++) {
		jobs[i].loop_thread = self;
		jobs[i].done_total = &done_total;
		assert_int_equal(store_run(&loop, f->s, job_work, job_done, &jobs[i]), 0);
	}
	/* Nothing is done before the loop runs. */
	assert_int_equal(done_total, 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);

	assert_int_equal(done_total, JOBS);
	for (int i = 0; i < JOBS; i++) {
		assert_int_equal(jobs[i].work_rc, 0);
		assert_int_equal(jobs[i].done, 1);
		assert_false(uv_thread_equal(&jobs[i].work_thread, &self));
		assert_true(uv_thread_equal(&jobs[i].done_thread, &self));
		assert_false(pthread_equal(jobs[i].work_thread, pthread_self()));
	}
	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, JOBS);
}


/* Status group commit ---------------------------------------------------- */

/* Joins clusters s0..s(n-1), each with its own fingerprint. */
static void join_many(struct fixture *f, int n)
{
	char name[16], fp[65];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		snprintf(fp, sizeof(fp), "%064d", i + 1);
		make_token(f, name, HASH_A, NOW + 3600, 0);
		assert_int_equal(join(f, name, fp, HASH_A, NOW), 0);
	}
}

static void test_name_by_fingerprint(void **state)
{
	struct fixture *f = *state;
	char *name = (char *)"x";
	char fp[65];

	join_many(f, 3);
	snprintf(fp, sizeof(fp), "%064d", 2);
	assert_int_equal(store_cluster_name_by_fingerprint(f->s, fp, &name), 0);
	assert_string_equal(name, "s1");
	free(name);
	assert_int_equal(store_cluster_name_by_fingerprint(f->s, FP_3, &name), -ENOENT);
	assert_null(name);
	assert_int_equal(store_cluster_delete(f->s, "s1"), 0);
	assert_int_equal(store_cluster_name_by_fingerprint(f->s, fp, &name), -ENOENT);
}

static void test_status_many(void **state)
{
	struct fixture *f = *state;
	struct store_status_row rows[3] = {
	    {"s0", "{\"a\":1}", NOW}, {"gone", "{\"a\":2}", NOW}, {"s1", "{\"a\":3}", NOW}};
	int rcs[3];
	struct store_cluster c = {0};

	join_many(f, 2);
	assert_int_equal(store_cluster_set_status_many(f->s, rows, 3, rcs), 0);
	assert_int_equal(rcs[0], 0);
	assert_int_equal(rcs[1], -ENOENT);
	assert_int_equal(rcs[2], 0);
	assert_int_equal(store_cluster_get(f->s, "s1", &c), 0);
	assert_string_equal(c.status_json, "{\"a\":3}");
	store_cluster_clear(&c);

	/* One failing row rolls back the whole transaction: nothing half-written. */
	raw_exec(f, "CREATE TRIGGER no_s1 BEFORE UPDATE ON cluster_status"
		    " WHEN NEW.body = '{\"bad\":1}' BEGIN SELECT RAISE(ABORT, 'refused'); END");
	rows[0].status_json = "{\"new\":1}";
	rows[1].name = "s1";
	rows[1].status_json = "{\"bad\":1}";
	rows[2].status_json = "{\"new\":3}";
	assert_int_equal(store_cluster_set_status_many(f->s, rows, 3, rcs), -EIO);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rcs[i], -EIO);
	assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM cluster_status WHERE body LIKE '%new%'"),
			 0);
	assert_int_equal(store_cluster_get(f->s, "s0", &c), 0);
	assert_string_equal(c.status_json, "{\"a\":1}");
	store_cluster_clear(&c);
}

#define POSTS 300

/*
 * Counts the transactions behind store_status_post, at the backend: the
 * ones that write statuses, and the most status rows one of them wrote.
 * The backend's calls run under its connection lock, one at a time.
 */
static struct store_ops counting_ops;
static const struct store_ops *real_ops;
static int txns, max_rows, rows_in_txn;

static int counting_begin(struct store_conn *c)
{
	rows_in_txn = 0;
	return real_ops->begin(c);
}

static int counting_exec(struct store_conn *c, enum store_sql id, const struct store_val *args,
			 size_t nargs, store_row_fn row, void *ctx, int64_t *changes)
{
	if (id == STORE_SQL_STATUS_SET) {
		if (rows_in_txn++ == 0)
			txns++;
		if (rows_in_txn > max_rows)
			max_rows = rows_in_txn;
	}
	return real_ops->exec(c, id, args, nargs, row, ctx, changes);
}

struct post_rec {
	struct store_status_post post;
	char name[32]; /* "unknown" and any int fit */
	char json[32];
	int done;
	int *ndone;
};

static void post_done(struct store_status_post *p)
{
	struct post_rec *r = p->data;

	r->done++;
	(*r->ndone)++;
}

/* n posts at once for POSTS/2 clusters (each twice), every 50th for an unknown cluster. */
static void run_posts(struct fixture *f, struct post_rec *recs, int n, int *ndone)
{
	uv_loop_t loop;

	assert_int_equal(uv_loop_init(&loop), 0);
	for (int i = 0; i < n; i++) {
		snprintf(recs[i].name, sizeof(recs[i].name), "s%d", i % (POSTS / 2));
		if (i % 50 == 49)
			snprintf(recs[i].name, sizeof(recs[i].name), "unknown%d", i);
		snprintf(recs[i].json, sizeof(recs[i].json), "{\"post\":%d}", i);
		recs[i].post.row = (struct store_status_row){recs[i].name, recs[i].json, NOW + i};
		recs[i].post.done = post_done;
		recs[i].post.data = &recs[i];
		recs[i].ndone = ndone;
		assert_int_equal(store_status_post(&loop, f->s, &recs[i].post), 0);
	}
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/*
 * POSTS heartbeats posted at once: each is answered once, after its row
 * committed, in far fewer transactions than posts; the later post of a
 * cluster wins; an unknown cluster gets -ENOENT without failing the rest.
 */
static void test_status_group_commit(void **state)
{
	struct fixture *f = *state;
	static struct post_rec recs[POSTS];
	int ndone = 0;
	struct store_cluster c = {0};

	memset(recs, 0, sizeof(recs));
	join_many(f, POSTS / 2);
	real_ops = f->s->ops;
	counting_ops = *real_ops;
	counting_ops.begin = counting_begin;
	counting_ops.exec = counting_exec;
	f->s->ops = &counting_ops;
	txns = max_rows = 0;
	run_posts(f, recs, POSTS, &ndone);
	f->s->ops = real_ops;

	assert_int_equal(ndone, POSTS);
	for (int i = 0; i < POSTS; i++) {
		assert_int_equal(recs[i].done, 1);
		assert_int_equal(recs[i].post.rc, i % 50 == 49 ? -ENOENT : 0);
	}
	/* The first post goes alone; the rest wait and share transactions. */
	assert_true(txns >= 2);
	assert_true(txns <= 1 + (POSTS - 1 + STORE_STATUS_BATCH_MAX - 1) / STORE_STATUS_BATCH_MAX);
	assert_true(max_rows <= STORE_STATUS_BATCH_MAX);
	/* s49, s99, s149: both of their posts went to unknown clusters. */
	assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM cluster_status"),
			 POSTS / 2 - POSTS / 2 / 50);
	/* s0 was posted as 0 and POSTS/2: the later one is what stays. */
	assert_int_equal(store_cluster_get(f->s, "s0", &c), 0);
	assert_int_equal(c.last_status_update_at, NOW + POSTS / 2);
	store_cluster_clear(&c);
}

/* The database refuses the writes: every post gets -EIO and no row is written. */
static void test_status_group_commit_fails(void **state)
{
	struct fixture *f = *state;
	static struct post_rec recs[POSTS];
	int ndone = 0;

	memset(recs, 0, sizeof(recs));
	join_many(f, POSTS / 2);
	raw_exec(f, "CREATE TRIGGER no_status BEFORE INSERT ON cluster_status"
		    " WHEN NEW.body = '{\"post\":260}' BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
	run_posts(f, recs, POSTS, &ndone);
	assert_int_equal(ndone, POSTS);
	for (int i = 0; i < POSTS; i++) {
		assert_int_equal(recs[i].done, 1);
		/* Post 260 poisons its whole transaction; the others commit. */
		if (recs[i].post.rc == -EIO)
			continue;
		assert_int_equal(recs[i].post.rc, i % 50 == 49 ? -ENOENT : 0);
	}
	assert_int_equal(recs[260].post.rc, -EIO);
	/* Every post that got -EIO left nothing behind, and every 0 is there. */
	for (int i = 0; i < POSTS; i++) {
		char sql[128];

		if (i % 50 == 49)
			continue;
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM cluster_status WHERE body = '%s'",
			 recs[i].json);
		if (i < POSTS / 2 && recs[i + POSTS / 2].post.rc == 0)
			continue; /* overwritten by its cluster's later post */
		assert_int_equal(raw_int(f, sql), recs[i].post.rc == 0 ? 1 : 0);
	}
	raw_exec(f, "DROP TRIGGER no_status");
	raw_exec(f, "CREATE TRIGGER no_status BEFORE INSERT ON cluster_status"
		    " BEGIN SELECT RAISE(ABORT, 'read-only'); END");
	raw_exec(f, "CREATE TRIGGER no_status2 BEFORE UPDATE ON cluster_status"
		    " BEGIN SELECT RAISE(ABORT, 'read-only'); END");
	raw_exec(f, "DELETE FROM cluster_status");
	memset(recs, 0, sizeof(recs));
	ndone = 0;
	run_posts(f, recs, POSTS, &ndone);
	for (int i = 0; i < POSTS; i++)
		assert_int_equal(recs[i].post.rc, -EIO);
	assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM cluster_status"), 0);
}

/* Several threads joining and creating tokens at once stay consistent. */
struct racer {
	struct fixture *f;
	int id;
	int joined;
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;
	struct store_cluster c = {
	    .name = (char *)"contested",
	    .certificate = (char *)CERT,
	    .fingerprint = (char *)(r->id % 2 ? FP_1 : FP_2),
	};

	for (int i = 0; i < 50; i++) {
		if (store_cluster_join(r->f->s, &c, HASH_A, NOW) == 0)
			r->joined++;
	}
	return NULL;
}

static void test_concurrent_join(void **state)
{
	struct fixture *f = *state;
	struct racer r[4];
	pthread_t th[4];
	int joined = 0;

	make_token(f, "contested", HASH_A, NOW + 60, 0);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){.f = f, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		joined += r[i].joined;
	}
	assert_int_equal(joined, 1);
	assert_int_equal(token_count(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
	    cmocka_unit_test(test_open_urls),
	    cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_join, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clusters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cluster_list_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_api_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_db_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_run, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_name_by_fingerprint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_group_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_group_commit_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_join, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
