/* test_metrics_text.c - the strict exposition-text parser. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/metrics_text.h"

struct got {
	char line[16][256];
	size_t n;
};

static int collect(const struct metrics_text_sample *s, void *arg)
{
	struct got *g = arg;
	char *p = g->line[g->n], *end = p + sizeof(g->line[0]);
	size_t i;

	p += snprintf(p, (size_t)(end - p), "%.*s", (int)s->name.len, s->name.base);
	for (i = 0; i < s->nlabels; i++)
		p += snprintf(p, (size_t)(end - p), "|%.*s=%.*s", (int)s->labels[i].name.len,
			      s->labels[i].name.base, (int)s->labels[i].value.len,
			      s->labels[i].value.base);
	p += snprintf(p, (size_t)(end - p), " %g", s->value);
	if (s->has_timestamp)
		snprintf(p, (size_t)(end - p), " @%lld", (long long)s->timestamp_ms);
	g->n++;
	return g->n == 16 ? -ENOSPC : 0;
}

static long parse(const char *text, struct got *g, size_t *line)
{
	memset(g, 0, sizeof(*g));
	return metrics_text_parse(text, strlen(text), collect, g, line);
}

static void test_lxd_text(void **state)
{
	static const char text[] =
	    "# HELP lxd_cpu_seconds_total The total number of CPU time used in seconds.\n"
	    "# TYPE lxd_cpu_seconds_total counter\n"
	    "lxd_cpu_seconds_total{cpu=\"0\",mode=\"system\",name=\"c1\"} 1.84\n"
	    "\n"
	    "lxd_go_goroutines 181\n"
	    "up{a=\"x\\\\y\\\"z\\n\", b = \"\" ,} 1e3 1700000000000\n"
	    "x:y\t2";
	struct got g;
	size_t line;

	(void)state;
	assert_int_equal(parse(text, &g, &line), 4);
	assert_string_equal(g.line[0], "lxd_cpu_seconds_total|cpu=0|mode=system|name=c1 1.84");
	assert_string_equal(g.line[1], "lxd_go_goroutines 181");
	assert_string_equal(g.line[2], "up|a=x\\y\"z\n|b= 1000 @1700000000000");
	assert_string_equal(g.line[3], "x:y 2");
	assert_int_equal(line, 0);
}

static void test_special_values(void **state)
{
	struct got g;

	(void)state;
	assert_int_equal(parse("a NaN\nb +Inf\nc -Inf\nd Inf\ne -0.5e-3\n", &g, NULL), 5);
	assert_string_equal(g.line[0], "a nan");
	assert_string_equal(g.line[1], "b inf");
	assert_string_equal(g.line[2], "c -inf");
	assert_string_equal(g.line[4], "e -0.0005");
	/* A validation pass needs no callback. */
	assert_int_equal(metrics_text_parse("a 1\nb 2\n", 8, NULL, NULL, NULL), 2);
	assert_int_equal(metrics_text_parse("", 0, NULL, NULL, NULL), 0);
}

static void test_malformed(void **state)
{
	static const char *bad[] = {
	    "1abc 1\n",		    /* name starts with a digit */
	    "a\n",		    /* no value */
	    "a 0x10\n",		    /* hex */
	    "a infinity\n",	    /* spelled out */
	    "a 1 2 3\n",	    /* too many fields */
	    "a 1 1.5\n",	    /* fractional timestamp */
	    "a{b=\"x} 1\n",	    /* unterminated value */
	    "a{b=\"\\t\"} 1\n",	    /* unknown escape */
	    "a{b=\"1\",b=\"2\"} 1\n", /* a label twice */
	    "a{__name__=\"x\"} 1\n",  /* the name as a label */
	    "a{b:c=\"1\"} 1\n",	    /* colon in a label name */
	    "a{b=\"1\" c=\"2\"} 1\n", /* missing comma */
	    "a{b=\"1\"}1\n",	    /* no blank before the value */
	    "a 1\r\n",		    /* CR */
	    " a 1\n",		    /* leading blank */
	    "a{,} 1\n",		    /* empty label */
	};
	struct got g;
	size_t i, line;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long rc = parse(bad[i], &g, &line);

		if (rc != -EINVAL)
			fail_msg("%s: %ld", bad[i], rc);
		assert_int_equal(line, 1);
	}
	assert_int_equal(parse("a 1\nb 2\nc\n", &g, &line), -EINVAL);
	assert_int_equal(line, 3);
	assert_int_equal(metrics_text_parse("a 1\0", 4, NULL, NULL, NULL), -EINVAL);
}

static void test_caps(void **state)
{
	char *text = malloc(METRICS_TEXT_MAX_LINE + 16), *p;
	size_t i;
	long rc;

	(void)state;
	assert_non_null(text);
	/* A line over the cap. */
	memset(text, 'a', METRICS_TEXT_MAX_LINE + 1);
	memcpy(text + METRICS_TEXT_MAX_LINE + 1, " 1\n", 3);
	assert_int_equal(metrics_text_parse(text, METRICS_TEXT_MAX_LINE + 4, NULL, NULL, NULL),
			 -E2BIG);
	/* A name over the cap. */
	memcpy(text + METRICS_TEXT_MAX_NAME + 1, " 1\n", 3);
	assert_int_equal(metrics_text_parse(text, METRICS_TEXT_MAX_NAME + 4, NULL, NULL, NULL),
			 -E2BIG);
	/* Too many labels. */
	p = text;
	p += snprintf(p, 8, "m{");
	for (i = 0; i <= METRICS_TEXT_MAX_LABELS; i++)
		p += snprintf(p, 32, "l%zu=\"v\",", i);
	p += snprintf(p, 8, "} 1\n");
	assert_int_equal(metrics_text_parse(text, (size_t)(p - text), NULL, NULL, NULL), -E2BIG);
	free(text);
	/* Too many samples. */
	text = malloc((METRICS_TEXT_MAX_SAMPLES + 1) * 4);
	assert_non_null(text);
	for (i = 0; i <= METRICS_TEXT_MAX_SAMPLES; i++)
		memcpy(text + i * 4, "a 1\n", 4);
	rc = metrics_text_parse(text, METRICS_TEXT_MAX_SAMPLES * 4, NULL, NULL, NULL);
	assert_int_equal(rc, METRICS_TEXT_MAX_SAMPLES);
	rc = metrics_text_parse(text, (METRICS_TEXT_MAX_SAMPLES + 1) * 4, NULL, NULL, NULL);
	assert_int_equal(rc, -E2BIG);
	free(text);
}

static void test_callback_stops(void **state)
{
	struct got g;
	char text[16 * 4 + 1];
	size_t i;

	(void)state;
	for (i = 0; i < 16; i++)
		memcpy(text + i * 4, "a 1\n", 4);
	text[64] = '\0';
	assert_int_equal(parse(text, &g, NULL), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lxd_text),  cmocka_unit_test(test_special_values),
	    cmocka_unit_test(test_malformed), cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_callback_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
