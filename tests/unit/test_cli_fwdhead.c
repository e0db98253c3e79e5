/*
 * test_cli_fwdhead.c - unit tests for the header, target and address rules
 * of `lxcm proxy` (src/cli/fwdhead.c, included: the CLI's objects are not
 * in a library).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/cli/fwdhead.c"

#define H(n, v) ((struct http_header){LIT(n), LIT(v)})

static int has(const struct http_header *h, int n, const char *name, const char *value)
{
	int i;

	for (i = 0; i < n; i++)
		if (slice_eq_nocase(h[i].name, slice_cstr(name)) &&
		    (value == NULL || slice_eq(h[i].value, slice_cstr(value))))
			return 1;
	return 0;
}

static void test_hop_by_hop(void **state)
{
	(void)state;
	assert_true(fwdhead_is_hop_by_hop(LIT("connection")));
	assert_true(fwdhead_is_hop_by_hop(LIT("Keep-Alive")));
	assert_true(fwdhead_is_hop_by_hop(LIT("TRANSFER-ENCODING")));
	assert_true(fwdhead_is_hop_by_hop(LIT("Upgrade")));
	assert_true(fwdhead_is_hop_by_hop(LIT("te")));
	assert_true(fwdhead_is_hop_by_hop(LIT("Trailer")));
	assert_true(fwdhead_is_hop_by_hop(LIT("Proxy-Authorization")));
	assert_true(fwdhead_is_hop_by_hop(LIT("proxy-connection")));
	assert_false(fwdhead_is_hop_by_hop(LIT("Proxy")));
	assert_false(fwdhead_is_hop_by_hop(LIT("Content-Type")));
	assert_false(fwdhead_is_hop_by_hop(LIT("Tee")));
	assert_false(fwdhead_is_hop_by_hop(LIT("")));
}

static void test_request_headers(void **state)
{
	const struct http_header in[] = {
	    H("Host", "127.0.0.1:9000"),
	    H("Authorization", "Bearer theirs"),
	    H("Content-Length", "5"),
	    H("Transfer-Encoding", "chunked"),
	    H("Connection", "keep-alive , X-Private,,x-other"),
	    H("X-Private", "1"),
	    H("X-Other", "2"),
	    H("Expect", "100-continue"),
	    H("Accept", "application/json"),
	    H("Cookie", "a=b"),
	    H("Sec-WebSocket-Key", "k"),
	};
	struct http_header out[16];
	int n;

	(void)state;
	n = fwdhead_request(in, sizeof(in) / sizeof(in[0]), out, 16);
	assert_int_equal(n, 3);
	assert_true(has(out, n, "Accept", "application/json"));
	assert_true(has(out, n, "Cookie", "a=b"));
	assert_true(has(out, n, "Sec-WebSocket-Key", "k"));
	assert_int_equal(fwdhead_request(in, sizeof(in) / sizeof(in[0]), out, 2), -E2BIG);
	assert_int_equal(fwdhead_request(in, 0, out, 0), 0);
}

static void test_response_headers(void **state)
{
	const struct http_header in[] = {
	    H("Content-Type", "application/json"), H("Content-Length", "12"),
	    H("Connection", "close, X-Gone"),	   H("X-Gone", "1"),
	    H("Keep-Alive", "timeout=5"),	   H("Set-Cookie", "s=1"),
	};
	const struct http_header up[] = {
	    H("Upgrade", "websocket"),
	    H("Connection", "Upgrade"),
	    H("Sec-WebSocket-Accept", "abc="),
	};
	struct http_header out[16];
	int n;

	(void)state;
	n = fwdhead_response(in, 6, 200, out, 16);
	assert_int_equal(n, 2);
	assert_true(has(out, n, "Content-Type", NULL));
	assert_true(has(out, n, "Set-Cookie", "s=1"));
	n = fwdhead_response(up, 3, 101, out, 16);
	assert_int_equal(n, 3);
	assert_true(has(out, n, "Upgrade", "websocket"));
	assert_true(has(out, n, "Connection", "Upgrade"));
	assert_true(has(out, n, "Sec-WebSocket-Accept", "abc="));
	/* Not a 101: Upgrade is hop-by-hop like the rest. */
	n = fwdhead_response(up, 3, 426, out, 16);
	assert_int_equal(n, 1);
	assert_int_equal(fwdhead_response(up, 3, 101, out, 2), -E2BIG);
}

static void test_websocket_token(void **state)
{
	(void)state;
	assert_true(fwdhead_is_websocket(LIT("websocket")));
	assert_true(fwdhead_is_websocket(LIT("WebSocket")));
	assert_true(fwdhead_is_websocket(LIT("h2c, websocket")));
	assert_false(fwdhead_is_websocket(LIT("h2c")));
	assert_false(fwdhead_is_websocket(LIT("websockets")));
	assert_false(fwdhead_is_websocket(SLICE_NULL));
}

