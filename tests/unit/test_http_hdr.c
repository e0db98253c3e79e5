/*
 * test_http_hdr.c - the one header table, token-list parser, bearer parser
 * and request-path rule of every hop (src/net/http_hdr.c), and the one
 * base64 (src/common/base64.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/base64.h"
#include "net/http_hdr.h"

#define H(n, v) ((struct http_header){LIT(n), LIT(v)})

static void test_table(void **state)
{
	static const char *const hop[] = {
	    "Connection",     "connection",	  "KEEP-ALIVE",		 "te",
	    "Trailer",	      "Trailers",	  "transfer-encoding",	 "Upgrade",
	    "HTTP2-Settings", "Proxy-Connection", "proxy-authorization", "Proxy-Authenticate",
	    "Proxy-Whatever",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		assert_int_equal(http_hdr_flags(slice_cstr(hop[i])), HTTP_HDR_HOP);
	assert_int_equal(http_hdr_flags(LIT("host")), HTTP_HDR_FRAMING);
	assert_int_equal(http_hdr_flags(LIT("Content-Length")), HTTP_HDR_FRAMING);
	assert_int_equal(http_hdr_flags(LIT("Expect")), HTTP_HDR_FRAMING);
	assert_int_equal(http_hdr_flags(LIT("sec-websocket-key")), HTTP_HDR_WS);
	assert_int_equal(http_hdr_flags(LIT("Sec-WebSocket-Accept")), HTTP_HDR_WS);
	assert_int_equal(http_hdr_flags(LIT("Sec-WebSocket-Protocol")), 0);
	assert_int_equal(http_hdr_flags(LIT("Authorization")), HTTP_HDR_NO_CLUSTER);
	assert_int_equal(http_hdr_flags(LIT("x-forwarded-for")),
			 HTTP_HDR_NO_CLUSTER | HTTP_HDR_NO_USER);
	assert_int_equal(http_hdr_flags(LIT("Forwarded")), HTTP_HDR_NO_CLUSTER | HTTP_HDR_NO_USER);
	/* Look-alikes and the prefix alone are not in the table. */
	assert_int_equal(http_hdr_flags(LIT("Proxy-")), 0);
	assert_int_equal(http_hdr_flags(LIT("Proxy")), 0);
	assert_int_equal(http_hdr_flags(LIT("Tee")), 0);
	assert_int_equal(http_hdr_flags(LIT("Connections")), 0);
	assert_int_equal(http_hdr_flags(LIT("Cookie")), 0);
	assert_int_equal(http_hdr_flags(LIT("Set-Cookie")), 0);
	assert_int_equal(http_hdr_flags(LIT("")), 0);
	assert_int_equal(http_hdr_flags(SLICE_NULL), 0);
}

static void test_hop_masks(void **state)
{
	(void)state;
	/* Toward a cluster the caller's credential goes; back to the user it may pass. */
	assert_true(HTTP_HDR_DROP_TO_CLUSTER & http_hdr_flags(LIT("Authorization")));
	assert_false(HTTP_HDR_DROP_TO_USER & http_hdr_flags(LIT("Authorization")));
	assert_true(HTTP_HDR_DROP_TO_USER & http_hdr_flags(LIT("X-Forwarded-Host")));
	/* The agent passes the manager's X-Forwarded-* on to LXD. */
	assert_false(HTTP_HDR_DROP_AGENT & http_hdr_flags(LIT("X-Forwarded-For")));
	assert_true(HTTP_HDR_DROP_AGENT & http_hdr_flags(LIT("Sec-WebSocket-Key")));
	/* lxcm proxy passes an upgrade through as HTTP/1.1: the keys cross it. */
	assert_false(HTTP_HDR_DROP_CLI_REQUEST & http_hdr_flags(LIT("Sec-WebSocket-Key")));
	assert_false(HTTP_HDR_DROP_CLI_RESPONSE & http_hdr_flags(LIT("Sec-WebSocket-Accept")));
	assert_true(HTTP_HDR_DROP_CLI_REQUEST & http_hdr_flags(LIT("Authorization")));
}

