/*
 * test_changes.c - the server's caches follow the store's change feed
 * (src/server/changes.c): the API token cache of the auth step (a revoked
 * or created token is forgotten) and the enrolled set change whatever
 * code path changed the store, and before the answer to a store_run job
 * that made the change.
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
#include <uv.h>

#include "common/secret.h"
#include "server/enrolled.h"
#include "server/principal.h"
#include "server/server.h"
#include "server/tunnels.h"
#include "store/store_async.h"

#define NOW 1700000000
#define TOKEN_1 "lxcm_1111111111111111111111111111111111111111111111111111111111111111"
#define TOKEN_2 "lxcm_2222222222222222222222222222222222222222222222222222222222222222"
#define TOKEN_3 "lxcm_3333333333333333333333333333333333333333333333333333333333333333"
#define FP_1 "1111111111111111111111111111111111111111111111111111111111111111"
#define CERT "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

struct fixture {
	char dir[64];
	char path[128];
	uv_loop_t loop;
	struct server srv;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_true((size_t)snprintf(f->dir, sizeof(f->dir), "/tmp/lxcm-changes-XXXXXX") <
		    sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	assert_true((size_t)snprintf(f->path, sizeof(f->path), "%s/lxcm.db", f->dir) <
		    sizeof(f->path));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->srv.loop = &f->loop;
	assert_int_equal(store_open(f->path, &f->srv.store), 0);
	f->srv.principals = principal_cache_new(PRINCIPAL_CACHE_TTL_MS);
	assert_non_null(f->srv.principals);
	f->srv.enrolled = enrolled_new();
	f->srv.tunnels = tunnels_new(&f->srv);
	assert_non_null(f->srv.enrolled);
	assert_non_null(f->srv.tunnels);
	assert_int_equal(changes_listen(&f->srv), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char p[160];

	changes_stop(&f->srv);
	tunnels_free(f->srv.tunnels);
	enrolled_free(f->srv.enrolled);
	principal_cache_free(f->srv.principals);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	store_close(f->srv.store);
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		assert_true((size_t)snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]) <
			    sizeof(p));
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void on_pump_timer(uv_timer_t *t)
{
	uv_close((uv_handle_t *)t, NULL);
}

/*
 * Lets the loop deliver what the feed queued. The feed's handle does not
 * keep the loop alive (in the server the listeners do), so a short timer
 * does here.
 */