#define PFX "/1.0/remote-cluster/c1/tunnel"

static void test_target(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(
	    fwdhead_target(PFX, LIT("/1.0/instances"), LIT("recursion=1"), 1, out, sizeof(out)), 0);
	assert_string_equal(out, PFX "/1.0/instances?recursion=1");
	assert_int_equal(fwdhead_target(PFX, LIT("/"), SLICE_NULL, 0, out, sizeof(out)), 0);
	assert_string_equal(out, PFX "/");
	assert_int_equal(fwdhead_target(PFX, LIT("/x"), LIT(""), 1, out, sizeof(out)), 0);
	assert_string_equal(out, PFX "/x?");
	/* Encoded bytes other than dots and slashes are left alone. */
	assert_int_equal(fwdhead_target(PFX, LIT("/a%20b/%41"), SLICE_NULL, 0, out, sizeof(out)),
			 0);
	assert_string_equal(out, PFX "/a%20b/%41");
	/* "...", ".x" and "x." are names, not dot segments. */
	assert_int_equal(fwdhead_target(PFX, LIT("/.../.x/x./"), SLICE_NULL, 0, out, sizeof(out)),
			 0);
}

static void test_target_refused(void **state)
{
	static const char *const bad[] = {
	    "/..",	   "/../x",	"/a/../b", "/a/./b",	"/.",	       "/a/..",
	    "/a/%2e%2e/b", "/a/%2E./b", "/a/.%2e", "/a/..%2fb", "/a%2f..%2fb", "/a\\..\\b",
	    "/a/..%5cb",   "x/y",	"",	   "/a b",	"/a\tb",
	};
	char out[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    fwdhead_target(PFX, slice_cstr(bad[i]), SLICE_NULL, 0, out, sizeof(out)),
		    -EINVAL);
	assert_int_equal(fwdhead_target(PFX, LIT("/x"), LIT("a\r\nb"), 1, out, sizeof(out)),
			 -EINVAL);
	/* Exactly fitting, then one byte short. */
	assert_int_equal(fwdhead_target("/p", LIT("/ab"), LIT("q"), 1, out, 8), 0);
	assert_string_equal(out, "/p/ab?q");
	assert_int_equal(fwdhead_target("/p", LIT("/ab"), LIT("q"), 1, out, 7), -E2BIG);
}

static void test_location(void **state)
{
	struct slice v;

	(void)state;
	v = fwdhead_location(LIT(PFX "/1.0/operations/x"), "m.example:8443", PFX);
	assert_true(slice_eq(v, LIT("/1.0/operations/x")));
	v = fwdhead_location(LIT("https://M.example:8443" PFX "/1.0/operations/x?y=1"),
			     "m.example:8443", PFX);
	assert_true(slice_eq(v, LIT("/1.0/operations/x?y=1")));
	v = fwdhead_location(LIT(PFX), "m.example:8443", PFX);
	assert_true(slice_eq(v, LIT("/")));
	/* LXD's own paths, other hosts and look-alike prefixes stay as they are. */
	v = fwdhead_location(LIT("/1.0/operations/x"), "m.example:8443", PFX);
	assert_true(slice_eq(v, LIT("/1.0/operations/x")));
	v = fwdhead_location(LIT("https://other:8443" PFX "/x"), "m.example:8443", PFX);
	assert_true(slice_eq(v, LIT("https://other:8443" PFX "/x")));
	v = fwdhead_location(LIT(PFX "x/y"), "m.example:8443", PFX);
	assert_true(slice_eq(v, LIT(PFX "x/y")));
}

