/*
 * test_store_conformance.c - what every store backend must do.
 *
 * Written against the store's interfaces only (store.h, store_ops.h,
 * store_feed.h, store_async.h): no SQL, no file, no backend internals. It
 * exercises every operation, every rule (the join's secret check, expiry
 * and single use, also under concurrent joins; the last API token; the
 * audit dedupe; the cascade of a cluster removal), the change feed, and
 * the worker threads under load from several loops at once.
 *
 * Each entry of `backends` gives a fresh, empty, migrated store per test;
 * the whole suite runs on the backend named by the first argument (sqlite
 * when none). SQLite runs on a file in a temporary directory; PostgreSQL on
 * a scratch database made for each test on the server at LXCM_TEST_PG_URL
 * (scripts/pg-test-env.sh starts one; ctest's store_conformance_pg does
 * both), dropped after it.
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
#include <libpq-fe.h>
#include <uv.h>

#include "common/slice.h"
#include "store/store.h"
#include "store/store_async.h"
#include "store/store_feed.h"
#include "store/store_ops.h"
#include "store/store_session.h"

#define NOW 1700000000
#define CERT "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

struct fixture {
	char dir[64];
	char url[512];
	struct store *s;
};

struct backend {
	const char *name;
	/* A fresh, empty database named by f->url, not opened. */
	void (*fresh)(struct fixture *f);
	/* After store_close: removes what open made. */
	void (*clean)(struct fixture *f);
};

/* ---- backends ---- */

static void sqlite_fresh(struct fixture *f)
{
	assert_true((size_t)snprintf(f->dir, sizeof(f->dir), "/tmp/lxcm-conf-XXXXXX") <
		    sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	assert_true((size_t)snprintf(f->url, sizeof(f->url), "sqlite:%s/lxcm.db", f->dir) <
		    sizeof(f->url));
}

static void sqlite_clean(struct fixture *f)
{
	static const char *const files[] = {"lxcm.db", "lxcm.db-wal", "lxcm.db-shm"};
	char p[160];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		assert_true((size_t)snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]) < sizeof(p));
		unlink(p);
	}
	rmdir(f->dir);
}

/* Runs one statement on the server's maintenance database (the URL's). */
static void pg_admin(const char *sql)
{
	PGconn *c = PQconnectdb(getenv("LXCM_TEST_PG_URL"));
	PGresult *r;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* The server's URL with another database: key=value pairs, the later dbname wins. */
static void pg_fresh(struct fixture *f)
{
	static int seq;
	char sql[128];

	assert_non_null(getenv("LXCM_TEST_PG_URL"));
	assert_true((size_t)snprintf(f->dir, sizeof(f->dir), "lxcm_conf_%d_%d", (int)getpid(),
				     ++seq) < sizeof(f->dir));
	assert_true((size_t)snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->dir) < sizeof(sql));
	pg_admin(sql);
	/* libpq takes a URL as dbname with expand_dbname; appending a dbname
	 * parameter to the URL's query string overrides its path. */
	assert_true((size_t)snprintf(f->url, sizeof(f->url), "%s%cdbname=%s",
				     getenv("LXCM_TEST_PG_URL"),
				     strchr(getenv("LXCM_TEST_PG_URL"), '?') ? '&' : '?',
				     f->dir) < sizeof(f->url));
}

static void pg_clean(struct fixture *f)
{
	char sql[128];

	assert_true((size_t)snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", f->dir) <
		    sizeof(sql));
	pg_admin(sql);
}

static const struct backend backends[] = {
    {"sqlite", sqlite_fresh, sqlite_clean},
    {"postgres", pg_fresh, pg_clean},
};

static const struct backend *backend; /* the one the suite runs on */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	backend->fresh(f);
	assert_int_equal(store_open(f->url, &f->s), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->s);
	backend->clean(f);
	free(f);
	return 0;
}

/* ---- helpers ---- */

/* A 64-digit lowercase hex string made of digit c (hashes and fingerprints). */
static void hex64(char c, char out[65])
{
	memset(out, c, 64);
	out[64] = '\0';
}

/* The 64-digit string of number i. */
static void num64(int i, char out[65])
{
	assert_int_equal(snprintf(out, 65, "%064d", i), 64);
}

static int make_token(struct fixture *f, const char *name, const char *hash, int64_t expires)
{
	struct store_join_token t = {
	    .cluster_name = (char *)name,
	    .description = (char *)"token words",
	    .secret_hash = (char *)hash,
	    .expires_at = expires,
	    .created_at = NOW,
	};

	return store_join_token_create(f->s, &t);
}

static int join(struct store *s, const char *name, const char *fp, const char *hash, int64_t now)
{
	struct store_cluster c = {
	    .name = (char *)name,
	    .description = (char *)"",
	    .certificate = (char *)CERT,
	    .fingerprint = (char *)fp,
	};

	return store_cluster_join(s, &c, hash, now);
}

/* Makes a token for name and joins with it: the cluster exists afterwards. */
static void enroll(struct fixture *f, const char *name, const char *fp)
{
	char h[65];

	hex64('e', h);
	assert_int_equal(make_token(f, name, h, NOW + 60), 0);
	assert_int_equal(join(f->s, name, fp, h, NOW), 0);
}

static size_t token_count(struct fixture *f)
{
	struct store_join_token *list = NULL;
	size_t n = 0;

	assert_int_equal(store_join_token_list(f->s, &list, &n), 0);
	store_join_token_list_free(list, n);
	return n;
}

static void on_pump_timer(uv_timer_t *t)
{
	uv_close((uv_handle_t *)t, NULL);
}

/* Runs loop until nothing but the feed's (unreferenced) handle is left, and a little more. */
static void pump(uv_loop_t *loop)
{
	uv_timer_t t;

	assert_int_equal(uv_timer_init(loop, &t), 0);
	assert_int_equal(uv_timer_start(&t, on_pump_timer, 20, 0), 0);
	assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
}

/* ---- the backend table ---- */

static void test_backend_table(void **state)
{
	struct fixture *f = *state;
	const struct store_ops *ops = f->s->ops;

	assert_non_null(ops->name);
	assert_string_equal(store_backend(f->s), ops->name);
	assert_string_equal(ops->name, backend->name);
	for (int i = 0; i < STORE_SQL__COUNT; i++)
		assert_non_null(ops->sql[i]);
	assert_non_null(ops->acquire);
	assert_non_null(ops->release);
	assert_non_null(ops->begin);
	assert_non_null(ops->commit);
	assert_non_null(ops->rollback);
	assert_non_null(ops->exec);
	assert_non_null(ops->script);
	assert_non_null(ops->close);
	assert_true(*ops->nmigrations >= 1);
	for (int i = 1; i < *ops->nmigrations; i++)
		assert_true(ops->migrations[i].version > ops->migrations[i - 1].version);
	/* Re-opening a migrated store applies nothing and works. */
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(f->url, &f->s), 0);
}

/* Replicas starting together on a new database: each opens, migrations apply once. */
#define OPEN_RACERS 4

static void *open_racer(void *arg)
{
	struct fixture *f = arg;
	struct store *s = NULL;
	intptr_t rc = store_open(f->url, &s);

	store_close(s);
	return (void *)rc;
}

static void test_open_concurrent(void **state)
{
	struct fixture *f = *state;
	pthread_t t[OPEN_RACERS];
	void *rc;

	store_close(f->s);
	f->s = NULL;
	backend->clean(f);
	backend->fresh(f);
	for (int i = 0; i < OPEN_RACERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, open_racer, f), 0);
	for (int i = 0; i < OPEN_RACERS; i++) {
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_int_equal((intptr_t)rc, 0);
	}
	assert_int_equal(store_open(f->url, &f->s), 0);
}

/* ---- clusters ---- */

