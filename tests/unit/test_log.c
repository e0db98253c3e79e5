/*
 * test_log.c - the log line encoder (src/common/log.c): JSON lines parse,
 * every string is escaped (quotes, backslashes, control characters,
 * invalid UTF-8), fields keep their types, a long line is cut and stays
 * valid JSON; text lines keep their old shape and quote odd field values.
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

#include "common/log.h"

#define TS "2026-12-07T23:21:51.123Z"

static char line[LOG_LINE_MAX + 1];

/* Formats a JSON line and parses it back (it must be one JSON object). */
static json_t *json_line(const char *func, const struct log_field *f, size_t n, const char *msg)
{
	json_error_t err;
	size_t len = log__format(line, sizeof(line), LOG_FORMAT_JSON, TS, "lxcm-test",
				 LOG_LEVEL_WARN, func, f, n, msg);
	json_t *o;

	assert_int_equal(len, strlen(line));
	assert_null(memchr(line, '\n', len));
	o = json_loadb(line, len, 0, &err);
	if (o == NULL)
		fail_msg("not JSON (%s): %s", err.text, line);
	assert_true(json_is_object(o));
	return o;
}

static void test_log_json_shape(void **state)
{
	struct log_field f[] = {LOG_FSTR("request_id", "abc"), LOG_FINT("status", 404),
				LOG_FINT("bytes_in", -7), LOG_FSTR("actor", NULL)};
	json_t *o;

	(void)state;
	o = json_line("proxy", f, 4, "GET /1.0 404");
	assert_string_equal(json_string_value(json_object_get(o, "ts")), TS);
	assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(o, "prog")), "lxcm-test");
	assert_string_equal(json_string_value(json_object_get(o, "func")), "proxy");
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "GET /1.0 404");
	assert_string_equal(json_string_value(json_object_get(o, "request_id")), "abc");
	assert_int_equal(json_integer_value(json_object_get(o, "status")), 404);
	assert_int_equal(json_integer_value(json_object_get(o, "bytes_in")), -7);
	assert_string_equal(json_string_value(json_object_get(o, "actor")), ""); /* NULL */
	assert_int_equal(json_object_size(o), 9);
	json_decref(o);
}

/* Quotes, backslashes and every control character come back as they were. */
static void test_log_json_escapes(void **state)
{
	char nasty[64];
	struct log_field f[1];
	json_t *o;
	size_t i;

	(void)state;
	for (i = 1; i < 0x20; i++)
		nasty[i - 1] = (char)i;
	memcpy(nasty + 31, "\"\\/\x7f end", 9);
	f[0] = LOG_FSTR("path", nasty);
	o = json_line("f\"n", f, 1, "say \"hi\"\\\n\r\tbye");
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "say \"hi\"\\\n\r\tbye");
	assert_string_equal(json_string_value(json_object_get(o, "path")), nasty);
	assert_string_equal(json_string_value(json_object_get(o, "func")), "f\"n");
	/* Raw control bytes never reach the line. */
	for (i = 0; line[i]; i++)
		assert_true((unsigned char)line[i] >= 0x20 && (unsigned char)line[i] != 0x7f);
	assert_non_null(strstr(line, "\\u0001"));
	assert_non_null(strstr(line, "\\u007f"));
	assert_non_null(strstr(line, "\\n"));
	json_decref(o);
}

/* Valid UTF-8 is kept; each invalid byte becomes U+FFFD. */
static void test_log_json_utf8(void **state)
{
	struct log_field f[] = {
	    LOG_FSTR("ok", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
	    LOG_FSTR("bad", "a\xff" "b\xc3" "c\xed\xa0\x80" "d\xc0\xaf" "e\xf4\x90\x80\x80"),
	};
	json_t *o;

	(void)state;
	o = json_line("f", f, 2, "\xe2\x82");
	assert_string_equal(json_string_value(json_object_get(o, "ok")),
			    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_string_equal(json_string_value(json_object_get(o, "bad")),
			    "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			    "d\xef\xbf\xbd\xef\xbf\xbd" "e\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			    "\xef\xbf\xbd");
	assert_string_equal(json_string_value(json_object_get(o, "msg")),
			    "\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(o);
}

/* A line far longer than LOG_LINE_MAX is cut inside its strings and still parses. */
static void test_log_json_cut(void **state)
{
	char *big = malloc(3 * LOG_LINE_MAX);
	struct log_field f[LOG_MAX_FIELDS + 2];
	json_t *o;
	size_t i;

	(void)state;
	assert_non_null(big);
	memset(big, '"', 3 * LOG_LINE_MAX - 1); /* each byte escapes to two */
	big[3 * LOG_LINE_MAX - 1] = '\0';
	for (i = 0; i < LOG_MAX_FIELDS + 2; i++)
		f[i] = LOG_FSTR("a_rather_long_field_name", big);
	f[3] = LOG_FINT("status", 200);
	o = json_line("f", f, LOG_MAX_FIELDS + 2, big);
	assert_true(strlen(line) <= LOG_LINE_MAX);
	assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
	assert_true(strlen(json_string_value(json_object_get(o, "msg"))) > 1000);
	assert_non_null(strstr(json_string_value(json_object_get(o, "msg")), "..."));
	json_decref(o);
	free(big);
}

/* Text: the old "ts prog level func: msg", then key=value, odd values quoted. */
static void test_log_text(void **state)
{
	struct log_field f[] = {LOG_FSTR("request_id", "ab12"), LOG_FINT("status", 200),
				LOG_FSTR("path", "/1.0/instances?x=1 y"), LOG_FSTR("empty", ""),
				LOG_FSTR("nl", "a\nb")};

	(void)state;
	log__format(line, sizeof(line), LOG_FORMAT_TEXT, TS, "lxcm-server", LOG_LEVEL_INFO,
		    "main", NULL, 0, "started");
	assert_string_equal(line, TS " lxcm-server info main: started");
	log__format(line, sizeof(line), LOG_FORMAT_TEXT, TS, "lxcm-server", LOG_LEVEL_INFO,
		    "proxy", f, 5, "GET 200");
	assert_string_equal(line, TS " lxcm-server info proxy: GET 200 request_id=ab12 status=200 "
				     "path=\"/1.0/instances?x=1 y\" empty=\"\" nl=\"a\\nb\"");
}

static void test_log_format_parse(void **state)
{
	enum log_format f = LOG_FORMAT_TEXT;

	(void)state;
	assert_int_equal(log_format_parse("json", &f), 0);
	assert_int_equal(f, LOG_FORMAT_JSON);
	assert_int_equal(log_format_parse("text", &f), 0);
	assert_int_equal(f, LOG_FORMAT_TEXT);
	assert_int_equal(log_format_parse("JSON", &f), -EINVAL);
	assert_int_equal(log_format_parse("", &f), -EINVAL);
	assert_int_equal(log_format_parse(NULL, &f), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_json_shape), cmocka_unit_test(test_log_json_escapes),
	    cmocka_unit_test(test_log_json_utf8),  cmocka_unit_test(test_log_json_cut),
	    cmocka_unit_test(test_log_text),	   cmocka_unit_test(test_log_format_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
