/*
 * test_principal.c - roles, the access check of every method, path, role
 * and access level, the management route table's access levels, principals
 * of API tokens and certificates, and the API token cache (expiry, negative
 * entries, forget, flush, stale lookups, bounds).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/secret.h"
#include "server/principal.h"
#include "server/server.h"

static const enum principal_role roles[] = {
	PRINCIPAL_ROLE_NONE,
	PRINCIPAL_ROLE_VIEWER,
	PRINCIPAL_ROLE_OPERATOR,
	PRINCIPAL_ROLE_ADMIN,
};
#define NROLES (sizeof(roles) / sizeof(roles[0]))

static void test_roles(void **state)
{
	(void)state;
	assert_true(PRINCIPAL_ROLE_NONE < PRINCIPAL_ROLE_VIEWER);
	assert_true(PRINCIPAL_ROLE_VIEWER < PRINCIPAL_ROLE_OPERATOR);
	assert_true(PRINCIPAL_ROLE_OPERATOR < PRINCIPAL_ROLE_ADMIN);
	assert_string_equal(principal_role_name(PRINCIPAL_ROLE_VIEWER), "viewer");
	assert_string_equal(principal_role_name(PRINCIPAL_ROLE_OPERATOR), "operator");
	assert_string_equal(principal_role_name(PRINCIPAL_ROLE_ADMIN), "admin");
	assert_string_equal(principal_role_name(PRINCIPAL_ROLE_NONE), "none");
	assert_string_equal(principal_role_name((enum principal_role)99), "none");
	assert_int_equal(principal_role_parse(LIT("viewer")), PRINCIPAL_ROLE_VIEWER);
	assert_int_equal(principal_role_parse(LIT("operator")), PRINCIPAL_ROLE_OPERATOR);
	assert_int_equal(principal_role_parse(LIT("admin")), PRINCIPAL_ROLE_ADMIN);
	assert_int_equal(principal_role_parse(LIT("Admin")), PRINCIPAL_ROLE_NONE);
	assert_int_equal(principal_role_parse(LIT("admin ")), PRINCIPAL_ROLE_NONE);
	assert_int_equal(principal_role_parse(LIT("none")), PRINCIPAL_ROLE_NONE);
	assert_int_equal(principal_role_parse(LIT("")), PRINCIPAL_ROLE_NONE);
	assert_int_equal(principal_role_parse(SLICE_NULL), PRINCIPAL_ROLE_NONE);
}

/* ---- the access check ---- */

static const char *const methods[] = {"GET",	 "HEAD",    "POST",  "PUT",
				      "PATCH",	 "DELETE",  "OPTIONS", "CONNECT",
				      "PROPFIND", "get"};
static const char *const paths[] = {
	"1.0/events",
	"1.0/events/",
	"1.0/%65vents",
	"1.0/events/../operations/x/websocket",
	"1.0/operations/abc/websocket",
	"1.0/instances/c1/exec",
	"1.0/instances/c1/console",
	"1.0/instances/c1/files",
	"1.0/images/abc/export",
	"1.0",
	"ui/",
	"",
};
static const enum principal_access accesses[] = {
	PRINCIPAL_ACCESS_PUBLIC, PRINCIPAL_ACCESS_VIEWER, PRINCIPAL_ACCESS_OPERATOR,
	PRINCIPAL_ACCESS_ADMIN,	 PRINCIPAL_ACCESS_TUNNEL,
};

/* The rules of docs/security.md, written out again independently. */
static int expected(enum principal_role role, enum principal_access access, const char *method,
		    const char *path, int upgrade)
{
	int reads = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	switch (access) {
	case PRINCIPAL_ACCESS_PUBLIC: return 1;
	case PRINCIPAL_ACCESS_VIEWER: return role != PRINCIPAL_ROLE_NONE;
	case PRINCIPAL_ACCESS_OPERATOR:
		return role == PRINCIPAL_ROLE_OPERATOR || role == PRINCIPAL_ROLE_ADMIN;
	case PRINCIPAL_ACCESS_ADMIN: return role == PRINCIPAL_ROLE_ADMIN;
	case PRINCIPAL_ACCESS_TUNNEL:
		if (role == PRINCIPAL_ROLE_OPERATOR || role == PRINCIPAL_ROLE_ADMIN)
			return 1;
		if (role != PRINCIPAL_ROLE_VIEWER || !reads)
			return 0;
		return !upgrade || strcmp(path, "1.0/events") == 0;
	}
	return 0;
}