static void test_cluster_reads(void **state)
{
	struct fixture *f = *state;
	struct store_cluster c, *list = NULL;
	char fp1[65], fp2[65], fp3[65], *name = (char *)"x";
	size_t n = 9;

	assert_int_equal(store_cluster_list(f->s, &list, &n), 0);
	assert_null(list);
	assert_int_equal(n, 0);
	num64(1, fp1);
	num64(2, fp2);
	num64(3, fp3);
	enroll(f, "zeta", fp2);
	enroll(f, "alpha", fp1);

	assert_int_equal(store_cluster_list(f->s, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "alpha"); /* by name */
	assert_string_equal(list[1].name, "zeta");
	assert_string_equal(list[1].fingerprint, fp2);
	store_cluster_list_free(list, n);

	assert_int_equal(store_cluster_get(f->s, "alpha", &c), 0);
	assert_true(c.id > 0);
	assert_string_equal(c.name, "alpha");
	assert_string_equal(c.description, "token words"); /* the token's, the join gave none */
	assert_string_equal(c.certificate, CERT);
	assert_string_equal(c.fingerprint, fp1);
	assert_string_equal(c.status, "ACTIVE");
	assert_int_equal(c.disk_threshold, 80);
	assert_int_equal(c.memory_threshold, 80);
	assert_int_equal(c.joined_at, NOW);
	assert_int_equal(c.created_at, NOW);
	assert_int_equal(c.last_status_update_at, 0);
	assert_null(c.status_json);
	store_cluster_clear(&c);
	assert_null(c.name);
	assert_int_equal(store_cluster_get(f->s, "nope", &c), -ENOENT);
	assert_null(c.name);

	assert_int_equal(store_cluster_get_by_fingerprint(f->s, fp2, &c), 0);
	assert_string_equal(c.name, "zeta");
	store_cluster_clear(&c);
	assert_int_equal(store_cluster_get_by_fingerprint(f->s, fp3, &c), -ENOENT);

	assert_int_equal(store_cluster_name_by_fingerprint(f->s, fp1, &name), 0);
	assert_string_equal(name, "alpha");
	free(name);
	assert_int_equal(store_cluster_name_by_fingerprint(f->s, fp3, &name), -ENOENT);
	assert_null(name);
}

static void test_cluster_writes(void **state)
{
	struct fixture *f = *state;
	struct store_cluster_update u = {NULL, -1, -1};
	struct store_status_row rows[4] = {{"a", "{\"n\":1}", NOW + 1},
					   {"gone", "{\"n\":2}", NOW + 2},
					   {"b", NULL, NOW + 3},
					   {"b", "{\"n\":4}", NOW + 4}};
	struct store_cluster c;
	char fp[65];
	int rcs[4];

	num64(1, fp);
	enroll(f, "a", fp);
	num64(2, fp);
	enroll(f, "b", fp);

	assert_int_equal(store_cluster_update(f->s, "a", &u), 0); /* nothing set */
	u.disk_threshold = 95;
	assert_int_equal(store_cluster_update(f->s, "a", &u), 0);
	u = (struct store_cluster_update){"new words", -1, 5};
	assert_int_equal(store_cluster_update(f->s, "a", &u), 0);
	assert_int_equal(store_cluster_update(f->s, "nope", &u), -ENOENT);
	assert_int_equal(store_cluster_get(f->s, "a", &c), 0);
	assert_string_equal(c.description, "new words");
	assert_int_equal(c.disk_threshold, 95);
	assert_int_equal(c.memory_threshold, 5);
	store_cluster_clear(&c);

	assert_int_equal(store_cluster_set_status(f->s, "a", "{\"x\":1}", NOW + 5), 0);
	assert_int_equal(store_cluster_set_status(f->s, "a", "{\"x\":2}", NOW + 6), 0);
	assert_int_equal(store_cluster_set_status(f->s, "nope", "{}", NOW), -ENOENT);
	assert_int_equal(store_cluster_set_status(f->s, "a", NULL, NOW), -EINVAL);
	assert_int_equal(store_cluster_get(f->s, "a", &c), 0);
	assert_string_equal(c.status_json, "{\"x\":2}");
	assert_int_equal(c.last_status_update_at, NOW + 6);
	store_cluster_clear(&c);

	assert_int_equal(store_cluster_set_status_many(f->s, rows, 4, rcs), 0);
	assert_int_equal(rcs[0], 0);
	assert_int_equal(rcs[1], -ENOENT);
	assert_int_equal(rcs[2], -EINVAL);
	assert_int_equal(rcs[3], 0);
	assert_int_equal(store_cluster_get(f->s, "b", &c), 0);
	assert_string_equal(c.status_json, "{\"n\":4}");
	store_cluster_clear(&c);
	assert_int_equal(store_cluster_set_status_many(f->s, rows, 0, rcs), 0);

	assert_int_equal(store_cluster_delete(f->s, "a"), 0);
	assert_int_equal(store_cluster_delete(f->s, "a"), -ENOENT);
	assert_int_equal(store_cluster_get(f->s, "a", &c), -ENOENT);
	assert_int_equal(store_cluster_get(f->s, "b", &c), 0);
	store_cluster_clear(&c);
}

/* Removal takes everything that hangs on the cluster with it. */
static void test_cluster_cascade(void **state)
{
	struct fixture *f = *state;
	struct store_cluster_update u = {"changed", 90, 70};
	struct store_tunnel_owner o;
	struct store_cluster c;
	char fp[65], h[65], *name = NULL;

	num64(7, fp);
	hex64('d', h);
	enroll(f, "a", fp);
	assert_int_equal(store_cluster_update(f->s, "a", &u), 0);
	assert_int_equal(store_cluster_set_status(f->s, "a", "{\"x\":1}", NOW + 5), 0);
	assert_int_equal(store_tunnel_set(f->s, "a", "r1", 1, "v2", NOW), 0);

	assert_int_equal(store_cluster_delete(f->s, "a"), 0);
	assert_int_equal(store_tunnel_get(f->s, "a", &o), -ENOENT);
	assert_int_equal(store_tunnel_set(f->s, "a", "r1", 2, "v2", NOW), -ENOENT);
	assert_int_equal(store_cluster_name_by_fingerprint(f->s, fp, &name), -ENOENT);

	/* The same name and certificate join again from scratch. */
	assert_int_equal(make_token(f, "a", h, NOW + 60), 0);
	assert_int_equal(join(f->s, "a", fp, h, NOW + 1), 0);
	assert_int_equal(store_cluster_get(f->s, "a", &c), 0);
	assert_null(c.status_json);
	assert_int_equal(c.last_status_update_at, 0);
	assert_int_equal(c.disk_threshold, 80);
	assert_int_equal(c.memory_threshold, 80);
	assert_string_equal(c.description, "token words");
	assert_int_equal(c.joined_at, NOW + 1);
	store_cluster_clear(&c);
	assert_int_equal(store_tunnel_get(f->s, "a", &o), -ENOENT);
}

/* ---- join rules ---- */

static void test_join_rules(void **state)
{
	struct fixture *f = *state;
	struct store_cluster c = {0};
	char ha[65], hb[65], fp1[65], fp2[65], longer[66];

	hex64('a', ha);
	hex64('b', hb);
	num64(1, fp1);
	num64(2, fp2);
	memcpy(longer, ha, 64);
	longer[64] = 'a';
	longer[65] = '\0';

	assert_int_equal(join(f->s, "one", fp1, ha, NOW), -ENOENT); /* no token */
	/* No hash (the caller's token named another cluster): still the name decides. */
	assert_int_equal(join(f->s, "one", fp1, NULL, NOW), -ENOENT);
	assert_int_equal(make_token(f, "one", ha, NOW + 60), 0);
	/* A wrong secret, of any length, or none: refused, and the token stays. */
	assert_int_equal(join(f->s, "one", fp1, hb, NOW), -EACCES);
	assert_int_equal(join(f->s, "one", fp1, "aaaa", NOW), -EACCES);
	assert_int_equal(join(f->s, "one", fp1, longer, NOW), -EACCES);
	assert_int_equal(join(f->s, "one", fp1, "", NOW), -EACCES);
	assert_int_equal(join(f->s, "one", fp1, NULL, NOW), -EACCES);
	/* Expired at its expiry time and after. */
	assert_int_equal(join(f->s, "one", fp1, ha, NOW + 60), -EACCES);
	assert_int_equal(join(f->s, "one", fp1, ha, NOW + 61), -EACCES);
	assert_int_equal(token_count(f), 1);
	assert_int_equal(store_cluster_get(f->s, "one", &c), -ENOENT);

	assert_int_equal(join(f->s, "one", fp1, ha, NOW + 59), 0);
	/* Single use. */
	assert_int_equal(token_count(f), 0);
	assert_int_equal(join(f->s, "one", fp2, ha, NOW), -ENOENT);

	/* A certificate in use refuses the join and keeps the token. */
	assert_int_equal(make_token(f, "two", hb, NOW + 60), 0);
	assert_int_equal(join(f->s, "two", fp1, hb, NOW), -EEXIST);
	assert_int_equal(token_count(f), 1);
	assert_int_equal(store_cluster_get(f->s, "two", &c), -ENOENT);

	/* A description given at the join wins over the token's. */
	c = (struct store_cluster){.name = (char *)"two",
				   .description = (char *)"mine",
				   .certificate = (char *)CERT,
				   .fingerprint = fp2};
	assert_int_equal(store_cluster_join(f->s, &c, hb, NOW), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_cluster_get(f->s, "two", &c), 0);
	assert_string_equal(c.description, "mine");
	store_cluster_clear(&c);

	/* Missing fields. */
	c = (struct store_cluster){.name = (char *)"three", .fingerprint = fp2};
	assert_int_equal(store_cluster_join(f->s, &c, ha, NOW), -EINVAL);
}

#define RACERS 8
#define RACE_TRIES 20

struct racer {
	struct store *s;
	int id;
	int won, lost, other;
};

/* Every racer presents the right secret with its own certificate. */
static void *race_thread(void *arg)
{
	struct racer *r = arg;
	char h[65], fp[65];

	hex64('a', h);
	snprintf(fp, sizeof(fp), "%064d", 100 + r->id);
	for (int i = 0; i < RACE_TRIES; i++) {
		int rc = join(r->s, "contested", fp, h, NOW);

		if (rc == 0)
			r->won++;
		else if (rc == -ENOENT)
			r->lost++;
		else
			r->other++;
	}
	return NULL;
}

/* Concurrent joins with one token, from plain threads: exactly one wins. */
static void test_join_once_threads(void **state)
{
	struct fixture *f = *state;
	struct racer r[RACERS];
	pthread_t th[RACERS];
	int won = 0, lost = 0, other = 0;
	char h[65];

	hex64('a', h);
	assert_int_equal(make_token(f, "contested", h, NOW + 60), 0);
	for (int i = 0; i < RACERS; i++) {
		r[i] = (struct racer){.s = f->s, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		won += r[i].won;
		lost += r[i].lost;
		other += r[i].other;
	}
	assert_int_equal(won, 1);
	assert_int_equal(lost, RACERS * RACE_TRIES - 1);
	assert_int_equal(other, 0);
	assert_int_equal(token_count(f), 0);
}

/* The same race through the worker threads. */
#define JOIN_JOBS 48

struct join_job {
	int id;
	int rc;
	int done;
};

static void join_job_work(struct store *s, void *arg)
{
	struct join_job *j = arg;
	char h[65], fp[65];

	hex64('a', h);
	snprintf(fp, sizeof(fp), "%064d", 200 + j->id);
	j->rc = join(s, "contested", fp, h, NOW);
}

static void join_job_done(void *arg)
{
	((struct join_job *)arg)->done++;
}

static void test_join_once_workers(void **state)
{
	struct fixture *f = *state;
	struct join_job jobs[JOIN_JOBS];
	int won = 0, lost = 0;
	uv_loop_t loop;
	char h[65];

	hex64('a', h);
	assert_int_equal(store_workers_set_threads(f->s, 4), 0);
	assert_int_equal(make_token(f, "contested", h, NOW + 60), 0);
	assert_int_equal(uv_loop_init(&loop), 0);
	for (int i = 0; i < JOIN_JOBS; i++) {
		jobs[i] = (struct join_job){.id = i, .rc = 1};
		assert_int_equal(store_run(&loop, f->s, join_job_work, join_job_done, &jobs[i]), 0);
	}
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	for (int i = 0; i < JOIN_JOBS; i++) {
		assert_int_equal(jobs[i].done, 1);
		won += jobs[i].rc == 0;
		lost += jobs[i].rc == -ENOENT;
	}
	assert_int_equal(won, 1);
	assert_int_equal(lost, JOIN_JOBS - 1);
	assert_int_equal(store_workers_running(f->s), 4);
}

/* ---- join tokens ---- */

static void test_join_tokens(void **state)
{
	struct fixture *f = *state;
	struct store_join_token *list = NULL, bad = {0};
	char ha[65], hb[65], fp[65];
	size_t n = 0;

	hex64('a', ha);
	hex64('b', hb);
	num64(1, fp);
	assert_int_equal(make_token(f, "beta", hb, NOW + 3600), 0);
	assert_int_equal(make_token(f, "alpha", ha, NOW + 60), 0);
	assert_int_equal(make_token(f, "alpha", hb, NOW + 60), -EEXIST); /* a live one holds it */
	assert_int_equal(store_join_token_list(f->s, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].cluster_name, "alpha"); /* by name */
	assert_string_equal(list[0].description, "token words");
	assert_string_equal(list[0].secret_hash, ha);
	assert_int_equal(list[0].expires_at, NOW + 60);
	assert_int_equal(list[0].created_at, NOW);
	assert_string_equal(list[1].cluster_name, "beta");
	store_join_token_list_free(list, n);

	/* An expired token no longer holds its name. */
	assert_int_equal(make_token(f, "gamma", ha, NOW - 1), 0);
	assert_int_equal(make_token(f, "gamma", hb, NOW + 60), 0);
	assert_int_equal(token_count(f), 3);

	assert_int_equal(store_join_token_delete(f->s, "alpha"), 0);
	assert_int_equal(store_join_token_delete(f->s, "alpha"), -ENOENT);
	assert_int_equal(token_count(f), 2);

	/* A cluster's name cannot get a token. */
	assert_int_equal(join(f->s, "beta", fp, hb, NOW), 0);
	assert_int_equal(make_token(f, "beta", ha, NOW + 60), -EEXIST);

	assert_int_equal(store_join_token_create(f->s, &bad), -EINVAL);
	store_join_token_clear(NULL);
	store_join_token_list_free(NULL, 0);
}

/* ---- API tokens ---- */

static void test_api_tokens(void **state)
{
	struct fixture *f = *state;
	struct store_api_token *list = NULL;
	char ha[65], hb[65], hc[65], hashes[4][65], *name = NULL;
	int64_t count = -1;
	size_t n = 0;

	hex64('a', ha);
	hex64('b', hb);
	hex64('c', hc);
	assert_int_equal(store_api_token_count(f->s, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_api_token_create(f->s, "zed", ha, NOW), 0);
	assert_int_equal(store_api_token_create(f->s, "other", ha, NOW), -EEXIST); /* hash */
	assert_int_equal(store_api_token_create(f->s, "zed", hc, NOW), -EEXIST);   /* name */
	assert_int_equal(store_api_token_create(f->s, "ci", hb, NOW + 1), 0);
	assert_int_equal(store_api_token_create(f->s, NULL, hc, NOW), -EINVAL);
	assert_int_equal(store_api_token_count(f->s, &count), 0);
	assert_int_equal(count, 2);

	assert_int_equal(store_api_token_check(f->s, ha, &name), 0);
	assert_string_equal(name, "zed");
	free(name);
	assert_int_equal(store_api_token_check(f->s, hb, NULL), 0);
	assert_int_equal(store_api_token_check(f->s, hc, &name), -ENOENT);
	assert_null(name);

	assert_int_equal(store_api_token_list(f->s, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "ci"); /* by name */
	assert_int_equal(list[0].created_at, NOW + 1);
	assert_string_equal(list[0].hash_prefix, "bbbbbbbbbbbb");
	assert_string_equal(list[1].hash_prefix, "aaaaaaaaaaaa");
	store_api_token_list_free(list, n);

	assert_int_equal(store_api_token_hashes(f->s, hashes, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(hashes[0], ha); /* in creation order */
	assert_string_equal(hashes[1], hb);
	assert_int_equal(store_api_token_hashes(f->s, hashes, 1, &n), 0);
	assert_int_equal(n, 1);

	/* Revocation, and the last token stays. */
	assert_int_equal(store_api_token_delete(f->s, "nope"), -ENOENT);
	assert_int_equal(store_api_token_delete(f->s, "zed"), 0);
	assert_int_equal(store_api_token_check(f->s, ha, NULL), -ENOENT);
	assert_int_equal(store_api_token_delete(f->s, "ci"), -EBUSY);
	assert_int_equal(store_api_token_check(f->s, hb, NULL), 0);
	assert_int_equal(store_api_token_count(f->s, &count), 0);
	assert_int_equal(count, 1);
	store_api_token_list_free(NULL, 0);
}

/* Roles (migration 004): create with a role, look up by hash, list, the last admin kept. */
static void test_api_token_roles(void **state)
{
	struct fixture *f = *state;
	struct store_api_token_info info;
	struct store_api_token *list = NULL;
	char ha[65], hb[65], hc[65];
	size_t n = 0;

	hex64('a', ha);
	hex64('b', hb);
	hex64('c', hc);
	/* A token made without a role is an admin, as every token was before roles. */
	assert_int_equal(store_api_token_create(f->s, "admin", ha, NOW), 0);
	assert_int_equal(store_api_token_create_role(f->s, "ci", hb, "viewer", NOW), 0);
	assert_int_equal(store_api_token_create_role(f->s, "x", hc, "root", NOW), -EINVAL);
	assert_int_equal(store_api_token_create_role(f->s, "x", hc, NULL, NOW), -EINVAL);
	assert_int_equal(store_api_token_create_role(f->s, NULL, hc, "admin", NOW), -EINVAL);
	assert_int_equal(store_api_token_create_role(f->s, "ci", hc, "operator", NOW), -EEXIST);
	assert_int_equal(store_api_token_create_role(f->s, "y", hb, "operator", NOW), -EEXIST);
	assert_int_equal(store_api_token_lookup(f->s, ha, &info), 0);
	assert_string_equal(info.name, "admin");
	assert_string_equal(info.role, "admin");
	assert_true(info.id > 0);
	assert_int_equal(store_api_token_lookup(f->s, hb, &info), 0);
	assert_string_equal(info.name, "ci");
	assert_string_equal(info.role, "viewer");
	assert_int_equal(store_api_token_lookup(f->s, hc, &info), -ENOENT);
	assert_string_equal(info.name, "");
	assert_int_equal(store_api_token_list(f->s, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "admin");
	assert_string_equal(list[0].role, "admin");
	assert_string_equal(list[1].role, "viewer");
	store_api_token_list_free(list, n);
	/* The last admin token stays even with others left; a second admin lets it go. */
	assert_int_equal(store_api_token_delete(f->s, "admin"), -EBUSY);
	assert_int_equal(store_api_token_lookup(f->s, ha, &info), 0); /* rolled back */
	assert_int_equal(store_api_token_create_role(f->s, "ops", hc, "admin", NOW), 0);
	assert_int_equal(store_api_token_delete(f->s, "admin"), 0);
	assert_int_equal(store_api_token_lookup(f->s, ha, &info), -ENOENT);
	assert_int_equal(store_api_token_delete(f->s, "ci"), 0);
	assert_int_equal(store_api_token_delete(f->s, "ops"), -EBUSY);
}

/* ---- tunnel ownership ---- */

static void test_tunnels(void **state)
{
	struct fixture *f = *state;
	struct store_tunnel_owner o;
	char fp[65];

	assert_int_equal(store_tunnel_set(f->s, "a", "r1", 1, "v2", NOW), -ENOENT);
	num64(1, fp);
	enroll(f, "a", fp);
	num64(2, fp);
	enroll(f, "b", fp);
	assert_int_equal(store_tunnel_get(f->s, "a", &o), -ENOENT);

	assert_int_equal(store_tunnel_set(f->s, "a", "r1", 1, "v2", NOW), 0);
	assert_int_equal(store_tunnel_get(f->s, "a", &o), 0);
	assert_string_equal(o.replica, "r1");
	assert_string_equal(o.protocol, "v2");
	assert_int_equal(o.epoch, 1);
	assert_int_equal(o.since, NOW);
	store_tunnel_owner_clear(&o);

	/* A newer tunnel takes over; the old one closing does not erase it. */
	assert_int_equal(store_tunnel_set(f->s, "a", "r2", 2, "v1", NOW + 1), 0);
	assert_int_equal(store_tunnel_clear(f->s, "a", "r1", 1), 0);
	assert_int_equal(store_tunnel_get(f->s, "a", &o), 0);
	assert_string_equal(o.replica, "r2");
	assert_string_equal(o.protocol, "v1");
	assert_int_equal(o.epoch, 2);
	store_tunnel_owner_clear(&o);
	assert_int_equal(store_tunnel_clear(f->s, "a", "r2", 2), 0);
	assert_int_equal(store_tunnel_get(f->s, "a", &o), -ENOENT);

	/* A replica starting up drops every row it left. */
	assert_int_equal(store_tunnel_set(f->s, "a", "r1", 3, "v2", NOW), 0);
	assert_int_equal(store_tunnel_set(f->s, "b", "r1", 4, "v2", NOW), 0);
	assert_int_equal(store_tunnel_clear_replica(f->s, "r9"), 0);
	assert_int_equal(store_tunnel_get(f->s, "b", &o), 0);
	store_tunnel_owner_clear(&o);
	assert_int_equal(store_tunnel_clear_replica(f->s, "r1"), 0);
	assert_int_equal(store_tunnel_get(f->s, "a", &o), -ENOENT);
	assert_int_equal(store_tunnel_get(f->s, "b", &o), -ENOENT);
	store_tunnel_owner_clear(NULL);
}

/* ---- audit ---- */

static void test_audit(void **state)
{
	struct fixture *f = *state;
	struct store_audit a = {.at = NOW,
				.actor = "token:aaaaaaaaaaaa",
				.cluster = "c",
				.method = "GET",
				.path = "/1.0",
				.status = 200,
				.bytes_in = 1,
				.bytes_out = 2,
				.duration_ms = 3};
	struct store_audit r[4] = {a, a, a, a};
	int64_t count = -1;

	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_audit_append(f->s, &a), 0); /* no request id: never deduped */
	assert_int_equal(store_audit_append(f->s, &a), 0);
	r[0].request_id = "id-1";
	r[1].request_id = "id-2";
	r[2].request_id = "id-1"; /* twice in one batch: written once */
	r[3].actor = NULL;
	r[3].cluster = NULL;
	assert_int_equal(store_audit_append_many(f->s, r, 4), 0);
	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 5);
	/* A replay of the batch adds only its row without an id. */
	assert_int_equal(store_audit_append_many(f->s, r, 4), 0);
	assert_int_equal(store_audit_append(f->s, &r[1]), 0);
	assert_int_equal(store_audit_append_many(f->s, r, 0), 0);
	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 6);
}

/* ---- reading the audit log ---- */

/* A filter that selects everything, newest first, limit rows. */
static struct store_audit_filter audit_all(size_t limit)
{
	return (struct store_audit_filter){.status_max = 999, .until = INT64_MAX, .limit = limit};
}

/* Appends one row: at, actor, its name, cluster, status; its request id is "r<i>". */
static void audit_add(struct fixture *f, int i, int64_t at, const char *actor, const char *name,
		      const char *cluster, int status)
{
	char id[16];
	struct store_audit a = {.request_id = id,
				.at = at,
				.actor = actor,
				.actor_name = name,
				.client = "192.0.2.1",
				.cluster = cluster,
				.method = "GET",
				.path = "/1.0",
				.status = status,
				.bytes_in = i,
				.bytes_out = 2 * i,
				.duration_ms = 3};

	assert_true((size_t)snprintf(id, sizeof(id), "r%d", i) < sizeof(id));
	assert_int_equal(store_audit_append(f->s, &a), 0);
}

/* The request ids of what q selects, newest first, as "r3 r2 r1". */
static void audit_expect(struct fixture *f, const struct store_audit_filter *q, const char *want)
{
	struct store_audit_row *rows = NULL;
	char got[512] = "";
	size_t n = 0, used = 0;

	assert_int_equal(store_audit_query(f->s, q, &rows, &n), 0);
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(got + used, sizeof(got) - used, "%s%s", i ? " " : "",
				 rows[i].request_id ? rows[i].request_id : "-");
		assert_true(k > 0 && (size_t)k < sizeof(got) - used);
		used += (size_t)k;
	}
	store_audit_rows_free(rows, n);
	assert_string_equal(got, want);
}

/* Every filter, alone and together, newest first with equal times ordered by insertion. */
static void test_audit_query_filters(void **state)
{
	struct fixture *f = *state;
	struct store_audit_filter q = audit_all(100);
	struct store_audit_row *rows = NULL;
	size_t n = 0;

	audit_add(f, 1, NOW, "token:aaaaaaaaaaaa", "api-token:a", "c1", 200);
	audit_add(f, 2, NOW + 1, "token:bbbbbbbbbbbb", "api-token:b", "c1", 404);
	audit_add(f, 3, NOW + 1, "token:aaaaaaaaaaaa", "api-token:a", "c2", 503);
	audit_add(f, 4, NOW + 2, "token:bbbbbbbbbbbb", NULL, "c2", 500);
	audit_add(f, 5, NOW + 3, "anonymous", NULL, "c1", 201);
	audit_expect(f, &q, "r5 r4 r3 r2 r1");
	q.cluster = "c1";
	audit_expect(f, &q, "r5 r2 r1");
	q = audit_all(100);
	q.actor = "token:aaaaaaaaaaaa";
	audit_expect(f, &q, "r3 r1");
	q.actor = "api-token:b"; /* by name: r4 has none */
	audit_expect(f, &q, "r2");
	q = audit_all(100);
	q.status_min = 500;
	q.status_max = 599;
	audit_expect(f, &q, "r4 r3");
	q.status_min = q.status_max = 404;
	audit_expect(f, &q, "r2");
	q = audit_all(100);
	q.since = NOW + 1;
	q.until = NOW + 2;
	audit_expect(f, &q, "r4 r3 r2");
	q = audit_all(100);
	q.owner = "token:bbbbbbbbbbbb";
	audit_expect(f, &q, "r4 r2");
	q.actor = "token:aaaaaaaaaaaa"; /* an owner sees nobody else's rows */
	audit_expect(f, &q, "");
	q = audit_all(100);
	q.cluster = "c2";
	q.actor = "token:bbbbbbbbbbbb";
	q.status_min = 500;
	q.status_max = 599;
	q.since = NOW;
	audit_expect(f, &q, "r4");
	q = audit_all(2);
	audit_expect(f, &q, "r5 r4");
	/* Every column comes back. */
	q = audit_all(1);
	q.actor = "api-token:a";
	assert_int_equal(store_audit_query(f->s, &q, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].request_id, "r3");
	assert_int_equal(rows[0].at, NOW + 1);
	assert_string_equal(rows[0].actor, "token:aaaaaaaaaaaa");
	assert_string_equal(rows[0].actor_name, "api-token:a");
	assert_string_equal(rows[0].client, "192.0.2.1");
	assert_string_equal(rows[0].cluster, "c2");
	assert_string_equal(rows[0].method, "GET");
	assert_string_equal(rows[0].path, "/1.0");
	assert_int_equal(rows[0].status, 503);
	assert_int_equal(rows[0].bytes_in, 3);
	assert_int_equal(rows[0].bytes_out, 6);
	assert_int_equal(rows[0].duration_ms, 3);
	store_audit_rows_free(rows, n);
	store_audit_rows_free(NULL, 0);
	/* Out of range. */
	q = audit_all(0);
	assert_int_equal(store_audit_query(f->s, &q, &rows, &n), -EINVAL);
	q = audit_all(STORE_AUDIT_QUERY_MAX + 1);
	assert_int_equal(store_audit_query(f->s, &q, &rows, &n), -EINVAL);
	q = audit_all(STORE_AUDIT_QUERY_MAX);
	q.status_min = 600;
	q.status_max = 500;
	assert_int_equal(store_audit_query(f->s, &q, &rows, &n), -EINVAL);
	assert_null(rows);
	assert_int_equal(n, 0);
}

/*
 * Keyset pages: paging through every filter variant with rows added
 * between pages (newer ones, and an older one, as a journal replay writes)
 * returns each row that was there at the start exactly once, in order.
 */
static void test_audit_query_pages(void **state)
{
	static const char *const clusters[] = {NULL, "c0"};
	struct fixture *f = *state;
	int seen[300], extra = 200;

	for (int i = 0; i < 120; i++)
		audit_add(f, i, NOW + i / 7, i % 3 ? "token:aaaaaaaaaaaa" : "token:bbbbbbbbbbbb",
			  "api-token:a", i % 2 ? "c1" : "c0", 200);
	for (size_t v = 0; v < sizeof(clusters) / sizeof(clusters[0]); v++) {
		struct store_audit_filter q = audit_all(7);
		int64_t last_at = INT64_MAX, last_id = INT64_MAX;
		int pages = 0, first_new = extra; /* rows from here on come while paging */
		size_t n;

		memset(seen, 0, sizeof(seen));
		q.cluster = clusters[v];
		do {
			struct store_audit_row *rows = NULL;

			assert_int_equal(store_audit_query(f->s, &q, &rows, &n), 0);
			for (size_t i = 0; i < n; i++) {
				long long k = -1;

				assert_int_equal(slice_to_int64(slice_cstr(rows[i].request_id + 1),
								0, 299, &k),
						 0);
				assert_true(rows[i].at < last_at ||
					    (rows[i].at == last_at && rows[i].id < last_id));
				last_at = rows[i].at;
				last_id = rows[i].id;
				/* Rows added meanwhile show only if older than the page's end. */
				assert_true(k < 120 || k < first_new || rows[i].at == NOW - 1000);
				assert_int_equal(seen[k], 0);
				seen[k] = 1;
			}
			if (n > 0) {
				q.has_after = 1;
				q.after_at = rows[n - 1].at;
				q.after_id = rows[n - 1].id;
			}
			store_audit_rows_free(rows, n);
			/* Rows arrive while we page: a newer one, and one with an old time. */
			assert_true(extra < 298);
			audit_add(f, extra++, NOW + 1000, "token:aaaaaaaaaaaa", NULL, "c0", 200);
			audit_add(f, extra++, NOW - 1000, "token:aaaaaaaaaaaa", NULL, "c0", 200);
			pages++;
		} while (n == q.limit);
		for (int i = 0; i < 120; i++)
			assert_int_equal(seen[i], clusters[v] == NULL || i % 2 == 0);
		assert_true(pages > 2);
	}
}

/* Pruning takes the oldest rows first, at most max per call, and nothing newer. */
static void test_audit_prune(void **state)
{
	struct fixture *f = *state;
	int64_t deleted = -1, count = -1;

	for (int i = 0; i < 10; i++)
		audit_add(f, i, NOW + i, "token:aaaaaaaaaaaa", NULL, "c", 200);
	assert_int_equal(store_audit_prune(f->s, NOW + 7, 4, &deleted), 0);
	assert_int_equal(deleted, 4);
	assert_int_equal(store_audit_prune(f->s, NOW + 7, 4, &deleted), 0);
	assert_int_equal(deleted, 3); /* fewer than max: nothing older is left */
	assert_int_equal(store_audit_prune(f->s, NOW + 7, 4, &deleted), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 3);
	struct store_audit_filter q = audit_all(10);
	audit_expect(f, &q, "r9 r8 r7");
	assert_int_equal(store_audit_prune(f->s, NOW, 0, &deleted), -EINVAL);
}

/* ---- the change feed ---- */

#define MAX_EVENTS 32

struct recorder {
	int n;
	struct {
		unsigned kind;
		char name[64];
		char key[65];
	} ev[MAX_EVENTS];
};

static void record(const struct store_change *c, void *data)
{
	struct recorder *r = data;

	assert_true(r->n < MAX_EVENTS);
	r->ev[r->n].kind = c->kind;
	snprintf(r->ev[r->n].name, sizeof(r->ev[r->n].name), "%s", c->name);
	snprintf(r->ev[r->n].key, sizeof(r->ev[r->n].key), "%s", c->key ? c->key : "-");
	r->n++;
}

static void expect(const struct recorder *r, int i, unsigned kind, const char *name,
		   const char *key)
{
	assert_true(i < r->n);
	assert_int_equal(r->ev[i].kind, kind);
	assert_string_equal(r->ev[i].name, name);
	assert_string_equal(r->ev[i].key, key);
}

/*
 * store_copy (migrate-db): a SQLite store with every kind of row is copied
 * into this backend's empty store; everything reads back the same, ids
 * keep counting after the copied ones, and a second copy into the now
 * full store is refused without changing it.
 */
static void test_copy_from_sqlite(void **state)
{
	struct fixture *f = *state, src = {0};
	struct store_cluster_update u = {.description = "copied", .disk_threshold = 91,
					 .memory_threshold = -1};
	struct store_audit a = {.at = NOW, .actor = "token:abc", .cluster = "c1", .method = "GET",
				.path = "/1.0", .status = 200, .bytes_in = 1, .bytes_out = 2,
				.duration_ms = 3, .request_id = "req-1"};
	struct store_copy_counts counts;
	struct store_api_token_info info;
	struct store_join_token *tokens = NULL;
	struct store_cluster c = {0};
	char ha[65], hb[65], hc[65], fp[65];
	int64_t count = 0;
	size_t n = 0;

	hex64('a', ha);
	hex64('b', hb);
	hex64('c', hc);
	num64(7, fp);
	sqlite_fresh(&src);
	assert_int_equal(store_open(src.url, &src.s), 0);
	assert_int_equal(store_api_token_create(src.s, "admin", ha, NOW), 0);
	assert_int_equal(store_api_token_create_role(src.s, "ci", hb, "viewer", NOW), 0);
	{
		struct fixture tmp = {.s = src.s};

		assert_int_equal(make_token(&tmp, "c1", ha, NOW + 60), 0);
		assert_int_equal(make_token(&tmp, "pending", hb, NOW + 600), 0);
	}
	assert_int_equal(join(src.s, "c1", fp, ha, NOW), 0);
	assert_int_equal(store_cluster_update(src.s, "c1", &u), 0);
	assert_int_equal(store_cluster_set_status(src.s, "c1", "{\"members\":[]}", NOW + 5), 0);
	assert_int_equal(store_audit_append(src.s, &a), 0);
	a.request_id = NULL;
	assert_int_equal(store_audit_append(src.s, &a), 0);

	assert_int_equal(store_copy(src.s, f->s, &counts), 0);
	assert_int_equal(counts.rows[0], 1); /* clusters */
	assert_int_equal(counts.rows[1], 1); /* status */
	assert_int_equal(counts.rows[3], 1); /* join tokens */
	assert_int_equal(counts.rows[4], 2); /* API tokens */
	assert_int_equal(counts.rows[5], 2); /* audit rows */
	assert_int_equal(store_cluster_get(f->s, "c1", &c), 0);
	assert_string_equal(c.description, "copied");
	assert_string_equal(c.fingerprint, fp);
	assert_int_equal(c.disk_threshold, 91);
	assert_int_equal(c.memory_threshold, 80);
	assert_int_equal(c.last_status_update_at, NOW + 5);
	assert_string_equal(c.status_json, "{\"members\":[]}");
	store_cluster_clear(&c);
	assert_int_equal(store_api_token_lookup(f->s, hb, &info), 0);
	assert_string_equal(info.role, "viewer");
	assert_int_equal(store_join_token_list(f->s, &tokens, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(tokens[0].cluster_name, "pending");
	store_join_token_list_free(tokens, n);
	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 2);
	/* The request id came along: a journal replay of it is still written once. */
	a.request_id = "req-1";
	assert_int_equal(store_audit_append_many(f->s, &a, 1), 0);
	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 2);
	/* New rows get ids after the copied ones. */
	assert_int_equal(store_api_token_create(f->s, "after", hc, NOW), 0);
	assert_int_equal(store_audit_append(f->s, &a), 0);
	assert_int_equal(make_token(f, "c2", hc, NOW + 60), 0);

	/* Not into a store that has data: refused, nothing changes. */
	assert_int_equal(store_copy(src.s, f->s, &counts), -EEXIST);
	assert_int_equal(store_audit_count(f->s, &count), 0);
	assert_int_equal(count, 2);
	store_close(src.s);
	sqlite_clean(&src);
}

/* Runs loop until r holds n changes or 10 s passed (changes of other processes come late). */
static void pump_until(uv_loop_t *loop, const struct recorder *r, int n)
{
	for (int i = 0; i < 500 && r->n < n; i++)
		pump(loop);
}

/*
 * Two stores on one database, as two replicas: what one commits reaches
 * the other's subscribers, in order; what one refuses or rolls back does
 * not; a store hears its own changes once. A backend that is not shared
 * by processes (SQLite here: one server per file) has neither hook.
 */
static void test_feed_between_stores(void **state)
{
	struct fixture *f = *state;
	struct recorder got = {0};
	struct store *other = NULL;
	char ha[65], hb[65], hc[65];
	uv_loop_t loop;

	if (f->s->ops->feed_watch == NULL) {
		assert_null(f->s->ops->announce);
		skip();
	}
	assert_non_null(f->s->ops->announce);
	hex64('a', ha);
	hex64('b', hb);
	hex64('c', hc);
	assert_int_equal(store_open(f->url, &other), 0);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_feed_subscribe(f->s, &loop, STORE_CHANGE_ALL, record, &got), 0);

	assert_int_equal(store_api_token_create(other, "admin", ha, NOW), 0);
	assert_int_equal(store_api_token_create(other, "ci", hb, NOW), 0);
	/* Refused in the other store: nothing is announced anywhere. */
	assert_int_equal(store_api_token_delete(other, "admin"), 0);
	assert_int_equal(store_api_token_delete(other, "ci"), -EBUSY);
	assert_int_equal(make_token(f, "c", ha, NOW + 60), 0); /* this store's own */
	assert_int_equal(store_api_token_create(other, "ci2", hc, NOW), 0);
	pump_until(&loop, &got, 5);
	pump(&loop); /* nothing more comes: no echo of our own change */
	assert_int_equal(got.n, 5);
	/* Ours is published at its commit, the other's as they arrive, in
	 * their order: ours may fall anywhere among them. */
	for (int i = 0, j = 0; i < got.n; i++) {
		static const char *const names[] = {"admin", "ci", "admin", "ci2"};
		static const unsigned kinds[] = {
		    STORE_CHANGE_API_TOKEN_CREATED, STORE_CHANGE_API_TOKEN_CREATED,
		    STORE_CHANGE_API_TOKEN_REVOKED, STORE_CHANGE_API_TOKEN_CREATED};

		if (got.ev[i].kind == STORE_CHANGE_JOIN_TOKEN_CREATED) {
			expect(&got, i, STORE_CHANGE_JOIN_TOKEN_CREATED, "c", "-");
			continue;
		}
		assert_true(j < 4);
		assert_int_equal(got.ev[i].kind, kinds[j]);
		assert_string_equal(got.ev[i].name, names[j]);
		j++;
	}
	expect(&got, got.ev[4].kind == STORE_CHANGE_JOIN_TOKEN_CREATED ? 3 : 4,
	       STORE_CHANGE_API_TOKEN_CREATED, "ci2", hc);

	store_feed_unsubscribe(f->s, record, &got);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	store_close(other);
}

/*
 * Every change is announced once it committed, in order, with its key; a
 * refused operation announces nothing; masks filter.
 */
/* ---- sessions of people (store_session.c) ---- */

static void session_make(struct store_session *x, int i, const char *sub, int64_t created)
{
	memset(x, 0, sizeof(*x));
	assert_int_equal(snprintf(x->id, sizeof(x->id), "%032d", i), 32);
	num64(i, x->hash);
	x->issuer = "https://idp.example.com";
	x->subject = (char *)sub;
	x->name = "Alice";
	x->email = "alice@example.com";
	x->groups = "[\"admins\"]";
	snprintf(x->role, sizeof(x->role), "admin");
	x->created_at = created;
	x->idle_expires_at = created + 600;
	x->expires_at = created + 3600;
	x->user_agent = "curl";
	x->address = "192.0.2.1";
	x->tokens = "sealed";
	x->access_expires_at = created + 300;
}

static void test_sessions(void **state)
{
	struct fixture *f = *state;
	struct store_session a, b, c, got, *list = NULL;
	struct store_identity *ids = NULL;
	size_t n = 0;

	session_make(&a, 1, "alice", NOW);
	session_make(&b, 2, "alice", NOW + 1); /* a second browser */
	session_make(&c, 3, "bob", NOW + 2);
	c.email = "bob@example.com";
	snprintf(c.role, sizeof(c.role), "none");
	assert_int_equal(store_session_create(f->s, &a), 0);
	assert_int_equal(store_session_create(f->s, &b), 0);
	assert_int_equal(store_session_create(f->s, &c), 0);
	assert_int_equal(store_session_create(f->s, &a), -EEXIST);
	a.subject = NULL;
	assert_int_equal(store_session_create(f->s, &a), -EINVAL);
	a.subject = "alice";

	/* Use: found by hash, the idle expiry moves on but never past the absolute one. */
	assert_int_equal(store_session_use(f->s, a.hash, NOW + 100, 600, &got), 0);
	assert_string_equal(got.id, a.id);
	assert_string_equal(got.subject, "alice");
	assert_string_equal(got.groups, "[\"admins\"]");
	assert_string_equal(got.tokens, "sealed");
	assert_int_equal(got.last_seen, NOW + 100);
	assert_int_equal(got.idle_expires_at, NOW + 700);
	store_session_clear(&got);
	assert_int_equal(store_session_use(f->s, a.hash, NOW + 650, 600, &got), 0);
	assert_int_equal(got.idle_expires_at, NOW + 1250);
	store_session_clear(&got);
	assert_int_equal(store_session_use(f->s, a.hash, NOW + 1200, 3600, &got), 0);
	assert_int_equal(got.idle_expires_at, NOW + 3600); /* capped by expires_at */
	store_session_clear(&got);
	/* Absolute expiry: gone, and deleted. */
	assert_int_equal(store_session_use(f->s, a.hash, NOW + 3600, 600, &got), -ENOENT);
	assert_int_equal(store_session_use(f->s, a.hash, NOW + 1300, 600, &got), -ENOENT);
	/* Idle expiry. */
	assert_int_equal(store_session_use(f->s, b.hash, NOW + 600, 600, &got), 0);
	store_session_clear(&got);
	assert_int_equal(store_session_use(f->s, b.hash, NOW + 1202, 600, &got), -ENOENT);
	assert_int_equal(store_session_use(f->s, "nope", NOW, 600, &got), -ENOENT);

	/* Refresh: new groups, role and tokens. */
	assert_int_equal(store_session_update(f->s, c.hash, "[\"viewers\"]", "viewer", "sealed2",
					      NOW + 900, NOW + 10), 0);
	assert_int_equal(store_session_update(f->s, a.hash, "[]", "none", "x", 0, NOW), -ENOENT);
	assert_int_equal(store_session_use(f->s, c.hash, NOW + 20, 600, &got), 0);
	assert_string_equal(got.role, "viewer");
	assert_string_equal(got.groups, "[\"viewers\"]");
	assert_string_equal(got.tokens, "sealed2");
	assert_int_equal(got.access_expires_at, NOW + 900);
	store_session_clear(&got);

	/* Lists: everyone's, and one person's. */
	session_make(&a, 4, "alice", NOW + 30);
	assert_int_equal(store_session_create(f->s, &a), 0);
	assert_int_equal(store_session_list(f->s, NULL, NULL, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].subject, "bob");
	assert_string_equal(list[1].id, a.id);
	store_session_list_free(list, n);
	assert_int_equal(store_session_list(f->s, "https://idp.example.com", "alice", &list, &n), 0);
	assert_int_equal(n, 1);
	store_session_list_free(list, n);

	/* Identities: both people, with sessions counted and the refreshed role. */
	assert_int_equal(store_identity_list(f->s, &ids, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0].email, "alice@example.com");
	assert_int_equal(ids[0].sessions, 1);
	assert_int_equal(ids[0].first_seen, NOW);
	assert_string_equal(ids[1].role, "viewer");
	assert_string_equal(ids[1].groups, "[\"viewers\"]");
	store_identity_list_free(ids, n);

	/* Revoke: only one's own, unless admin; logout by hash. */
	assert_int_equal(store_session_revoke(f->s, c.id, "https://idp.example.com", "alice"),
			 -ENOENT);
	assert_int_equal(store_session_revoke(f->s, c.id, "https://idp.example.com", "bob"), 0);
	assert_int_equal(store_session_use(f->s, c.hash, NOW + 40, 600, &got), -ENOENT);
	assert_int_equal(store_session_revoke(f->s, a.id, NULL, NULL), 0);
	assert_int_equal(store_session_revoke(f->s, a.id, NULL, NULL), -ENOENT);
	session_make(&a, 5, "alice", NOW + 50);
	assert_int_equal(store_session_create(f->s, &a), 0);
	assert_int_equal(store_session_end(f->s, a.hash), 0);
	assert_int_equal(store_session_end(f->s, a.hash), -ENOENT);

	/* Purge of expired ones. */
	session_make(&a, 6, "alice", NOW);
	session_make(&b, 7, "alice", NOW + 5000);
	assert_int_equal(store_session_create(f->s, &a), 0);
	assert_int_equal(store_session_create(f->s, &b), 0);
	assert_int_equal(store_session_purge(f->s, NOW + 4000, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_session_list(f->s, NULL, NULL, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, b.id);
	store_session_list_free(list, n);
}

/* Shared keys: the first stored wins, for every later caller. */
static void test_shared_keys(void **state)
{
	struct fixture *f = *state;
	char out[65];

	assert_int_equal(store_key_get(f->s, "oidc-state", "first", NOW, out, sizeof(out)), 0);
	assert_string_equal(out, "first");
	assert_int_equal(store_key_get(f->s, "oidc-state", "second", NOW, out, sizeof(out)), 0);
	assert_string_equal(out, "first");
	assert_int_equal(store_key_get(f->s, "other", "second", NOW, out, sizeof(out)), 0);
	assert_string_equal(out, "second");
	assert_int_equal(store_key_get(f->s, "other", "x", NOW, out, 3), -E2BIG);
}

/* Ending, revoking, expiring and refreshing a session are announced with its hash. */
static void test_session_feed(void **state)
{
	struct fixture *f = *state;
	struct recorder r = {0};
	struct store_session a, got;
	uv_loop_t loop;
	size_t n;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_feed_subscribe(f->s, &loop, STORE_CHANGE_SESSION_CHANGED, record, &r), 0);
	session_make(&a, 1, "alice", NOW);
	assert_int_equal(store_session_create(f->s, &a), 0);
	assert_int_equal(store_session_update(f->s, a.hash, "[]", "none", "t", 0, NOW), 0);
	assert_int_equal(store_session_end(f->s, a.hash), 0);
	assert_int_equal(store_session_create(f->s, &a), 0);
	assert_int_equal(store_session_revoke(f->s, a.id, NULL, NULL), 0);
	assert_int_equal(store_session_create(f->s, &a), 0);
	assert_int_equal(store_session_use(f->s, a.hash, NOW + 9999, 600, &got), -ENOENT);
	assert_int_equal(store_session_create(f->s, &a), 0);
	assert_int_equal(store_session_purge(f->s, NOW + 9999, &n), 0);
	assert_int_equal(store_session_end(f->s, a.hash), -ENOENT); /* refused: not announced */
	pump(&loop);
	assert_int_equal(r.n, 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(r.ev[i].key, a.hash);
	expect(&r, 0, STORE_CHANGE_SESSION_CHANGED, a.id, a.hash);
	store_feed_unsubscribe(f->s, record, &r);
	pump(&loop);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_feed(void **state)
{
	struct fixture *f = *state;
	struct recorder all = {0}, removed = {0};
	char ha[65], hb[65], fp[65];
	uv_loop_t loop, other;

	hex64('a', ha);
	hex64('b', hb);
	num64(5, fp);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(uv_loop_init(&other), 0);
	assert_int_equal(store_feed_subscribe(f->s, &loop, STORE_CHANGE_ALL, record, &all), 0);
	assert_int_equal(
	    store_feed_subscribe(f->s, &loop, STORE_CHANGE_CLUSTER_REMOVED, record, &removed), 0);
	assert_int_equal(store_feed_subscribe(f->s, &other, STORE_CHANGE_ALL, record, &all),
			 -EINVAL);

	assert_int_equal(store_api_token_create(f->s, "admin", ha, NOW), 0);
	assert_int_equal(store_api_token_create(f->s, "ci", hb, NOW), 0);
	assert_int_equal(store_api_token_delete(f->s, "ci"), 0);
	assert_int_equal(make_token(f, "c", ha, NOW + 60), 0);
	assert_int_equal(join(f->s, "c", fp, ha, NOW), 0);
	assert_int_equal(store_cluster_delete(f->s, "c"), 0);
	assert_int_equal(make_token(f, "d", ha, NOW + 60), 0);
	assert_int_equal(store_join_token_delete(f->s, "d"), 0);
	/* Refused: nothing is announced. */
	assert_int_equal(store_api_token_delete(f->s, "admin"), -EBUSY);
	assert_int_equal(store_api_token_create(f->s, "admin", hb, NOW), -EEXIST);
	assert_int_equal(make_token(f, "e", ha, NOW + 60), 0);
	assert_int_equal(join(f->s, "e", fp, hb, NOW), -EACCES);
	assert_int_equal(store_cluster_delete(f->s, "c"), -ENOENT);
	assert_int_equal(store_join_token_delete(f->s, "zz"), -ENOENT);

	assert_int_equal(all.n, 0); /* only on the loop */
	pump(&loop);
	assert_int_equal(all.n, 10);
	expect(&all, 0, STORE_CHANGE_API_TOKEN_CREATED, "admin", ha);
	expect(&all, 1, STORE_CHANGE_API_TOKEN_CREATED, "ci", hb);
	expect(&all, 2, STORE_CHANGE_API_TOKEN_REVOKED, "ci", hb);
	expect(&all, 3, STORE_CHANGE_JOIN_TOKEN_CREATED, "c", "-");
	expect(&all, 4, STORE_CHANGE_JOIN_TOKEN_USED, "c", "-");
	expect(&all, 5, STORE_CHANGE_CLUSTER_ADDED, "c", fp);
	expect(&all, 6, STORE_CHANGE_CLUSTER_REMOVED, "c", fp);
	expect(&all, 7, STORE_CHANGE_JOIN_TOKEN_CREATED, "d", "-");
	expect(&all, 8, STORE_CHANGE_JOIN_TOKEN_REVOKED, "d", "-");
	expect(&all, 9, STORE_CHANGE_JOIN_TOKEN_CREATED, "e", "-");
	assert_int_equal(removed.n, 1);
	expect(&removed, 0, STORE_CHANGE_CLUSTER_REMOVED, "c", fp);

	/* Once nobody listens, changes are dropped and the loop holds nothing of the feed. */
	store_feed_unsubscribe(f->s, record, &removed);
	store_feed_unsubscribe(f->s, record, &all);
	store_feed_unsubscribe(f->s, record, &all); /* unknown: nothing happens */
	assert_int_equal(store_join_token_delete(f->s, "e"), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(all.n, 10);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(uv_loop_close(&other), 0);
}

struct feed_job {
	struct recorder *seen;
	int rc;
	int seen_at_done;
};

static void feed_job_noop(struct store *s, void *arg)
{
	(void)s;
	(void)arg;
}

static void feed_job_work(struct store *s, void *arg)
{
	struct feed_job *j = arg;
	char h[65];

	hex64('f', h);
	j->rc = store_api_token_create(s, "from-job", h, NOW);
}

static void feed_job_done(void *arg)
{
	struct feed_job *j = arg;

	j->seen_at_done = j->seen->n;
}

/*
 * A change made by a store_run job reaches the subscribers before the
 * job's done callback, even when the job's completion handle is older than
 * the feed's (libuv runs async callbacks in the order handles were made).
 */
static void test_feed_before_done(void **state)
{
	struct fixture *f = *state;
	struct recorder seen = {0};
	struct feed_job j = {.seen = &seen, .rc = -1, .seen_at_done = -1};
	uv_loop_t loop;

	assert_int_equal(uv_loop_init(&loop), 0);
	/* The loop's completion port exists before the feed's handle. */
	assert_int_equal(store_run(&loop, f->s, feed_job_noop, NULL, NULL), 0);
	assert_int_equal(store_feed_subscribe(f->s, &loop, STORE_CHANGE_ALL, record, &seen), 0);
	assert_int_equal(store_run(&loop, f->s, feed_job_work, feed_job_done, &j), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(j.rc, 0);
	assert_int_equal(j.seen_at_done, 1);
	store_feed_unsubscribe(f->s, record, &seen);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- worker threads under load ---- */

#define LOOPS 4
#define JOBS_PER_LOOP 250

struct hammer;

struct hjob {
	struct hammer *h;
	int kind, i;
	int rc;
	pthread_t work_thread;
	pthread_t done_thread;
	int done;
	struct store_status_post post;
	char name[32], json[32];
};

struct hammer {
	struct store *s;
	int id;
	pthread_t thread;
	uv_loop_t loop;
	struct hjob jobs[JOBS_PER_LOOP];
	int submit_failed;
	int loop_rc;
};

static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t seen_threads[STORE_THREADS_MAX];
static int nseen_threads;

static void note_worker(void)
{
	pthread_t self = pthread_self();
	int i;

	pthread_mutex_lock(&seen_mu);
	for (i = 0; i < nseen_threads; i++)
		if (pthread_equal(seen_threads[i], self))
			break;
	if (i == nseen_threads && nseen_threads < STORE_THREADS_MAX)
		seen_threads[nseen_threads++] = self;
	pthread_mutex_unlock(&seen_mu);
}

/* One of five kinds of work: audit row, token made and revoked, reads, a join. */
static void hjob_work(struct store *s, void *arg)
{
	struct hjob *j = arg;
	struct store_audit a = {.at = NOW, .method = "GET", .path = "/", .status = 200};
	struct store_cluster c;
	char rid[32], h[65], fp[65];
	int64_t count;

	j->work_thread = pthread_self();
	note_worker();
	snprintf(rid, sizeof(rid), "h%d-%d", j->h->id, j->i);
	snprintf(j->name, sizeof(j->name), "t%d-%d", j->h->id, j->i);
	hex64('a', h);
	switch (j->kind) {
	case 0:
		a.request_id = rid;
		j->rc = store_audit_append(s, &a);
		break;
	case 1: {
		struct store_join_token t = {.cluster_name = j->name,
					     .secret_hash = h,
					     .expires_at = NOW + 60,
					     .created_at = NOW};

		j->rc = store_join_token_create(s, &t);
		if (j->rc == 0)
			j->rc = store_join_token_delete(s, j->name);
		break;
	}
	case 2:
		j->rc = store_cluster_get(s, "shared", &c);
		store_cluster_clear(&c);
		break;
	case 3:
		j->rc = store_api_token_count(s, &count);
		if (j->rc == 0 && count != 1)
			j->rc = -EPROTO;
		break;
	default: {
		struct store_join_token t = {.cluster_name = j->name,
					     .secret_hash = h,
					     .expires_at = NOW + 60,
					     .created_at = NOW};

		snprintf(fp, sizeof(fp), "%02d%062d", j->h->id, j->i);
		j->rc = store_join_token_create(s, &t);
		if (j->rc == 0)
			j->rc = join(s, j->name, fp, h, NOW);
		break;
	}
	}
}

static void hjob_done(void *arg)
{
	struct hjob *j = arg;

	j->done_thread = pthread_self();
	j->done++;
}

static void hjob_status_done(struct store_status_post *p)
{
	struct hjob *j = p->data;

	j->done_thread = pthread_self();
	j->rc = p->rc;
	j->done++;
}

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;

	if (uv_loop_init(&h->loop) != 0) {
		h->loop_rc = -1;
		return NULL;
	}
	for (int i = 0; i < JOBS_PER_LOOP; i++) {
		struct hjob *j = &h->jobs[i];

		*j = (struct hjob){.h = h, .kind = i % 6, .i = i, .rc = 1};
		if (j->kind == 5) { /* a heartbeat through the group commit */
			snprintf(j->json, sizeof(j->json), "{\"i\":%d}", i);
			j->post.row = (struct store_status_row){"shared", j->json, NOW + i};
			j->post.done = hjob_status_done;
			j->post.data = j;
			if (store_status_post(&h->loop, h->s, &j->post) != 0)
				h->submit_failed++;
		} else if (store_run(&h->loop, h->s, hjob_work, hjob_done, j) != 0) {
			h->submit_failed++;
		}
	}
	h->loop_rc = uv_run(&h->loop, UV_RUN_DEFAULT);
	if (h->loop_rc == 0)
		h->loop_rc = uv_loop_close(&h->loop);
	return NULL;
}

/*
 * Several loops on several threads hammer one store through three worker
 * threads: every job runs once off its loop and is answered once on it,
 * and the store's state adds up.
 */
static void test_workers_hammer(void **state)
{
	struct fixture *f = *state;
	static struct hammer hs[LOOPS];
	struct store_cluster *list = NULL;
	int64_t audits = 0;
	char h[65], fp[65];
	size_t n = 0;

	hex64('a', h);
	num64(999, fp);
	enroll(f, "shared", fp);
	assert_int_equal(store_api_token_create(f->s, "admin", h, NOW), 0);
	assert_int_equal(store_workers_set_threads(f->s, 0), -EINVAL);
	assert_int_equal(store_workers_set_threads(f->s, STORE_THREADS_MAX + 1), -EINVAL);
	assert_int_equal(store_workers_set_threads(f->s, 3), 0);
	nseen_threads = 0;
	for (int i = 0; i < LOOPS; i++) {
		memset(&hs[i], 0, sizeof(hs[i]));
		hs[i].s = f->s;
		hs[i].id = i;
		assert_int_equal(pthread_create(&hs[i].thread, NULL, hammer_thread, &hs[i]), 0);
	}
	for (int i = 0; i < LOOPS; i++) {
		pthread_join(hs[i].thread, NULL);
		assert_int_equal(hs[i].submit_failed, 0);
		assert_int_equal(hs[i].loop_rc, 0);
		for (int k = 0; k < JOBS_PER_LOOP; k++) {
			struct hjob *j = &hs[i].jobs[k];

			assert_int_equal(j->done, 1);
			assert_int_equal(j->rc, 0);
			assert_true(pthread_equal(j->done_thread, hs[i].thread));
			if (j->kind != 5)
				assert_false(pthread_equal(j->work_thread, hs[i].thread));
		}
	}
	assert_int_equal(store_workers_running(f->s), 3);
	assert_true(nseen_threads >= 1 && nseen_threads <= 3);
	assert_int_equal(store_workers_set_threads(f->s, 2), -EBUSY);

	assert_int_equal(store_audit_count(f->s, &audits), 0);
	assert_int_equal(audits, LOOPS * ((JOBS_PER_LOOP + 5) / 6));
	assert_int_equal(token_count(f), 0);
	assert_int_equal(store_cluster_list(f->s, &list, &n), 0);
	assert_int_equal(n, 1 + LOOPS * ((JOBS_PER_LOOP + 1) / 6));
	store_cluster_list_free(list, n);
}

/*
 * Stopping drains: queued work runs, every result is delivered on the
 * calling (loop) thread, the loop is left with nothing of the store, and
 * later work is refused.
 */
static void test_workers_stop(void **state)
{
	struct fixture *f = *state;
	struct join_job jobs[JOIN_JOBS];
	int64_t count = 0;
	uv_loop_t loop;

	assert_int_equal(uv_loop_init(&loop), 0);
	for (int i = 0; i < JOIN_JOBS; i++) {
		jobs[i] = (struct join_job){.id = i, .rc = 1};
		assert_int_equal(store_run(&loop, f->s, join_job_work, join_job_done, &jobs[i]), 0);
	}
	store_workers_stop(f->s);
	for (int i = 0; i < JOIN_JOBS; i++) {
		assert_int_equal(jobs[i].done, 1);
		assert_int_equal(jobs[i].rc, -ENOENT); /* no token: each ran */
	}
	assert_int_equal(store_run(&loop, f->s, join_job_work, join_job_done, &jobs[0]),
			 UV_ECANCELED);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	/* The store itself still answers on the calling thread. */
	assert_int_equal(store_audit_count(f->s, &count), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_backend_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cluster_reads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cluster_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cluster_cascade, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_join_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_join_once_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_join_once_workers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_join_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_api_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_api_token_roles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tunnels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_query_filters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_query_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_prune, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shared_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_session_feed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_feed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_copy_from_sqlite, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_feed_between_stores, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_feed_before_done, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_workers_hammer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_workers_stop, setup, teardown),
	};
	const char *want = argc > 1 ? argv[1] : "sqlite";

	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strcmp(backends[i].name, want) != 0)
			continue;
		backend = &backends[i];
		return cmocka_run_group_tests_name(backend->name, tests, NULL, NULL);
	}
	fprintf(stderr, "no backend %s\n", want);
	return 2;
}
