/*
 * test_oidc.c - the pure parts of OIDC login: durations, the --oidc-*
 * flags and their checks, the role map, redirect targets after login.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/duration.h"
#include "common/seal.h"
#include "server/oidc.h"
#include "server/oidc_config.h"
#include "server/oidc_provider.h"

static void test_duration_parse(void **state)
{
	int64_t s = -1;

	(void)state;
	assert_int_equal(duration_parse(LIT("90s"), &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(duration_parse(LIT("15m"), &s), 0);
	assert_int_equal(s, 900);
	assert_int_equal(duration_parse(LIT("12h"), &s), 0);
	assert_int_equal(s, 43200);
	assert_int_equal(duration_parse(LIT("7d"), &s), 0);
	assert_int_equal(s, 604800);
	s = 42;
	/* "0s": a total of zero is no duration (common/duration.h). */
	static const char *const bad[] = {"0s", "", "s", "10", "10x", "-5m", "+5m", "1.5h", " 5m",
					  "5m ", "5mm", "5 m", "5H", "99999999999d", "36601d",
					  "36000d36000d"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(duration_parse(slice_cstr(bad[i]), &s), -EINVAL);
		assert_int_equal(s, 42);
	}
	assert_int_equal(duration_parse(LIT("36600d"), &s), 0);
	assert_int_equal(s, DURATION_MAX_S);
	assert_int_equal(duration_parse(LIT("1h30m"), &s), 0);
	assert_int_equal(s, 5400);
	assert_int_equal(duration_parse(LIT("2w"), &s), 0);
	assert_int_equal(s, 14 * 86400);
}

static void test_duration_format(void **state)
{
	char t[DURATION_TEXT_MAX];

	(void)state;
	assert_int_equal(duration_format(43200, t, sizeof(t)), 0);
	assert_string_equal(t, "12h");
	assert_int_equal(duration_format(90, t, sizeof(t)), 0);
	assert_string_equal(t, "90s");
	assert_int_equal(duration_format(604800, t, sizeof(t)), 0);
	assert_string_equal(t, "1w"); /* the largest unit that divides it */
	assert_int_equal(duration_format(0, t, sizeof(t)), 0);
	assert_string_equal(t, "0s");
	assert_int_equal(duration_format(604800, t, 2), -ENOSPC);
}

static void test_url_parse(void **state)
{
	struct oidc_url u;

	(void)state;
	assert_int_equal(oidc_url_parse("https://idp.example.com/realms/x", &u), 0);
	assert_true(u.tls);
	assert_string_equal(u.host, "idp.example.com");
	assert_int_equal(u.port, 443);
	assert_string_equal(u.target, "/realms/x");
	assert_int_equal(oidc_url_parse("http://127.0.0.1:8080", &u), 0);
	assert_false(u.tls);
	assert_int_equal(u.port, 8080);
	assert_string_equal(u.target, "/");
	assert_int_equal(oidc_url_parse("https://[::1]:9000/a?b=c", &u), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 9000);
	assert_string_equal(u.target, "/a?b=c");
	assert_int_equal(oidc_url_parse("ftp://x/", &u), -EINVAL);
	assert_int_equal(oidc_url_parse("https://user@x/", &u), -EINVAL);
	assert_int_equal(oidc_url_parse("https://x:0/", &u), -EINVAL);
	assert_int_equal(oidc_url_parse("https://x:99999/", &u), -EINVAL);
	assert_int_equal(oidc_url_parse("https:///", &u), -EINVAL);
	assert_int_equal(oidc_url_parse("https://x/a b", &u), -EINVAL);
	assert_int_equal(oidc_url_parse("https://x/#f", &u), -EINVAL);
}

static void test_issuer_check(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(oidc_issuer_check("https://idp.example.com", err, sizeof(err)), 0);
	assert_int_equal(oidc_issuer_check("http://127.0.0.1:9000", err, sizeof(err)), 0);
	assert_int_equal(oidc_issuer_check("http://localhost:9000/x", err, sizeof(err)), 0);
	assert_int_equal(oidc_issuer_check("http://[::1]:9000", err, sizeof(err)), 0);
	assert_int_equal(oidc_issuer_check("http://idp.example.com", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "plain http://"));
	assert_int_equal(oidc_issuer_check("http://10.0.0.1", err, sizeof(err)), -EINVAL);
	assert_int_equal(oidc_issuer_check("idp.example.com", err, sizeof(err)), -EINVAL);
}