/* A client's X-Request-Id never reaches a cluster, nor a cluster's the user: the manager's does. */
static void test_request_id(void **state)
{
	(void)state;
	assert_true(HTTP_HDR_DROP_TO_CLUSTER & http_hdr_flags(LIT("x-request-id")));
	assert_true(HTTP_HDR_DROP_TO_USER & http_hdr_flags(LIT("X-Request-ID")));
	/* The agent hands the manager's on to LXD. */
	assert_false(HTTP_HDR_DROP_AGENT & http_hdr_flags(LIT("X-Request-Id")));
}

static int toks(const char *list, const char *const *want, size_t nwant)
{
	struct slice l = slice_cstr(list), t;
	size_t n = 0;

	while (http_hdr_list_next(&l, &t)) {
		if (n >= nwant || !slice_eq(t, slice_cstr(want[n])))
			return 0;
		n++;
	}
	return n == nwant;
}

static void test_token_lists(void **state)
{
	static const char *const ab[] = {"a", "b"};
	static const char *const one[] = {"Upgrade"};

	(void)state;
	assert_true(toks("a,b", ab, 2));
	assert_true(toks(" a , b ", ab, 2));
	assert_true(toks("\ta,\t\tb\t", ab, 2));
	assert_true(toks(",,a,, ,b,,", ab, 2));
	assert_true(toks("a b", ab, 2)); /* malformed: both words count */
	assert_true(toks("Upgrade", one, 1));
	assert_true(toks("", NULL, 0));
	assert_true(toks(" , ,\t", NULL, 0));
	assert_true(http_hdr_list_has(LIT("keep-alive, UPGRADE"), LIT("upgrade")));
	assert_true(http_hdr_list_has(LIT("h2c,websocket"), LIT("WebSocket")));
	assert_false(http_hdr_list_has(LIT("websockets"), LIT("websocket")));
	assert_false(http_hdr_list_has(LIT("upgrade-x"), LIT("upgrade")));
	assert_false(http_hdr_list_has(SLICE_NULL, LIT("upgrade")));
}

static void test_drop(void **state)
{
	const struct http_header h[] = {
	    H("Connection", "close, X-Private"),
	    H("connection", "x-other"),
	    H("X-Private", "1"),
	    H("X-Other", "2"),
	    H("X-Kept", "3"),
	    H("Keep-Alive", "5"),
	    H("Authorization", "Bearer t"),
	};
	size_t n = sizeof(h) / sizeof(h[0]);

	(void)state;
	assert_true(http_hdr_drop(h, n, LIT("x-private"), 0));
	assert_true(http_hdr_drop(h, n, LIT("X-OTHER"), 0)); /* a second Connection header */
	assert_false(http_hdr_drop(h, n, LIT("X-Kept"), HTTP_HDR_DROP_TO_CLUSTER));
	assert_true(http_hdr_drop(h, n, LIT("Keep-Alive"), HTTP_HDR_DROP_AGENT));
	assert_true(http_hdr_drop(h, n, LIT("Authorization"), HTTP_HDR_DROP_TO_CLUSTER));
	assert_false(http_hdr_drop(h, n, LIT("Authorization"), HTTP_HDR_DROP_TO_USER));
	/* Without Connection headers only the table counts. */
	assert_false(http_hdr_drop(h + 2, n - 2, LIT("X-Private"), HTTP_HDR_DROP_TO_CLUSTER));
}

static void test_bearer(void **state)
{
	char big[HTTP_HDR_AUTH_MAX + 2];

	(void)state;
	assert_true(slice_eq(http_hdr_bearer(LIT("Bearer abc")), LIT("abc")));
	assert_true(slice_eq(http_hdr_bearer(LIT("bearer abc")), LIT("abc")));
	assert_true(slice_eq(http_hdr_bearer(LIT("BEARER a b")), LIT("a b")));
	assert_null(http_hdr_bearer(LIT("Bearer ")).base);
	assert_null(http_hdr_bearer(LIT("Bearer")).base);
	assert_null(http_hdr_bearer(LIT("Basic YTpi")).base);
	assert_null(http_hdr_bearer(LIT("Bearerabc")).base);
	assert_null(http_hdr_bearer(SLICE_NULL).base);
	memcpy(big, "Bearer ", 7);
	memset(big + 7, 'x', sizeof(big) - 7);
	assert_int_equal(http_hdr_bearer(slice_make(big, HTTP_HDR_AUTH_MAX)).len,
			 HTTP_HDR_AUTH_MAX - 7);
	assert_null(http_hdr_bearer(slice_make(big, HTTP_HDR_AUTH_MAX + 1)).base);
}