static void test_parse_listen(void **state)
{
	char host[64];
	int port;

	(void)state;
	assert_int_equal(fwdhead_parse_listen("8080", host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(fwdhead_parse_listen("127.0.0.1:0", host, &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(fwdhead_parse_listen("127.1.2.3:65535", host, &port), 0);
	assert_string_equal(host, "127.1.2.3");
	assert_int_equal(fwdhead_parse_listen("localhost:99", host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(fwdhead_parse_listen("[::1]:8080", host, &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(fwdhead_parse_listen("0.0.0.0:8080", host, &port), -EPERM);
	assert_int_equal(fwdhead_parse_listen("10.0.0.1:8080", host, &port), -EPERM);
	assert_int_equal(fwdhead_parse_listen("[::]:8080", host, &port), -EPERM);
	assert_int_equal(fwdhead_parse_listen("::1:8080", host, &port), -EINVAL);
	assert_int_equal(fwdhead_parse_listen("127.0.0.1:65536", host, &port), -EINVAL);
	assert_int_equal(fwdhead_parse_listen("127.0.0.1:-1", host, &port), -EINVAL);
	assert_int_equal(fwdhead_parse_listen("127.0.0.1:+1", host, &port), -EINVAL);
	assert_int_equal(fwdhead_parse_listen("127.0.0.1:", host, &port), -EINVAL);
	assert_int_equal(fwdhead_parse_listen(":80", host, &port), -EINVAL);
	assert_int_equal(fwdhead_parse_listen("example.com:80", host, &port), -EINVAL);
	assert_int_equal(fwdhead_parse_listen("", host, &port), -EINVAL);
	assert_int_equal(fwdhead_parse_listen("80x", host, &port), -EINVAL);
}

static void test_listen_unix(void **state)
{
	const char *path = NULL;
	char longest[FWDHEAD_MAX_UNIX_PATH + 7];

	(void)state;
	assert_int_equal(fwdhead_listen_unix("127.0.0.1:80", &path), 0);
	assert_int_equal(fwdhead_listen_unix("8080", &path), 0);
	assert_int_equal(fwdhead_listen_unix("unix:/run/user/0/lxcm.sock", &path), 1);
	assert_string_equal(path, "/run/user/0/lxcm.sock");
	assert_int_equal(fwdhead_listen_unix("unix:rel.sock", &path), 1);
	assert_string_equal(path, "rel.sock");
	assert_int_equal(fwdhead_listen_unix("unix:", &path), -EINVAL);
	memcpy(longest, "unix:", 5);
	memset(longest + 5, 'a', FWDHEAD_MAX_UNIX_PATH);
	longest[5 + FWDHEAD_MAX_UNIX_PATH] = '\0';
	assert_int_equal(fwdhead_listen_unix(longest, &path), 1);
	longest[5 + FWDHEAD_MAX_UNIX_PATH] = 'a';
	longest[6 + FWDHEAD_MAX_UNIX_PATH] = '\0';
	assert_int_equal(fwdhead_listen_unix(longest, &path), -ENAMETOOLONG);
}

static void test_host_ok(void **state)
{
	(void)state;
	assert_true(fwdhead_host_ok(LIT("127.0.0.1:8080"), "127.0.0.1", 8080));
	assert_true(fwdhead_host_ok(LIT("LOCALHOST:8080"), "127.0.0.1", 8080));
	assert_true(fwdhead_host_ok(LIT("127.0.0.1"), "127.0.0.1", 80));
	assert_false(fwdhead_host_ok(LIT("127.0.0.1"), "127.0.0.1", 8080));
	assert_false(fwdhead_host_ok(LIT("127.0.0.1:8081"), "127.0.0.1", 8080));
	assert_false(fwdhead_host_ok(LIT("evil.example:8080"), "127.0.0.1", 8080));
	assert_false(fwdhead_host_ok(LIT("127.0.0.1.evil:8080"), "127.0.0.1", 8080));
	assert_false(fwdhead_host_ok(LIT("127.0.0.1:8080x"), "127.0.0.1", 8080));
	assert_false(fwdhead_host_ok(LIT(""), "127.0.0.1", 8080));
	assert_false(fwdhead_host_ok(LIT("[::1]:8080"), "127.0.0.1", 8080));
	assert_true(fwdhead_host_ok(LIT("[::1]:8080"), "::1", 8080));
	assert_true(fwdhead_host_ok(LIT("localhost:8080"), "::1", 8080));
	assert_false(fwdhead_host_ok(LIT("[::1"), "::1", 8080));
	assert_false(fwdhead_host_ok(LIT("[::2]:8080"), "::1", 8080));
}

static void test_origin_ok(void **state)
{
	(void)state;
	assert_true(fwdhead_origin_ok(LIT("http://127.0.0.1:8080"), "127.0.0.1", 8080));
	assert_true(fwdhead_origin_ok(LIT("http://localhost:8080"), "127.0.0.1", 8080));
	assert_false(fwdhead_origin_ok(LIT("https://127.0.0.1:8080"), "127.0.0.1", 8080));
	assert_false(fwdhead_origin_ok(LIT("http://evil.example"), "127.0.0.1", 8080));
	assert_false(fwdhead_origin_ok(LIT("null"), "127.0.0.1", 8080));
	assert_false(fwdhead_origin_ok(LIT("http://127.0.0.1:8080/x"), "127.0.0.1", 8080));
	assert_false(fwdhead_origin_ok(LIT(""), "127.0.0.1", 8080));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hop_by_hop),	     cmocka_unit_test(test_request_headers),
	    cmocka_unit_test(test_response_headers), cmocka_unit_test(test_websocket_token),
	    cmocka_unit_test(test_target),	     cmocka_unit_test(test_target_refused),
	    cmocka_unit_test(test_location),	     cmocka_unit_test(test_parse_listen),
	    cmocka_unit_test(test_listen_unix),
	    cmocka_unit_test(test_host_ok),	     cmocka_unit_test(test_origin_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
