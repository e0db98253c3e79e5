/*
 * test_tunnel_v1_frame.c - the tunnel v1 frame codec (tunnel_v1_frame.c):
 * request frames as MicroCloud reads them, response frames as MicroCloud
 * writes them, and the peer-input rules of docs/protocol-v1.md.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "server/tunnel_v1_frame.h"

static json_t *build(const struct tunnel_v1_frame_req *fr)
{
	const char *why = NULL;
	char *frame = NULL;
	size_t flen = 0;
	json_t *o;

	assert_int_equal(tunnel_v1_frame_request(fr, &frame, &flen, &why), 0);
	o = json_loadb(frame, flen, JSON_REJECT_DUPLICATES, NULL);
	free(frame);
	assert_non_null(o);
	return o;
}

static void test_request_frame(void **state)
{
	struct http_header h[] = {
	    {LIT("x-test"), LIT("a")},
	    {LIT("X-Test"), LIT("b")},
	    {LIT("content-type"), LIT("application/json")},
	    {LIT("cookie"), LIT("theirs=1")},
	};
	struct tunnel_v1_frame_req fr = {0};
	char uuid[TUNNEL_V1_FRAME_UUID_LEN + 1];
	json_t *o, *hd;

	(void)state;
	assert_int_equal(tunnel_v1_frame_uuid(uuid), 0);
	assert_int_equal(strlen(uuid), 36);
	assert_int_equal(uuid[14], '4');
	fr.uuid = uuid;
	fr.method = LIT("POST");
	fr.path = LIT("/1.0/echo?x=1");
	fr.h = h;
	fr.n = 4;
	fr.session = LIT("session=abc");
	fr.body = "hi";
	fr.body_len = 2;
	o = build(&fr);
	assert_string_equal(json_string_value(json_object_get(o, "uuid")), uuid);
	assert_string_equal(json_string_value(json_object_get(o, "method")), "POST");
	assert_string_equal(json_string_value(json_object_get(o, "path")), "/1.0/echo?x=1");
	assert_string_equal(json_string_value(json_object_get(o, "body")), "aGk=");
	hd = json_object_get(o, "headers");
	/* Go's canonical names; repeated headers become arrays. */
	assert_int_equal(json_array_size(json_object_get(hd, "X-Test")), 2);
	assert_non_null(json_object_get(hd, "Content-Type"));
	/* The stored session goes along with the user's cookies. */
	assert_int_equal(json_array_size(json_object_get(hd, "Cookie")), 2);
	json_decref(o);

	/* The user's own session cookie wins; no body is null. */
	h[3].value = LIT("session=mine");
	fr.body_len = 0;
	o = build(&fr);
	hd = json_object_get(o, "headers");
	assert_int_equal(json_array_size(json_object_get(hd, "Cookie")), 1);
	assert_true(json_is_null(json_object_get(o, "body")));
	json_decref(o);
}

static void test_request_frame_errors(void **state)
{
	struct http_header h[] = {{LIT("x-bad"), LIT("\xff\xfe")}};
	struct tunnel_v1_frame_req fr = {0};
	const char *why = NULL;
	char *frame = NULL;
	size_t flen = 0;
	void *big;

	(void)state;
	fr.uuid = "00000000-0000-4000-8000-000000000000";
	fr.method = LIT("GET");
	fr.path = LIT("/1.0");
	fr.h = h;
	fr.n = 1;
	assert_int_equal(tunnel_v1_frame_request(&fr, &frame, &flen, &why), -EINVAL);
	assert_non_null(strstr(why, "UTF-8"));
	fr.n = 0;
	fr.path = LIT("/1.0/\xff");
	assert_int_equal(tunnel_v1_frame_request(&fr, &frame, &flen, &why), -EINVAL);
	fr.path = LIT("/1.0");
	big = calloc(1, TUNNEL_V1_FRAME_MAX);
	assert_non_null(big);
	fr.body = big;
	fr.body_len = TUNNEL_V1_FRAME_MAX; /* base64 makes it bigger than a frame */
	assert_int_equal(tunnel_v1_frame_request(&fr, &frame, &flen, &why), -E2BIG);
	free(big);
}

static json_t *cur; /* the frame rs points into, until done() */

static const char *parse(const char *text, struct tunnel_v1_frame_resp *rs)
{
	cur = json_loads(text, 0, NULL);
	assert_non_null(cur);
	memset(rs, 0, sizeof(*rs));
	rs->cluster = "c1";
	return tunnel_v1_frame_response(cur, rs);
}