static const char *cookies(struct buf *b, const char *v)
{
	assert_int_equal(http_hdr_cookies_for_cluster(slice_cstr(v), b), 0);
	return b->len ? b->data : "";
}

static void test_manager_cookies(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 64);
	/* The manager's own (lxcm_*) go nowhere, wherever they sit; the rest go on. */
	assert_string_equal(cookies(&b, "lxcm_session=s; ui=keep"), "ui=keep");
	buf_reset(&b);
	assert_string_equal(cookies(&b, "ui=keep; lxcm_session=s"), "ui=keep");
	buf_reset(&b);
	assert_string_equal(cookies(&b, "a=1;lxcm_x=2;b=3"), "a=1; b=3");
	buf_reset(&b);
	assert_string_equal(cookies(&b, "lxcm_a=1; lxcm_b=2"), "");
	buf_reset(&b);
	assert_string_equal(cookies(&b, " ;; "), "");
	/* A second Cookie header appends. */
	buf_reset(&b);
	cookies(&b, "a=1");
	assert_string_equal(cookies(&b, "lxcm_z=0; b=2"), "a=1; b=2");
	/* Only the prefix counts: "xlxcm_" and "LXCM_" are the cluster's. */
	buf_reset(&b);
	assert_string_equal(cookies(&b, "xlxcm_a=1; LXCM_b=2"), "xlxcm_a=1; LXCM_b=2");
	/* Past the cap: -E2BIG. */
	buf_reset(&b);
	assert_int_equal(
	    http_hdr_cookies_for_cluster(
		LIT("a=0123456789012345678901234567890123456789012345678901234567890123"), &b),
	    -E2BIG);
	buf_free(&b);
}

static int path_ok(const char *p)
{
	const char *why = "unset";
	int rc = http_hdr_path_check(slice_cstr(p), &why);

	if (rc == 0)
		assert_null(why);
	else
		assert_non_null(why);
	return rc == 0;
}

static void test_path_accepted(void **state)
{
	static const char *const good[] = {
	    "/",
	    "/1.0",
	    "/1.0/",
	    "/ui/",
	    "/ui/assets/index-3f2a.js",
	    "/1.0/instances/c1/files",
	    "/1.0/images/ubuntu.22.04",
	    "/1.0/.../.x/x./a..b",
	    "/a%20b/%41/%25/%2D",
	    "/1.0/instances/c1/logs/lxc.log",
	    "/1.0/operations/5f0e-42/wait",
	    "/1.0/storage-pools/default/volumes/custom/v1@snap",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!path_ok(good[i]))
			fail_msg("refused: %s", good[i]);
}

