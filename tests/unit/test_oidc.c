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

#include "common/duration.h"
#include "server/oidc_config.h"

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
	assert_int_equal(duration_parse(LIT("0s"), &s), 0);
	assert_int_equal(s, 0);
	s = 42;
	static const char *const bad[] = {"", "s", "10", "10x", "-5m", "+5m", "1.5h", " 5m",
					  "5m ", "5mm", "5 m", "1h30m", "99999999999d", "36501d"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(duration_parse(slice_cstr(bad[i]), &s), -EINVAL);
		assert_int_equal(s, 42);
	}
	assert_int_equal(duration_parse(LIT("36500d"), &s), 0);
	assert_int_equal(s, DURATION_MAX_S);
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
	assert_string_equal(t, "7d");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration_parse),   cmocka_unit_test(test_duration_format),
	    cmocka_unit_test(test_url_parse),	     cmocka_unit_test(test_issuer_check),
	    cmocka_unit_test(test_rolemap),	     cmocka_unit_test(test_next_is_safe),
	    cmocka_unit_test(test_redirect_and_origin), cmocka_unit_test(test_config_flags),
	    cmocka_unit_test(test_secret_file_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