static void test_rolemap(void **state)
{
	struct oidc_config c;
	json_t *g;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(oidc_rolemap_parse(&c, "admin=admins,root,operator=ops,viewer=staff"), 0);
	assert_int_equal(c.nmap, 4);
	assert_int_equal(c.map[1].role, PRINCIPAL_ROLE_ADMIN);
	assert_string_equal(c.map[1].group, "root");
	g = json_pack("[s,s]", "staff", "ops");
	assert_int_equal(oidc_rolemap_role(&c, g), PRINCIPAL_ROLE_OPERATOR);
	json_decref(g);
	g = json_pack("[s,s,i]", "nobody", "root", 3);
	assert_int_equal(oidc_rolemap_role(&c, g), PRINCIPAL_ROLE_ADMIN);
	json_decref(g);
	g = json_string("staff");
	assert_int_equal(oidc_rolemap_role(&c, g), PRINCIPAL_ROLE_VIEWER);
	json_decref(g);
	g = json_pack("[s]", "Staff"); /* exact, case-sensitive */
	assert_int_equal(oidc_rolemap_role(&c, g), PRINCIPAL_ROLE_NONE);
	json_decref(g);
	assert_int_equal(oidc_rolemap_role(&c, NULL), PRINCIPAL_ROLE_NONE);
	/* MicroCloud's cluster manager users. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(oidc_rolemap_parse(&c, "admin=admins"), 0);
	assert_int_equal(c.nmap, 1);
	static const char *const bad[] = {"", "admins", "root=x", "admin=", "admin=a,,b",
					  "viewer=a,"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&c, 0, sizeof(c));
		assert_int_equal(oidc_rolemap_parse(&c, bad[i]), -EINVAL);
	}
}

static void test_next_is_safe(void **state)
{
	(void)state;
	assert_true(oidc_next_is_safe(LIT("/")));
	assert_true(oidc_next_is_safe(LIT("/ui/instances?x=1")));
	static const char *const bad[] = {"", "//evil.example", "/\\evil.example",
					  "https://evil.example/", "evil", "/a\\b", "/a\r\nX: y",
					  "/a b", "\t/x", "javascript:alert(1)"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(oidc_next_is_safe(slice_cstr(bad[i])));
}

static void test_redirect_and_origin(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(oidc_redirect_uri("https://lxcm.example:8443/", out, sizeof(out)), 0);
	assert_string_equal(out, "https://lxcm.example:8443/oidc/callback");
	assert_int_equal(oidc_public_origin("https://lxcm.example:8443/base/", out, sizeof(out)), 0);
	assert_string_equal(out, "https://lxcm.example:8443");
	assert_int_equal(oidc_redirect_uri("https://x", out, 10), -ENAMETOOLONG);
}

static void test_config_flags(void **state)
{
	struct oidc_config c;
	char err[256];

	(void)state;
	memset(&c, 0, sizeof(c));
	oidc_config_defaults(&c);
	assert_string_equal(c.scopes, OIDC_DEFAULT_SCOPES);
	assert_int_equal(c.session_idle_s, 12 * 3600);
	assert_int_equal(oidc_config_finish(&c, err, sizeof(err)), 0); /* off */
	assert_int_equal(oidc_config_set(&c, "session-idle", "90s"), 0);
	assert_int_equal(c.session_idle_s, 90);
	assert_int_equal(oidc_config_set(&c, "session-idle", "12"), -EINVAL);
	assert_int_equal(oidc_config_set(&c, "session-max", "0s"), -EINVAL);
	assert_int_equal(oidc_config_set(&c, "oidc-nope", "x"), -ENOENT);
	assert_int_equal(oidc_config_set(&c, "oidc-client-id", "lxcm"), 0);
	assert_int_equal(oidc_config_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--oidc-issuer"));
	assert_int_equal(oidc_config_set(&c, "oidc-issuer", "http://idp.example.com"), 0);
	assert_int_equal(oidc_config_finish(&c, err, sizeof(err)), -EINVAL);
	assert_int_equal(oidc_config_set(&c, "oidc-issuer", "https://idp.example.com"), 0);
	assert_int_equal(oidc_config_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(oidc_config_set(&c, "session-max", "30s"), 0);
	assert_int_equal(oidc_config_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--session-idle"));
}

static void test_secret_file_mode(void **state)
{
	char dir[] = "/tmp/lxcm-oidc-XXXXXX", path[128], err[256], *secret = NULL;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secret", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("s3cret\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(oidc_secret_read(path, &secret, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "0600"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(oidc_secret_read(path, &secret, err, sizeof(err)), 0);
	assert_string_equal(secret, "s3cret");
	free(secret);
	unlink(path);
	assert_int_equal(oidc_secret_read(path, &secret, err, sizeof(err)), -ENOENT);
	rmdir(dir);
}

static void test_seal(void **state)
{
	uint8_t key[SEAL_KEY_LEN], other[SEAL_KEY_LEN];
	char *text = NULL, *plain = NULL, *tampered;
	size_t len = 0;

	(void)state;
	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	assert_int_equal(seal_encrypt(key, LIT("aad"), LIT("secret tokens"), &text), 0);
	assert_null(strstr(text, "secret"));
	assert_int_equal(seal_decrypt(key, LIT("aad"), slice_cstr(text), &plain, &len), 0);
	assert_int_equal(len, 13);
	assert_string_equal(plain, "secret tokens");
	free(plain);
	assert_int_equal(seal_decrypt(other, LIT("aad"), slice_cstr(text), &plain, &len), -EINVAL);
	assert_int_equal(seal_decrypt(key, LIT("aae"), slice_cstr(text), &plain, &len), -EINVAL);
	tampered = strdup(text);
	tampered[20] = tampered[20] == 'A' ? 'B' : 'A';
	assert_int_equal(seal_decrypt(key, LIT("aad"), slice_cstr(tampered), &plain, &len), -EINVAL);
	assert_int_equal(seal_decrypt(key, LIT("aad"), LIT("short"), &plain, &len), -EINVAL);
	assert_int_equal(seal_decrypt(key, LIT("aad"), LIT("!!!!"), &plain, &len), -EINVAL);
	assert_null(plain);
	free(tampered);
	free(text);
	/* Two seals of one text differ (random nonce). */
	char *a = NULL, *b = NULL;
	assert_int_equal(seal_encrypt(key, LIT(""), LIT("x"), &a), 0);
	assert_int_equal(seal_encrypt(key, LIT(""), LIT("x"), &b), 0);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
	/* HKDF: deterministic, and input-sensitive. */
	assert_int_equal(seal_hkdf(LIT("cookie"), "info", key), 0);
	assert_int_equal(seal_hkdf(LIT("cookie"), "info", other), 0);
	assert_memory_equal(key, other, SEAL_KEY_LEN);
	assert_int_equal(seal_hkdf(LIT("cookie2"), "info", other), 0);
	assert_memory_not_equal(key, other, SEAL_KEY_LEN);
}

static void test_form_and_query(void **state)
{
	struct buf b;
	char out[64];

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(oidc_form_add(&b, "redirect_uri", "https://x:1/oidc/callback"), 0);
	assert_int_equal(oidc_form_add(&b, "scope", "openid email"), 0);
	assert_string_equal(b.data, "redirect_uri=https%3A%2F%2Fx%3A1%2Foidc%2Fcallback&scope=openid%20email");
	buf_free(&b);
	assert_int_equal(oidc_query_get(LIT("a=1&next=%2Fui%3Fx%3D1&b=2"), "next", out, sizeof(out)), 0);
	assert_string_equal(out, "/ui?x=1");
	assert_int_equal(oidc_query_get(LIT("nextx=1&next=a+b"), "next", out, sizeof(out)), 0);
	assert_string_equal(out, "a b");
	assert_int_equal(oidc_query_get(LIT("a=1"), "next", out, sizeof(out)), -ENOENT);
	assert_int_equal(oidc_query_get(SLICE_NULL, "next", out, sizeof(out)), -ENOENT);
	assert_int_equal(oidc_query_get(LIT("next=%0"), "next", out, sizeof(out)), -EINVAL);
	assert_int_equal(oidc_query_get(LIT("next=%00"), "next", out, sizeof(out)), -EINVAL);
	assert_int_equal(oidc_query_get(LIT("next=%zz"), "next", out, sizeof(out)), -EINVAL);
	assert_int_equal(oidc_query_get(LIT("next=123456"), "next", out, 4), -EINVAL);
}

static void test_discovery_parse(void **state)
{
	struct oidc_provider_meta m;
	char err[256];
	static const char good[] =
	    "{\"issuer\":\"https://idp.example.com\",\"authorization_endpoint\":"
	    "\"https://idp.example.com/auth\",\"token_endpoint\":\"https://idp.example.com/token\","
	    "\"jwks_uri\":\"https://idp.example.com/jwks\",\"userinfo_endpoint\":"
	    "\"https://idp.example.com/me\",\"authorization_response_iss_parameter_supported\":true}";

	(void)state;
	assert_int_equal(oidc_provider_meta_parse(LIT(good), "https://idp.example.com", &m, err,
						  sizeof(err)), 0);
	assert_string_equal(m.token_endpoint, "https://idp.example.com/token");
	assert_string_equal(m.end_session_endpoint, "");
	assert_true(m.iss_parameter_supported);
	assert_int_equal(oidc_provider_meta_parse(LIT(good), "https://other.example.com", &m, err,
						  sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "issuer"));
	assert_int_equal(oidc_provider_meta_parse(
			     LIT("{\"issuer\":\"https://i\",\"authorization_endpoint\":\"https://i/a\","
				 "\"token_endpoint\":\"http://evil.example/t\",\"jwks_uri\":\"https://i/j\"}"),
			     "https://i", &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "token_endpoint"));
	assert_int_equal(oidc_provider_meta_parse(LIT("{\"issuer\":\"https://i\"}"), "https://i", &m,
						  err, sizeof(err)), -EINVAL);
}

static void test_tokens(void **state)
{
	struct oidc_tokens t, back;
	char err[128], *sealed = NULL;
	static const char cookie[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

	(void)state;
	assert_int_equal(oidc_tokens_parse(LIT("{\"access_token\":\"at\",\"token_type\":\"Bearer\","
					       "\"expires_in\":300,\"refresh_token\":\"rt\","
					       "\"id_token\":\"x.y.z\"}"),
					   1000, &t, err, sizeof(err)), 0);
	assert_int_equal(t.access_expires_at, 1300);
	assert_int_equal(oidc_tokens_seal(LIT(cookie), "sid", &t, &sealed), 0);
	assert_null(strstr(sealed, "rt"));
	assert_int_equal(oidc_tokens_open(LIT(cookie), "sid", sealed, &back), 0);
	assert_string_equal(back.refresh_token, "rt");
	assert_string_equal(back.id_token, "x.y.z");
	assert_int_equal(back.access_expires_at, 1300);
	oidc_tokens_clear(&back);
	/* Another cookie or another session id opens nothing. */
	assert_int_equal(oidc_tokens_open(LIT("BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "sid",
					  sealed, &back), -EINVAL);
	assert_int_equal(oidc_tokens_open(LIT(cookie), "sid2", sealed, &back), -EINVAL);
	free(sealed);
	oidc_tokens_clear(&t);
	assert_int_equal(oidc_tokens_parse(LIT("{\"token_type\":\"Bearer\"}"), 0, &t, err,
					   sizeof(err)), -EINVAL);
	assert_int_equal(oidc_tokens_parse(LIT("{\"access_token\":\"a\",\"token_type\":\"MAC\"}"), 0,
					   &t, err, sizeof(err)), -EINVAL);
	assert_int_equal(oidc_tokens_parse(LIT("[]"), 0, &t, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration_parse),   cmocka_unit_test(test_duration_format),
	    cmocka_unit_test(test_url_parse),	     cmocka_unit_test(test_issuer_check),
	    cmocka_unit_test(test_rolemap),	     cmocka_unit_test(test_next_is_safe),
	    cmocka_unit_test(test_redirect_and_origin), cmocka_unit_test(test_config_flags),
	    cmocka_unit_test(test_secret_file_mode),
	    cmocka_unit_test(test_seal),
	    cmocka_unit_test(test_form_and_query),
	    cmocka_unit_test(test_discovery_parse),
	    cmocka_unit_test(test_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
