/*
 * test_cli_util.c - unit tests for the CLI's pure helpers (src/cli/util.c)
 * and its known_servers file (src/cli/known_servers.c). The CLI's objects
 * are not in a library, so the sources are included here (h2o t/00unit).
 */
#include <errno.h>
#include <limits.h>
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

#include "../../src/cli/known_servers.c"
#include "../../src/cli/util.c"

#define FP_A "d46ad0c3ac987f20c848fa040e2fb93e06123676801f29e4daef0e54e0699d8a"
#define FP_B "ebaf4f456fa363a6b60467bae62164f3e49b994914a98ee1d496d5d07da3ee7d"

static void test_duration(void **state)
{
	int64_t s;

	(void)state;
	assert_int_equal(util_parse_duration("90s", &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(util_parse_duration("30m", &s), 0);
	assert_int_equal(s, 1800);
	assert_int_equal(util_parse_duration("2h", &s), 0);
	assert_int_equal(s, 7200);
	assert_int_equal(util_parse_duration("7d", &s), 0);
	assert_int_equal(s, 7 * 86400);
	assert_int_equal(util_parse_duration("1w", &s), 0);
	assert_int_equal(s, 7 * 86400);
	assert_int_equal(util_parse_duration("1h30m", &s), 0);
	assert_int_equal(s, 5400);
	assert_int_equal(util_parse_duration("1d2h3m4s", &s), 0);
	assert_int_equal(s, 86400 + 7200 + 180 + 4);

	assert_int_equal(util_parse_duration("", &s), -EINVAL);
	assert_int_equal(util_parse_duration("2", &s), -EINVAL);
	assert_int_equal(util_parse_duration("h", &s), -EINVAL);
	assert_int_equal(util_parse_duration("0s", &s), -EINVAL);
	assert_int_equal(util_parse_duration("-2h", &s), -EINVAL);
	assert_int_equal(util_parse_duration("2 h", &s), -EINVAL);
	assert_int_equal(util_parse_duration("2H", &s), -EINVAL);
	assert_int_equal(util_parse_duration("2hx", &s), -EINVAL);
	assert_int_equal(util_parse_duration("1.5h", &s), -EINVAL);
	assert_int_equal(util_parse_duration("99999999999999999999d", &s), -EINVAL);
	assert_int_equal(util_parse_duration("36000d", &s), 0);
	assert_int_equal(util_parse_duration("36000d36000d", &s), -EINVAL);
	assert_int_equal(util_parse_duration(NULL, &s), -EINVAL);
}

static void test_expiry(void **state)
{
	const int64_t now = 1700000000; /* 2023-11-14T22:13:20Z */
	char out[TIME_RFC3339_LEN];

	(void)state;
	assert_int_equal(util_parse_expiry("2h", now, out, sizeof(out)), 0);
	assert_string_equal(out, "2023-11-15T00:13:20Z");
	assert_int_equal(util_parse_expiry("2030-01-31T12:00:00Z", now, out, sizeof(out)), 0);
	assert_string_equal(out, "2030-01-31T12:00:00Z");
	/* Offsets and fractions are normalised to UTC whole seconds. */
	assert_int_equal(util_parse_expiry("2030-01-31T12:00:00.5+02:00", now, out, sizeof(out)),
			 0);
	assert_string_equal(out, "2030-01-31T10:00:00Z");
	assert_int_equal(util_parse_expiry("2020-01-01T00:00:00Z", now, out, sizeof(out)), -EINVAL);
	assert_int_equal(util_parse_expiry("2023-11-14T22:13:20Z", now, out, sizeof(out)), -EINVAL);
	assert_int_equal(util_parse_expiry("tomorrow", now, out, sizeof(out)), -EINVAL);
	assert_int_equal(util_parse_expiry("", now, out, sizeof(out)), -EINVAL);
	assert_int_equal(util_parse_expiry("2h", now, out, 5), -EINVAL);
}

static void test_percent(void **state)
{
	int v;

	(void)state;
	assert_int_equal(util_parse_percent("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(util_parse_percent("100", &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(util_parse_percent("101", &v), -EINVAL);
	assert_int_equal(util_parse_percent("-1", &v), -EINVAL);
	assert_int_equal(util_parse_percent("50%", &v), -EINVAL);
	assert_int_equal(util_parse_percent(" 5", &v), -EINVAL);
	assert_int_equal(util_parse_percent("", &v), -EINVAL);
	assert_int_equal(util_parse_percent("1e2", &v), -EINVAL);
}

static void test_server(void **state)
{
	struct util_server s;

	(void)state;
	assert_int_equal(util_parse_server("https://127.0.0.1:8443", &s), 0);
	assert_string_equal(s.host, "127.0.0.1");
	assert_int_equal(s.port, 8443);
	assert_string_equal(s.key, "127.0.0.1:8443");

	assert_int_equal(util_parse_server("https://Manager.Example.COM/", &s), 0);
	assert_string_equal(s.host, "manager.example.com");
	assert_int_equal(s.port, 8443);
	assert_string_equal(s.key, "manager.example.com:8443");

	assert_int_equal(util_parse_server("lxcm.local:9443", &s), 0);
	assert_string_equal(s.key, "lxcm.local:9443");

	assert_int_equal(util_parse_server("https://[::1]:8444", &s), 0);
	assert_string_equal(s.host, "::1");
	assert_int_equal(s.port, 8444);
	assert_string_equal(s.key, "[::1]:8444");
	assert_int_equal(util_parse_server("[FD00::1]", &s), 0);
	assert_string_equal(s.key, "[fd00::1]:8443");

	assert_int_equal(util_parse_server("http://127.0.0.1:8443", &s), -EPROTONOSUPPORT);
	assert_int_equal(util_parse_server("ftp://x", &s), -EPROTONOSUPPORT);
	assert_int_equal(util_parse_server("https://", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://x:0", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://x:65536", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://x:", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://x:80a", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://x/1.0", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://user@x", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://x?y", &s), -EINVAL);
	assert_int_equal(util_parse_server("::1", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://[::1", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://[::1]x", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://[zz]:1", &s), -EINVAL);
	assert_int_equal(util_parse_server("https://a b", &s), -EINVAL);
	assert_int_equal(util_parse_server(NULL, &s), -EINVAL);
}

static void test_fingerprint(void **state)
{
	char out[65];

	(void)state;
	assert_int_equal(util_fingerprint_normalize(FP_A, out), 0);
	assert_string_equal(out, FP_A);
	assert_int_equal(
	    util_fingerprint_normalize("D4:6A:D0:C3:AC:98:7F:20:C8:48:FA:04:0E:2F:B9:3E:06:12:36:"
				       "76:80:1F:29:E4:DA:EF:0E:54:E0:69:9D:8A",
				       out),
	    0);
	assert_string_equal(out, FP_A);
	assert_int_equal(util_fingerprint_normalize(FP_A "00", out), -EINVAL);
	assert_int_equal(util_fingerprint_normalize("d46a", out), -EINVAL);
	assert_int_equal(util_fingerprint_normalize("", out), -EINVAL);
	assert_int_equal(
	    util_fingerprint_normalize(
		"g46ad0c3ac987f20c848fa040e2fb93e06123676801f29e4daef0e54e0699d8a", out),
	    -EINVAL);
	assert_int_equal(util_fingerprint_normalize(" " FP_A, out), -EINVAL);
}

static void test_urlencode(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(util_urlencode("alpha-1_b.c~", out, sizeof(out)), 0);
	assert_string_equal(out, "alpha-1_b.c~");
	assert_int_equal(util_urlencode("a b/c?d#e%f", out, sizeof(out)), 0);
	assert_string_equal(out, "a%20b%2Fc%3Fd%23e%25f");
	assert_int_equal(util_urlencode("\xc3\xa9", out, sizeof(out)), 0);
	assert_string_equal(out, "%C3%A9");
	assert_int_equal(util_urlencode("...", out, sizeof(out)), 0);
	assert_string_equal(out, "...");
	assert_int_equal(util_urlencode("", out, sizeof(out)), -EINVAL);
	assert_int_equal(util_urlencode(".", out, sizeof(out)), -EINVAL);
	assert_int_equal(util_urlencode("..", out, sizeof(out)), -EINVAL);
	/* Exactly fitting, and one byte short. */
	assert_int_equal(util_urlencode("abc", out, 4), 0);
	assert_string_equal(out, "abc");
	assert_int_equal(util_urlencode("abc", out, 3), -ENOSPC);
	assert_int_equal(util_urlencode("a/", out, 5), 0);
	assert_int_equal(util_urlencode("a/", out, 4), -ENOSPC);
}

static void test_human_bytes(void **state)
{
	char out[16];

	(void)state;
	util_human_bytes(0, out, sizeof(out));
	assert_string_equal(out, "0B");
	util_human_bytes(1023, out, sizeof(out));
	assert_string_equal(out, "1023B");
	util_human_bytes(1024, out, sizeof(out));
	assert_string_equal(out, "1.0KiB");
	util_human_bytes(1536, out, sizeof(out));
	assert_string_equal(out, "1.5KiB");
	util_human_bytes(1288490188ULL, out, sizeof(out));
	assert_string_equal(out, "1.2GiB");
	util_human_bytes(8375186227ULL, out, sizeof(out));
	assert_string_equal(out, "7.8GiB");
	/* Just under 1 MiB must not read "1024.0KiB". */
	util_human_bytes(1024 * 1024 - 1, out, sizeof(out));
	assert_string_equal(out, "1.0MiB");
	util_human_bytes(UINT64_MAX, out, sizeof(out));
	assert_string_equal(out, "16.0EiB");
	util_human_bytes(1536, out, 4);
	assert_string_equal(out, "?");
}

static void test_reltime(void **state)
{
	const int64_t now = 1700000000;
	char out[24];

	(void)state;
	util_reltime(0, now, out, sizeof(out));
	assert_string_equal(out, "never");
	util_reltime(-62135596800LL, now, out, sizeof(out)); /* Go's zero time */
	assert_string_equal(out, "never");
	util_reltime(now, now, out, sizeof(out));
	assert_string_equal(out, "just now");
	util_reltime(now + 3, now, out, sizeof(out));
	assert_string_equal(out, "just now");
	util_reltime(now - 12, now, out, sizeof(out));
	assert_string_equal(out, "12s ago");
	util_reltime(now - 59, now, out, sizeof(out));
	assert_string_equal(out, "59s ago");
	util_reltime(now - 60, now, out, sizeof(out));
	assert_string_equal(out, "1m ago");
	util_reltime(now - 3599, now, out, sizeof(out));
	assert_string_equal(out, "59m ago");
	util_reltime(now - 3 * 3600, now, out, sizeof(out));
	assert_string_equal(out, "3h ago");
	util_reltime(now - 2 * 86400 - 5, now, out, sizeof(out));
	assert_string_equal(out, "2d ago");
	util_reltime(now + 23 * 3600 + 30, now, out, sizeof(out));
	assert_string_equal(out, "in 23h");
	util_reltime(now + 90, now, out, sizeof(out));
	assert_string_equal(out, "in 1m");
}

static void test_sanitize(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(util_sanitize("plain", out, sizeof(out)), 5);
	assert_string_equal(out, "plain");
	assert_int_equal(util_sanitize("a\x1b[31mb\n", out, sizeof(out)), 8);
	assert_string_equal(out, "a?[31mb?");
	/* UTF-8 kept; C1 CSI (U+009B), DEL and invalid bytes replaced. */
	assert_int_equal(util_sanitize("caf\xc3\xa9", out, sizeof(out)), 4);
	assert_string_equal(out, "caf\xc3\xa9");
	assert_int_equal(util_sanitize("\xc2\x9b"
				       "2J\x7f",
				       out, sizeof(out)),
			 4);
	assert_string_equal(out, "?2J?");
	assert_int_equal(util_sanitize("\xff\xc3", out, sizeof(out)), 2);
	assert_string_equal(out, "??");
	assert_int_equal(util_sanitize("\xc0\xaf", out, sizeof(out)), 2); /* overlong */
	assert_string_equal(out, "??");
	assert_int_equal(util_sanitize("\xed\xa0\x80", out, sizeof(out)), 3); /* surrogate */
	/* Cut on a character boundary. */
	assert_int_equal(util_sanitize("ab\xc3\xa9", out, 4), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(util_sanitize(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(util_display_width("caf\xc3\xa9\x01"), 5);
	assert_int_equal(util_display_width(NULL), 0);
}

static void test_json_readers(void **state)
{
	json_t *o = json_pack("{s:s, s:i, s:f, s:s, s:i, s:n, s:s, s:s}", "s", "x", "i", 42, "r",
			      7.0, "d", "123", "neg", -1, "null", "t", "2023-11-14T22:13:20Z",
			      "zero", "0001-01-01T00:00:00Z");
	uint64_t v;

	(void)state;
	assert_non_null(o);
	assert_string_equal(util_json_str(o, "s"), "x");
	assert_null(util_json_str(o, "i"));
	assert_null(util_json_str(o, "missing"));
	assert_null(util_json_str(NULL, "s"));
	assert_int_equal(util_json_u64(o, "i", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(util_json_u64(o, "r", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(util_json_u64(o, "d", &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(util_json_u64(o, "neg", &v), -1);
	assert_int_equal(util_json_u64(o, "null", &v), -1);
	assert_int_equal(util_json_u64(o, "s", &v), -1);
	assert_int_equal(util_json_time(o, "t"), 1700000000);
	assert_true(util_json_time(o, "zero") <= 0);
	assert_int_equal(util_json_time(o, "s"), 0);
	assert_int_equal(util_json_time(o, "missing"), 0);
	json_decref(o);
}

static void test_known_find(void **state)
{
	static const char text[] =
	    "# comment\n"
	    "\n"
	    "   \t\n"
	    "bad line without fingerprint\n"
	    "10.0.0.1:8443 nothex\n"
	    "127.0.0.1:8443 " FP_A "\n"
	    "127.0.0.1:8443 " FP_B "\n"
	    "[::1]:8443\tD4:6A:D0:C3:AC:98:7F:20:C8:48:FA:04:0E:2F:B9:3E:06:12:36:76"
	    ":80:1F:29:E4:DA:EF:0E:54:E0:69:9D:8A  \r\n"
	    "x:1 " FP_A " trailing\n"
	    "last:9 " FP_B;
	char fp[65];

	(void)state;
	assert_int_equal(known_servers_find(text, strlen(text), "127.0.0.1:8443", fp), 1);
	assert_string_equal(fp, FP_A); /* the first line wins */
	assert_int_equal(known_servers_find(text, strlen(text), "[::1]:8443", fp), 1);
	assert_string_equal(fp, FP_A);
	assert_int_equal(known_servers_find(text, strlen(text), "last:9", fp), 1);
	assert_string_equal(fp, FP_B);
	assert_int_equal(known_servers_find(text, strlen(text), "10.0.0.1:8443", fp), 0);
	assert_int_equal(known_servers_find(text, strlen(text), "x:1", fp), 0);
	assert_int_equal(known_servers_find(text, strlen(text), "127.0.0.1:844", fp), 0);
	assert_int_equal(known_servers_find(text, strlen(text), "# comment", fp), 0);
	/* Not NUL-terminated: the length bounds the scan. */
	assert_int_equal(known_servers_find(text, strlen(text) - 3, "last:9", fp), 0);
	assert_int_equal(known_servers_find("", 0, "a:1", fp), 0);
}

static void test_known_file(void **state)
{
	char dir[] = "/tmp/test_cli_util.XXXXXX", path[PATH_MAX], fp[65], *text;
	mode_t um = umask(0);
	struct stat st;
	size_t len;
	int n;

	(void)state;
	umask(um);
	assert_non_null(mkdtemp(dir));
	n = snprintf(path, sizeof(path), "%s/cfg/lxcm/known_servers", dir);
	assert_true(n > 0 && (size_t)n < sizeof(path));

	assert_int_equal(known_servers_lookup(path, "a:1", fp), 0); /* no file yet */
	assert_int_equal(known_servers_add(path, "a:1", FP_A), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	n = snprintf(path, sizeof(path), "%s/cfg/lxcm", dir);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700 & ~um);
	n = snprintf(path, sizeof(path), "%s/cfg/lxcm/known_servers", dir);
	assert_true(n > 0 && (size_t)n < sizeof(path));

	assert_int_equal(known_servers_add(path, "[::1]:2", FP_B), 0);
	assert_int_equal(known_servers_lookup(path, "a:1", fp), 1);
	assert_string_equal(fp, FP_A);
	assert_int_equal(known_servers_lookup(path, "[::1]:2", fp), 1);
	assert_string_equal(fp, FP_B);
	/* Adding a key again replaces its line and keeps the others. */
	assert_int_equal(known_servers_add(path, "a:1", FP_B), 0);
	assert_int_equal(known_servers_lookup(path, "a:1", fp), 1);
	assert_string_equal(fp, FP_B);
	assert_int_equal(fs_read_file(path, KNOWN_SERVERS_MAX, &text, &len), 0);
	assert_string_equal(text, "[::1]:2 " FP_B "\na:1 " FP_B "\n");
	free(text);

	unlink(path);
	n = snprintf(path, sizeof(path), "%s/cfg/lxcm", dir);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	rmdir(path);
	n = snprintf(path, sizeof(path), "%s/cfg", dir);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	rmdir(path);
	rmdir(dir);
}

static void test_known_path(void **state)
{
	char out[PATH_MAX];
	char *old_xdg = getenv("XDG_CONFIG_HOME") ? strdup(getenv("XDG_CONFIG_HOME")) : NULL;
	char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

	(void)state;
	setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
	assert_int_equal(known_servers_path(out, sizeof(out)), 0);
	assert_string_equal(out, "/x/cfg/lxcm/known_servers");
	setenv("XDG_CONFIG_HOME", "relative", 1); /* invalid per the XDG spec */
	setenv("HOME", "/home/u", 1);
	assert_int_equal(known_servers_path(out, sizeof(out)), 0);
	assert_string_equal(out, "/home/u/.config/lxcm/known_servers");
	unsetenv("XDG_CONFIG_HOME");
	assert_int_equal(known_servers_path(out, sizeof(out)), 0);
	assert_string_equal(out, "/home/u/.config/lxcm/known_servers");
	assert_int_equal(known_servers_path(out, 10), -ENAMETOOLONG);

	if (old_xdg)
		setenv("XDG_CONFIG_HOME", old_xdg, 1);
	if (old_home)
		setenv("HOME", old_home, 1);
	else
		unsetenv("HOME");
	free(old_xdg);
	free(old_home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration),	cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_percent),	cmocka_unit_test(test_server),
	    cmocka_unit_test(test_fingerprint), cmocka_unit_test(test_urlencode),
	    cmocka_unit_test(test_human_bytes), cmocka_unit_test(test_reltime),
	    cmocka_unit_test(test_sanitize),	cmocka_unit_test(test_json_readers),
	    cmocka_unit_test(test_known_find),	cmocka_unit_test(test_known_file),
	    cmocka_unit_test(test_known_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