static void done(struct tunnel_v1_frame_resp *rs)
{
	tunnel_v1_frame_resp_clear(rs);
	json_decref(cur);
	cur = NULL;
}

static struct slice find(const struct tunnel_v1_frame_resp *rs, const char *name, size_t nth)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (slice_eq_nocase(rs->h[i].name, slice_cstr(name)) && nth-- == 0)
			return rs->h[i].value;
	return SLICE_NULL;
}

static void test_response_frame(void **state)
{
	struct tunnel_v1_frame_resp rs;
	const char *why;
	struct slice v;

	(void)state;
	why = parse("{\"uuid\":\"u\",\"status\":200,\"body\":\"aGk=\",\"headers\":{"
		    "\"Content-Type\":[\"application/json\"],\"Connection\":[\"X-Hop\"],"
		    "\"X-Hop\":[\"1\"],\"Content-Length\":[\"99\"],\"X-Early\":\"one\"},"
		    "\"cookies\":[{\"Name\":\"session\",\"Value\":\"s1\"},"
		    "{\"Name\":\"a\",\"Value\":\"b c\",\"Path\":\"/\",\"HttpOnly\":true,"
		    "\"Secure\":true,\"SameSite\":2,\"MaxAge\":60}]}",
		    &rs);
	assert_null(why);
	assert_int_equal(rs.status, 200);
	assert_int_equal(rs.body_len, 2);
	assert_memory_equal(rs.body, "hi", 2);
	assert_non_null(find(&rs, "Content-Type", 0).base);
	assert_non_null(find(&rs, "X-Early", 0).base);
	/* Hop-by-hop, named by Connection and framing headers stay behind. */
	assert_null(find(&rs, "Connection", 0).base);
	assert_null(find(&rs, "X-Hop", 0).base);
	assert_null(find(&rs, "Content-Length", 0).base);
	/* The session cookie is reported, never passed on; others as Go writes them. */
	assert_true(rs.session_seen);
	assert_false(rs.session_expired);
	assert_true(slice_eq(rs.session_value, LIT("s1")));
	v = find(&rs, "Set-Cookie", 0);
	assert_true(slice_eq(v, LIT("a=\"b c\"; Path=/; Max-Age=60; HttpOnly; Secure; "
				    "SameSite=Lax")));
	assert_null(find(&rs, "Set-Cookie", 1).base);
	done(&rs);
}

static void test_response_frame_rejects(void **state)
{
	static const char *bad[] = {
	    "{\"status\":99}",
	    "{\"status\":\"200\"}",
	    "{\"status\":200,\"body\":\"!!\"}",
	    "{\"status\":200,\"body\":5}",
	    "{\"status\":200,\"cookies\":{}}",
	    "{\"status\":200,\"headers\":[]}",
	    "{\"status\":200,\"headers\":{\"Bad Name\":[\"x\"]}}",
	    "{\"status\":200,\"headers\":{\"X\":[\"a\\r\\nb\"]}}",
	    "{\"status\":200,\"headers\":{\"X\":[1]}}",
	    "{\"status\":200,\"cookies\":[5]}",
	};
	struct tunnel_v1_frame_resp rs;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_non_null(parse(bad[i], &rs));
		done(&rs);
	}
}

static void test_response_too_many_headers(void **state)
{
	struct tunnel_v1_frame_resp rs;
	json_t *o = json_object(), *arr = json_array();
	size_t i;

	(void)state;
	for (i = 0; i <= TUNNEL_V1_FRAME_MAX_HEADERS; i++)
		json_array_append_new(arr, json_string("v"));
	json_object_set_new(o, "status", json_integer(200));
	json_object_set_new(o, "headers", json_pack("{s:o}", "X-Many", arr));
	memset(&rs, 0, sizeof(rs));
	rs.cluster = "c1";
	assert_string_equal(tunnel_v1_frame_response(o, &rs), "too many headers");
	tunnel_v1_frame_resp_clear(&rs);
	json_decref(o);
}

static void test_session_cookie_detect(void **state)
{
	(void)state;
	assert_true(tunnel_v1_frame_has_session(LIT("a=1; session=x")));
	assert_true(tunnel_v1_frame_has_session(LIT("session=")));
	assert_false(tunnel_v1_frame_has_session(LIT("sessionx=1; a=session")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_frame),
	    cmocka_unit_test(test_request_frame_errors),
	    cmocka_unit_test(test_response_frame),
	    cmocka_unit_test(test_response_frame_rejects),
	    cmocka_unit_test(test_response_too_many_headers),
	    cmocka_unit_test(test_session_cookie_detect),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