static void test_access_table(void **state)
{
	size_t r, a, m, p, n = 0;
	int u;

	(void)state;
	for (r = 0; r < NROLES; r++)
		for (a = 0; a < sizeof(accesses) / sizeof(accesses[0]); a++)
			for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
				for (p = 0; p < sizeof(paths) / sizeof(paths[0]); p++)
					for (u = 0; u <= 1; u++, n++) {
						int want = expected(roles[r], accesses[a],
								    methods[m], paths[p], u);
						int got = principal_may(
							roles[r], accesses[a],
							slice_cstr(methods[m]),
							slice_cstr(paths[p]), u);

						if (got != want)
							fail_msg("%s %s %s %s upgrade=%d: got %d",
								 principal_role_name(roles[r]),
								 principal_access_name(accesses[a]),
								 methods[m], paths[p], u, got);
					}
	assert_int_equal(n, NROLES * 5 * 10 * 12 * 2);
	/* The cases the issue names, spelled out. */
	assert_true(principal_may(PRINCIPAL_ROLE_VIEWER, PRINCIPAL_ACCESS_TUNNEL, LIT("GET"),
				  LIT("1.0/events"), 1));
	assert_false(principal_may(PRINCIPAL_ROLE_VIEWER, PRINCIPAL_ACCESS_TUNNEL, LIT("GET"),
				   LIT("1.0/operations/x/websocket"), 1));
	assert_false(principal_may(PRINCIPAL_ROLE_VIEWER, PRINCIPAL_ACCESS_TUNNEL, LIT("POST"),
				   LIT("1.0/instances/c1/exec"), 0));
	assert_true(principal_may(PRINCIPAL_ROLE_OPERATOR, PRINCIPAL_ACCESS_TUNNEL, LIT("POST"),
				  LIT("1.0/instances/c1/exec"), 0));
	assert_false(principal_may(PRINCIPAL_ROLE_OPERATOR, PRINCIPAL_ACCESS_ADMIN, LIT("POST"),
				   SLICE_NULL, 0));
	assert_false(principal_may(PRINCIPAL_ROLE_NONE, PRINCIPAL_ACCESS_TUNNEL, LIT("GET"),
				   LIT("1.0"), 0));
}