static void test_path_refused(void **state)
{
	static const char *const bad[] = {
	    /* dot segments, literal and in every encoding and case */
	    "/..",
	    "/.",
	    "/../x",
	    "/a/..",
	    "/a/.",
	    "/a/../b",
	    "/a/./b",
	    "/a/%2e%2e/b",
	    "/a/%2E%2E/b",
	    "/a/.%2e/b",
	    "/a/.%2E/b",
	    "/a/%2e./b",
	    "/a/%2E./b",
	    "/a/%2e/b",
	    "/a/%2e",
	    "/%2e%2E",
	    /* encoded dots anywhere */
	    "/a%2eb",
	    /* encoded separators and NUL */
	    "/a%2fb",
	    "/a%2Fb",
	    "/a/..%2fb",
	    "/a%5cb",
	    "/a%5C..",
	    "/a%00",
	    "/a/%00/b",
	    /* backslash, empty segments */
	    "/a\\b",
	    "/a\\..\\b",
	    "//",
	    "//1.0/echo",
	    "/1.0//instances",
	    "/1.0///",
	    /* not a path, bad bytes, bad escapes */
	    "",
	    "1.0",
	    "x/y",
	    "?x",
	    "/a b",
	    "/a\tb",
	    "/a\r\n",
	    "/caf\xc3\xa9",
	    "/a\x7f",
	    "/a%",
	    "/a%2",
	    "/a%zz",
	    "/a%g0",
	    "/a%2/",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (path_ok(bad[i]))
			fail_msg("accepted: %s", bad[i]);
	/* A raw NUL inside the slice. */
	assert_int_equal(http_hdr_path_check(LIT("/a\0b"), NULL), -EINVAL);
	assert_int_equal(http_hdr_path_check(SLICE_NULL, NULL), -EINVAL);
}

static void test_path_tail(void **state)
{
	(void)state;
	/* "/" + tail: a route's {*} capture, as the proxies hold it. */
	assert_int_equal(http_hdr_path_tail_check(LIT(""), NULL), 0);
	assert_int_equal(http_hdr_path_tail_check(LIT("1.0/instances"), NULL), 0);
	assert_int_equal(http_hdr_path_tail_check(LIT("ui/"), NULL), 0);
	assert_int_equal(http_hdr_path_tail_check(LIT("/1.0"), NULL), -EINVAL);
	assert_int_equal(http_hdr_path_tail_check(LIT(".."), NULL), -EINVAL);
	assert_int_equal(http_hdr_path_tail_check(LIT("."), NULL), -EINVAL);
	assert_int_equal(http_hdr_path_tail_check(LIT("1.0/%2E%2e/x"), NULL), -EINVAL);
	assert_int_equal(http_hdr_path_tail_check(LIT("1.0\\x"), NULL), -EINVAL);
}

static void test_path_of_target(void **state)
{
	struct slice t = LIT("/1.0/instances/c1/files?path=/etc/../etc/hosts");

	(void)state;
	/* The query is the client's business: only the path is checked. */
	assert_true(slice_eq(http_hdr_target_path(t), LIT("/1.0/instances/c1/files")));
	assert_int_equal(http_hdr_path_check(http_hdr_target_path(t), NULL), 0);
	assert_true(slice_eq(http_hdr_target_path(LIT("/a")), LIT("/a")));
	assert_true(slice_eq(http_hdr_target_path(LIT("?q")), LIT("")));
	assert_int_equal(http_hdr_target_path(SLICE_NULL).len, 0);
	assert_int_equal(http_hdr_path_check(http_hdr_target_path(LIT("/a/..?x=1")), NULL),
			 -EINVAL);
}

/* RFC 4648 section 10. */
static void test_base64_vectors(void **state)
{
	static const char *const vec[][2] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	};
	char enc[16], dec[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		size_t len = strlen(vec[i][0]);

		assert_int_equal(base64_encoded_len(len), strlen(vec[i][1]));
		memset(enc, 0, sizeof(enc));
		base64_encode(vec[i][0], len, enc);
		assert_string_equal(enc, vec[i][1]);
		assert_int_equal(base64_decode(vec[i][1], strlen(vec[i][1]), dec, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(dec, vec[i][0], len);
		assert_int_equal(base64_decode_strict(vec[i][1], strlen(vec[i][1]), dec, &n), 0);
		assert_int_equal(n, len);
	}
	/* Bytes above 0x7f and the last two alphabet characters. */
	base64_encode("\xfb\xff\xbf", 3, enc);
	assert_memory_equal(enc, "+/+/", 4);
	/* Refused by both: bad length, bad characters, misplaced padding. */
	assert_int_equal(base64_decode("Zg=", 3, dec, &n), -EINVAL);
	assert_int_equal(base64_decode("Z===", 4, dec, &n), -EINVAL);
	assert_int_equal(base64_decode("Zg=a", 4, dec, &n), -EINVAL);
	assert_int_equal(base64_decode("Z-8=", 4, dec, &n), -EINVAL);
	assert_int_equal(base64_decode("Zm 9", 4, dec, &n), -EINVAL);
	/* Nonzero bits under the padding: Go's decoder (and ours) ignore them, strict does not. */
	assert_int_equal(base64_decode("Zh==", 4, dec, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(dec[0], 'f');
	assert_int_equal(base64_decode_strict("Zh==", 4, dec, &n), -EINVAL);
	assert_int_equal(base64_decode_strict("Zm9=", 4, dec, &n), -EINVAL);
	assert_int_equal(base64_decode_strict("Zm8=", 4, dec, &n), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),	   cmocka_unit_test(test_hop_masks),
	    cmocka_unit_test(test_token_lists),	   cmocka_unit_test(test_drop),
	    cmocka_unit_test(test_bearer),	   cmocka_unit_test(test_manager_cookies),
	    cmocka_unit_test(test_path_accepted),  cmocka_unit_test(test_path_refused),
	    cmocka_unit_test(test_path_tail),	   cmocka_unit_test(test_path_of_target),
	    cmocka_unit_test(test_base64_vectors), cmocka_unit_test(test_request_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