static void pump(struct fixture *f)
{
	uv_timer_t t;

	assert_int_equal(uv_timer_init(&f->loop, &t), 0);
	assert_int_equal(uv_timer_start(&t, on_pump_timer, 20, 0), 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static void hash_of(const char *token, char out[65])
{
	secret_sha256_hex(token, strlen(token), out);
}

/*
 * What the auth step (auth_management_pre_route) decides for a request with
 * this bearer token now: the token cache answers when it holds the hash,
 * else the store does (the lookup a cache miss waits for).
 */
static int trusted(struct fixture *f, const char *token)
{
	struct store_api_token_info info;
	struct principal p;
	char h[65];

	hash_of(token, h);
	if (principal_cache_get(f->srv.principals, h, uv_now(&f->loop), &p))
		return p.kind != PRINCIPAL_NONE;
	return store_api_token_lookup(f->srv.store, h, &info) == 0;
}

/* A request with this token went through the auth step: the cache keeps the answer. */
static void seen(struct fixture *f, const char *token)
{
	struct store_api_token_info info;
	struct principal p;
	char h[65];

	hash_of(token, h);
	if (store_api_token_lookup(f->srv.store, h, &info) == 0) {
		principal_from_api_token(&p, &info, h, 0);
		principal_cache_put(f->srv.principals, h, uv_now(&f->loop), &p,
				    principal_cache_generation(f->srv.principals));
	} else {
		principal_cache_put(f->srv.principals, h, uv_now(&f->loop), NULL,
				    principal_cache_generation(f->srv.principals));
	}
}

/* Whether the cache holds an answer for this token. */
static int cached(struct fixture *f, const char *token)
{
	struct principal p;
	char h[65];

	hash_of(token, h);
	return principal_cache_get(f->srv.principals, h, uv_now(&f->loop), &p);
}

struct revoker {
	struct store *s;
	const char *name;
	int rc;
};

static void *revoke_thread(void *arg)
{
	struct revoker *r = arg;

	r->rc = store_api_token_delete(r->s, r->name);
	return NULL;
}

/*
 * A token revoked by a code path that is not the API (here a store call on
 * another thread) is refused on the next request all the same.
 */
static void test_revoke_from_elsewhere(void **state)
{
	struct fixture *f = *state;
	struct revoker r = {f->srv.store, "ci", -1};
	char h1[65], h2[65];
	pthread_t th;

	hash_of(TOKEN_1, h1);
	hash_of(TOKEN_2, h2);
	assert_int_equal(store_api_token_create(f->srv.store, "admin", h1, NOW), 0);
	assert_int_equal(store_api_token_create(f->srv.store, "ci", h2, NOW), 0);
	pump(f);
	seen(f, TOKEN_1);
	seen(f, TOKEN_2);
	assert_true(trusted(f, TOKEN_1));
	assert_true(trusted(f, TOKEN_2));
	assert_true(cached(f, TOKEN_2));

	assert_int_equal(pthread_create(&th, NULL, revoke_thread, &r), 0);
	pthread_join(th, NULL);
	assert_int_equal(r.rc, 0);
	assert_true(trusted(f, TOKEN_2)); /* the cache's stale answer, until the loop delivers */
	pump(f);
	assert_false(cached(f, TOKEN_2)); /* forgotten: the next request asks the store */
	assert_false(trusted(f, TOKEN_2));
	assert_true(trusted(f, TOKEN_1));
	assert_true(cached(f, TOKEN_1)); /* the others stay */

	/* "No such token" is forgotten too when a token with that secret is made. */
	seen(f, TOKEN_3);
	assert_false(trusted(f, TOKEN_3));
	hash_of(TOKEN_3, h2);
	assert_int_equal(store_api_token_create_role(f->srv.store, "late", h2, "viewer", NOW), 0);
	pump(f);
	assert_true(trusted(f, TOKEN_3));

	/* The last token cannot go: nothing changes, nothing is announced. */
	r.name = "admin";
	assert_int_equal(pthread_create(&th, NULL, revoke_thread, &r), 0);
	pthread_join(th, NULL);
	assert_int_equal(r.rc, -EBUSY);
	pump(f);
	assert_true(trusted(f, TOKEN_1));
}

struct job {
	struct fixture *f;
	const char *op;
	int rc;
	int done;
	int trusted_at_done;
	int enrolled_at_done;
};

static void job_work(struct store *s, void *arg)
{
	struct job *j = arg;
	char h[65];
	struct store_cluster c = {
	    .name = (char *)"c1", .certificate = (char *)CERT, .fingerprint = (char *)FP_1};

	hash_of(TOKEN_2, h);
	if (strcmp(j->op, "create") == 0)
		j->rc = store_api_token_create(s, "ci", h, NOW);
	else if (strcmp(j->op, "revoke") == 0)
		j->rc = store_api_token_delete(s, "ci");
	else if (strcmp(j->op, "join") == 0)
		j->rc = store_cluster_join(s, &c, h, NOW);
	else
		j->rc = store_cluster_delete(s, "c1");
}

static void job_done(void *arg)
{
	struct job *j = arg;

	j->done++;
	j->trusted_at_done = trusted(j->f, TOKEN_2);
	j->enrolled_at_done = enrolled_has(j->f->srv.enrolled, FP_1);
}

static void run_job(struct fixture *f, struct job *j, const char *op)
{
	*j = (struct job){.f = f, .op = op, .rc = -1};
	assert_int_equal(store_run(&f->loop, f->srv.store, job_work, job_done, j), 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(j->done, 1);
	assert_int_equal(j->rc, 0);
}

/* The caches have the change when the job that made it answers. */
static void test_change_before_answer(void **state)
{
	struct fixture *f = *state;
	struct store_join_token t = {
	    .cluster_name = (char *)"c1", .expires_at = NOW + 60, .created_at = NOW};
	char h1[65], h2[65];
	struct job j;

	hash_of(TOKEN_1, h1);
	hash_of(TOKEN_2, h2);
	t.secret_hash = h2;
	assert_int_equal(store_api_token_create(f->srv.store, "admin", h1, NOW), 0);
	assert_int_equal(store_join_token_create(f->srv.store, &t), 0);
	pump(f);

	seen(f, TOKEN_2); /* "no such token", cached */
	run_job(f, &j, "create");
	assert_true(j.trusted_at_done);
	seen(f, TOKEN_2); /* the token and its role, cached */
	run_job(f, &j, "revoke");
	assert_false(j.trusted_at_done);
	assert_false(trusted(f, TOKEN_2));

	assert_false(enrolled_has(f->srv.enrolled, FP_1));
	run_job(f, &j, "join");
	assert_true(j.enrolled_at_done);
	run_job(f, &j, "remove");
	assert_false(j.enrolled_at_done);
	assert_int_equal(enrolled_count(f->srv.enrolled), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_revoke_from_elsewhere, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_before_answer, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