/* The management routes' access levels, one by one (a route added without one is for admins). */
static void test_api_route_access(void **state)
{
	static const struct {
		const char *method, *pattern;
		enum principal_access access;
	} want[] = {
		{"GET", "/1.0/auth/tokens", PRINCIPAL_ACCESS_VIEWER},
		{"POST", "/1.0/auth/tokens", PRINCIPAL_ACCESS_ADMIN},
		{"DELETE", "/1.0/auth/tokens/{name}", PRINCIPAL_ACCESS_ADMIN},
		{"GET", "/1.0", PRINCIPAL_ACCESS_PUBLIC},
		{"GET", "/1.0/status", PRINCIPAL_ACCESS_PUBLIC},
		{"GET", "/1.0/metrics", PRINCIPAL_ACCESS_OPERATOR},
		{"GET", "/1.0/remote-cluster", PRINCIPAL_ACCESS_VIEWER},
		{"GET", "/1.0/remote-cluster/{name}", PRINCIPAL_ACCESS_VIEWER},
		{"PATCH", "/1.0/remote-cluster/{name}", PRINCIPAL_ACCESS_ADMIN},
		{"DELETE", "/1.0/remote-cluster/{name}", PRINCIPAL_ACCESS_ADMIN},
		{"POST", "/1.0/remote-cluster-join-token", PRINCIPAL_ACCESS_ADMIN},
		{"GET", "/1.0/remote-cluster-join-token", PRINCIPAL_ACCESS_VIEWER},
		{"DELETE", "/1.0/remote-cluster-join-token/{name}", PRINCIPAL_ACCESS_ADMIN},
		{"GET", "/1.0/audit", PRINCIPAL_ACCESS_VIEWER}, /* a viewer sees its own rows */
		{NULL, "/1.0/remote-cluster/{name}/tunnel/{*}", PRINCIPAL_ACCESS_TUNNEL},
		/* People (issue 11): logins are public, sessions any role's, people admins'. */
		{"GET", "/oidc/login", PRINCIPAL_ACCESS_PUBLIC},
		{"GET", "/oidc/callback", PRINCIPAL_ACCESS_PUBLIC},
		{"POST", "/oidc/logout", PRINCIPAL_ACCESS_PUBLIC},
		{"GET", "/1.0/auth/sessions", PRINCIPAL_ACCESS_VIEWER},
		{"DELETE", "/1.0/auth/sessions/{id}", PRINCIPAL_ACCESS_VIEWER},
		{"GET", "/1.0/auth/identities", PRINCIPAL_ACCESS_ADMIN},
	};
	size_t i, k, found;

	(void)state;
	assert_int_equal(api_nroutes, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < api_nroutes; i++) {
		const struct http_route *r = &api_routes[i];

		for (k = 0, found = 0; k < sizeof(want) / sizeof(want[0]); k++) {
			if (strcmp(want[k].pattern, r->pattern) != 0 ||
			    (want[k].method == NULL) != (r->method == NULL) ||
			    (r->method && strcmp(want[k].method, r->method) != 0))
				continue;
			found = 1;
			if (principal_route_access(r) != want[k].access)
				fail_msg("%s %s: access %s", r->method ? r->method : "*",
					 r->pattern, principal_access_name(principal_route_access(r)));
		}
		if (!found)
			fail_msg("route %s %s has no expected access here", r->method, r->pattern);
	}
	/* A route that says nothing, or something unknown, is for admins. */
	{
		struct http_route none = {"GET", "/x", NULL, HTTP_ROUTE_STREAM_BODY, 0};
		struct http_route odd = {"GET", "/x", NULL, HTTP_ROUTE_HOOK(200), 0};

		assert_int_equal(principal_route_access(&none), PRINCIPAL_ACCESS_ADMIN);
		assert_int_equal(principal_route_access(&odd), PRINCIPAL_ACCESS_ADMIN);
	}
}

/* ---- principals ---- */

#define HASH_A "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define HASH_B "b1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

static void test_principal_of_token(void **state)
{
	struct store_api_token_info t = {.id = 7, .name = "ci-bot", .role = "viewer"};
	struct principal p, q;
	char hash[65];

	(void)state;
	principal_from_api_token(&p, &t, HASH_A, 0);
	assert_int_equal(p.kind, PRINCIPAL_API_TOKEN);
	assert_int_equal(p.role, PRINCIPAL_ROLE_VIEWER);
	assert_string_equal(p.id, "token:a1b2c3d4e5f6");
	assert_string_equal(p.name, "api-token:ci-bot");
	assert_false(p.has_seal);
	snprintf(t.role, sizeof(t.role), "%s", "superuser");
	principal_from_api_token(&p, &t, HASH_A, 1);
	assert_int_equal(p.kind, PRINCIPAL_ADMIN_TOKEN);
	assert_int_equal(p.role, PRINCIPAL_ROLE_NONE); /* an unknown role gives nothing */
	assert_string_equal(p.name, "admin-token:ci-bot");
	principal_from_cluster_cert(&p, HASH_B);
	assert_int_equal(p.kind, PRINCIPAL_CLUSTER_CERT);
	assert_int_equal(p.role, PRINCIPAL_ROLE_NONE);
	assert_string_equal(p.id, "cluster:b1b2c3d4e5f6");

	/* The seal: the same secret gives the same, another another, and it is not the hash. */
	assert_int_equal(principal_seal(&p, LIT("lxcm_secret")), 0);
	assert_true(p.has_seal);
	assert_int_equal(principal_seal(&q, LIT("lxcm_secret")), 0);
	assert_memory_equal(p.seal, q.seal, PRINCIPAL_SEAL_LEN);
	assert_int_equal(principal_seal(&q, LIT("lxcm_secreT")), 0);
	assert_memory_not_equal(p.seal, q.seal, PRINCIPAL_SEAL_LEN);
	secret_sha256_hex("lxcm_secret", 11, hash);
	{
		char seal_hex[65];
		size_t i;

		for (i = 0; i < PRINCIPAL_SEAL_LEN; i++)
			snprintf(seal_hex + 2 * i, 3, "%02x", p.seal[i]);
		assert_string_not_equal(seal_hex, hash);
	}
}

static void test_attach_once(void **state)
{
	struct http_request req;
	struct principal p = {.kind = PRINCIPAL_API_TOKEN, .role = PRINCIPAL_ROLE_OPERATOR};

	(void)state;
	memset(&req, 0, sizeof(req));
	assert_null(principal_of(&req));
	assert_int_equal(principal_attach(&req, &p), 0);
	assert_non_null(principal_of(&req));
	assert_int_equal(principal_of(&req)->role, PRINCIPAL_ROLE_OPERATOR);
	assert_int_equal(req.principal_len, sizeof(struct principal));
	p.role = PRINCIPAL_ROLE_ADMIN;
	assert_int_equal(principal_attach(&req, &p), -EALREADY);
	assert_int_equal(principal_of(&req)->role, PRINCIPAL_ROLE_OPERATOR);
	free(req.principal);
}

/* ---- the cache ---- */

static void make_principal(struct principal *p, const char *name, enum principal_role role)
{
	memset(p, 0, sizeof(*p));
	p->kind = PRINCIPAL_API_TOKEN;
	p->role = role;
	snprintf(p->name, sizeof(p->name), "api-token:%s", name);
	memset(p->seal, 0x5a, sizeof(p->seal));
	p->has_seal = 1;
}

static void test_cache_expiry(void **state)
{
	struct principal_cache *c = principal_cache_new(5000);
	struct principal p, got;
	uint64_t gen;

	(void)state;
	assert_non_null(c);
	assert_int_equal(principal_cache_get(c, HASH_A, 1000, &got), 0);
	make_principal(&p, "ci", PRINCIPAL_ROLE_VIEWER);
	gen = principal_cache_generation(c);
	principal_cache_put(c, HASH_A, 1000, &p, gen);
	assert_int_equal(principal_cache_get(c, HASH_A, 1000, &got), 1);
	assert_string_equal(got.name, "api-token:ci");
	assert_int_equal(got.role, PRINCIPAL_ROLE_VIEWER);
	assert_false(got.has_seal); /* the cache keeps no seal */
	assert_int_equal(got.seal[0], 0);
	assert_int_equal(principal_cache_get(c, HASH_A, 5999, &got), 1);
	assert_int_equal(principal_cache_get(c, HASH_A, 6000, &got), 0); /* expired */
	assert_int_equal(principal_cache_get(c, HASH_A, 1000, &got), 0); /* and gone */
	/* A negative entry: known to be no token, for the same time. */
	principal_cache_put(c, HASH_B, 1000, NULL, gen);
	assert_int_equal(principal_cache_get(c, HASH_B, 2000, &got), 1);
	assert_int_equal(got.kind, PRINCIPAL_NONE);
	assert_int_equal(principal_cache_get(c, HASH_B, 6001, &got), 0);
	/* A newer answer replaces the old one. */
	principal_cache_put(c, HASH_A, 7000, &p, gen);
	make_principal(&p, "ci", PRINCIPAL_ROLE_ADMIN);
	principal_cache_put(c, HASH_A, 7000, &p, gen);
	assert_int_equal(principal_cache_get(c, HASH_A, 7001, &got), 1);
	assert_int_equal(got.role, PRINCIPAL_ROLE_ADMIN);
	principal_cache_free(c);
	principal_cache_free(NULL);
}

static void test_cache_forget(void **state)
{
	struct principal_cache *c = principal_cache_new(5000);
	struct principal p, got;
	uint64_t gen, before;

	(void)state;
	make_principal(&p, "ci", PRINCIPAL_ROLE_OPERATOR);
	gen = principal_cache_generation(c);
	principal_cache_put(c, HASH_A, 0, &p, gen);
	principal_cache_put(c, HASH_B, 0, &p, gen);
	principal_cache_forget(c, HASH_A);
	assert_int_equal(principal_cache_get(c, HASH_A, 1, &got), 0);
	assert_int_equal(principal_cache_get(c, HASH_B, 1, &got), 1);
	/* A lookup that began before the forget may have read the revoked row: not kept. */
	principal_cache_put(c, HASH_A, 2, &p, gen);
	assert_int_equal(principal_cache_get(c, HASH_A, 3, &got), 0);
	/* One that began after it is. */
	gen = principal_cache_generation(c);
	principal_cache_put(c, HASH_A, 2, &p, gen);
	assert_int_equal(principal_cache_get(c, HASH_A, 3, &got), 1);
	/* A flush drops everything and moves the generation on too. */
	before = principal_cache_generation(c);
	principal_cache_flush(c);
	assert_true(principal_cache_generation(c) != before);
	assert_int_equal(principal_cache_get(c, HASH_A, 3, &got), 0);
	assert_int_equal(principal_cache_get(c, HASH_B, 3, &got), 0);
	principal_cache_put(c, HASH_B, 4, NULL, before);
	assert_int_equal(principal_cache_get(c, HASH_B, 5, &got), 0);
	principal_cache_free(c);
}

/* Bounded: hashes of one set evict the soonest to expire; other sets are untouched. */
static void test_cache_bounds(void **state)
{
	struct principal_cache *c = principal_cache_new(5000);
	struct principal p, got;
	char hash[65];
	uint64_t gen = principal_cache_generation(c);
	size_t i, hits = 0;

	(void)state;
	make_principal(&p, "x", PRINCIPAL_ROLE_VIEWER);
	principal_cache_put(c, HASH_B, 0, &p, gen); /* another set */
	/* PRINCIPAL_CACHE_WAYS + 2 hashes of the set "a1", put at times 0, 1, 2, ... */
	for (i = 0; i < PRINCIPAL_CACHE_WAYS + 2; i++) {
		snprintf(hash, sizeof(hash), "a1%062zx", i);
		principal_cache_put(c, hash, i, &p, gen);
	}
	for (i = 0; i < PRINCIPAL_CACHE_WAYS + 2; i++) {
		snprintf(hash, sizeof(hash), "a1%062zx", i);
		hits += (size_t)principal_cache_get(c, hash, 10, &got);
		if (i >= 2)
			assert_int_equal(principal_cache_get(c, hash, 10, &got), 1);
	}
	assert_int_equal(hits, PRINCIPAL_CACHE_WAYS);
	assert_int_equal(principal_cache_get(c, HASH_B, 10, &got), 1);
	/* Many distinct hashes fit up to the cache's size, whatever they are. */
	for (i = 0; i < 100000; i++) {
		secret_sha256_hex(&i, sizeof(i), hash);
		principal_cache_put(c, hash, 100, NULL, gen);
	}
	for (i = 0, hits = 0; i < 100000; i++) {
		secret_sha256_hex(&i, sizeof(i), hash);
		hits += (size_t)principal_cache_get(c, hash, 101, &got);
	}
	assert_true(hits <= PRINCIPAL_CACHE_SETS * PRINCIPAL_CACHE_WAYS);
	assert_true(hits >= PRINCIPAL_CACHE_SETS * PRINCIPAL_CACHE_WAYS / 2);
	principal_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_access_table),
		cmocka_unit_test(test_api_route_access),
		cmocka_unit_test(test_principal_of_token),
		cmocka_unit_test(test_attach_once),
		cmocka_unit_test(test_cache_expiry),
		cmocka_unit_test(test_cache_forget),
		cmocka_unit_test(test_cache_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
