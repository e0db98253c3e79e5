/* test_metrics.c - the metrics registry and its text renderings. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/metrics.h"

static char *render(struct metrics *m, enum metrics_format fmt)
{
	struct buf b;

	buf_init(&b, METRICS_RENDER_MAX);
	assert_int_equal(metrics_render(m, fmt, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	return b.data;
}

static void test_counter_gauge_text(void **state)
{
	static const struct metrics_def reqs = {
	    METRICS_COUNTER, "t_requests_total", "Requests.", {"route", "code", NULL}, NULL, 0, 8, 0};
	static const struct metrics_def temp = {METRICS_GAUGE, "t_temp_celsius", "A \\ and\na line.",
						{NULL}, NULL, 0, 0, 0};
	struct metrics *m = metrics_new();
	struct metrics_family *f = metrics_family_new(m, &reqs), *g = metrics_family_new(m, &temp);
	const char *a[] = {"/1.0", "2xx"}, *b[] = {"/x\"y\\z\n", "4xx"};
	char *out;

	(void)state;
	assert_non_null(f);
	assert_non_null(g);
	metrics_inc(metrics_series(f, a), 2);
	metrics_inc(metrics_series(f, a), 1);
	metrics_inc(metrics_series(f, b), 1);
	metrics_set(metrics_series0(g), 21.5);
	metrics_add(metrics_series0(g), -1);
	assert_int_equal(metrics_counter_value(metrics_series(f, a)), 3);
	assert_true(metrics_gauge_value(metrics_series0(g)) == 20.5);
	out = render(m, METRICS_TEXT_004);
	assert_non_null(strstr(out, "# HELP t_requests_total Requests.\n"
				    "# TYPE t_requests_total counter\n"
				    "t_requests_total{route=\"/1.0\",code=\"2xx\"} 3\n"
				    "t_requests_total{route=\"/x\\\"y\\\\z\\n\",code=\"4xx\"} 1\n"));
	assert_non_null(strstr(out, "# HELP t_temp_celsius A \\\\ and\\na line.\n"
				    "# TYPE t_temp_celsius gauge\nt_temp_celsius 20.5\n"));
	assert_null(strstr(out, "# EOF"));
	free(out);
	out = render(m, METRICS_OPENMETRICS);
	assert_non_null(strstr(out, "# TYPE t_requests counter\n"
				    "t_requests_total{route=\"/1.0\",code=\"2xx\"} 3\n"));
	assert_non_null(strstr(out, "# EOF\n"));
	assert_int_equal(strlen(strstr(out, "# EOF\n")), 6);
	free(out);
	metrics_free(m);
	metrics_free(NULL);
}

static void test_histogram(void **state)
{
	static const double bk[] = {0.1, 1, 10};
	static const struct metrics_def h = {
	    METRICS_HISTOGRAM, "t_lat_seconds", "Latency.", {"op", NULL}, bk, 3, 4, 0};
	struct metrics *m = metrics_new();
	struct metrics_family *f = metrics_family_new(m, &h);
	const char *op[] = {"get"};
	struct metrics_series *s = metrics_series(f, op);
	char *out;

	(void)state;
	metrics_observe(s, 0.05);
	metrics_observe(s, 0.1); /* le is inclusive */
	metrics_observe(s, 5);
	metrics_observe(s, 100);
	metrics_observe(s, NAN); /* ignored */
	assert_int_equal(metrics_histogram_count(s), 4);
	out = render(m, METRICS_TEXT_004);
	assert_non_null(strstr(out, "t_lat_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
				    "t_lat_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
				    "t_lat_seconds_bucket{op=\"get\",le=\"10\"} 3\n"
				    "t_lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
				    "t_lat_seconds_sum{op=\"get\"} 105.15\n"
				    "t_lat_seconds_count{op=\"get\"} 4\n"));
	free(out);
	metrics_free(m);
}

static void test_bad_defs(void **state)
{
	static const double down[] = {1, 0.5};
	struct metrics *m = metrics_new();
	struct metrics_def d = {METRICS_COUNTER, "no_suffix", "x", {NULL}, NULL, 0, 0, 0};

	(void)state;
	assert_null(metrics_family_new(m, &d)); /* a counter must end in _total */
	d.name = "9bad_total";
	assert_null(metrics_family_new(m, &d));
	d.name = "ok_total";
	d.labels[0] = "le";
	assert_null(metrics_family_new(m, &d));
	d.labels[0] = "bad-label";
	assert_null(metrics_family_new(m, &d));
	d = (struct metrics_def){METRICS_HISTOGRAM, "h_seconds", "x", {NULL}, down, 2, 0, 0};
	assert_null(metrics_family_new(m, &d)); /* buckets must ascend */
	d.nbuckets = 0;
	assert_null(metrics_family_new(m, &d));
	d = (struct metrics_def){METRICS_GAUGE, "dup", "x", {NULL}, NULL, 0, 0, 0};
	assert_non_null(metrics_family_new(m, &d));
	assert_null(metrics_family_new(m, &d));
	metrics_free(m);
}

/* A family's series are capped; the rest share one METRICS_OTHER series. */
static void test_cap(void **state)
{
	static const struct metrics_def d = {
	    METRICS_COUNTER, "t_c_total", "x", {"cluster", NULL}, NULL, 0, 3, 0};
	struct metrics *m = metrics_new();
	struct metrics_family *f = metrics_family_new(m, &d);
	char name[16], longv[400];
	const char *v[1] = {name};
	struct metrics_series *other = NULL;
	char *out;
	int i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		metrics_inc(metrics_series(f, v), 1);
	}
	assert_int_equal(metrics_family_series_count(f), 4);
	other = metrics_series(f, v);
	assert_int_equal(metrics_counter_value(other), 997);
	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	v[0] = longv;
	assert_ptr_equal(metrics_series(f, v), other);
	metrics_inc(other, 1);
	out = render(m, METRICS_TEXT_004);
	assert_non_null(strstr(out, "t_c_total{cluster=\"" METRICS_OTHER "\"} 998\n"));
	free(out);
	metrics_free(m);
}

struct thr {
	struct metrics_family *f;
	int id;
};

static void *hammer(void *arg)
{
	struct thr *t = arg;
	const char *ops[] = {t->id % 2 ? "odd" : "even"};
	int i;

	for (i = 0; i < 20000; i++)
		metrics_observe(metrics_series(t->f, ops), 0.001);
	return NULL;
}

/* METRICS_F_ATOMIC families take updates from several threads at once. */
static void test_atomic(void **state)
{
	static const double bk[] = {0.01};
	static const struct metrics_def d = {METRICS_HISTOGRAM, "t_store_seconds", "x", {"op", NULL},
					     bk, 1, 8, METRICS_F_ATOMIC};
	struct metrics *m = metrics_new();
	struct thr t[4];
	pthread_t th[4];
	const char *even[] = {"even"};
	int i;

	(void)state;
	t[0].f = metrics_family_new(m, &d);
	assert_non_null(t[0].f);
	for (i = 0; i < 4; i++) {
		t[i].f = t[0].f;
		t[i].id = i;
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &t[i]), 0);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(metrics_histogram_count(metrics_series(t[0].f, even)), 40000);
	assert_true(fabs(metrics_gauge_value(metrics_series(t[0].f, even)) - 40.0) < 1e-6);
	metrics_free(m);
}

static void collect(struct metrics *m, void *data)
{
	(void)m;
	metrics_set(data, 42);
}

static void test_collector(void **state)
{
	static const struct metrics_def d = {METRICS_GAUGE, "t_up", "x", {NULL}, NULL, 0, 0, 0};
	struct metrics *m = metrics_new();
	struct metrics_series *s = metrics_series0(metrics_family_new(m, &d));
	char *out;

	(void)state;
	assert_int_equal(metrics_on_collect(m, collect, s), 0);
	out = render(m, METRICS_TEXT_004);
	assert_non_null(strstr(out, "\nt_up 42\n"));
	free(out);
	metrics_free(m);
}

static void test_accept(void **state)
{
#define FMT(s) metrics_format_for_accept((s), strlen(s))
	(void)state;
	assert_int_equal(metrics_format_for_accept(NULL, 0), METRICS_TEXT_004);
	assert_int_equal(FMT("*/*"), METRICS_TEXT_004);
	assert_int_equal(FMT("text/plain;version=0.0.4"), METRICS_TEXT_004);
	assert_int_equal(FMT("application/openmetrics-text;version=1.0.0,"
			     "application/openmetrics-text;version=0.0.1;q=0.75,"
			     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
			 METRICS_OPENMETRICS);
	assert_int_equal(FMT(" Application/OpenMetrics-Text "), METRICS_OPENMETRICS);
	assert_int_equal(FMT("application/openmetrics-text; q=0"), METRICS_TEXT_004);
	assert_int_equal(FMT("application/openmetrics-text; q=0.000"), METRICS_TEXT_004);
	assert_int_equal(FMT("application/openmetrics-text;q=0.1"), METRICS_OPENMETRICS);
	assert_int_equal(FMT("application/openmetrics-textx"), METRICS_TEXT_004);
#undef FMT
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counter_gauge_text), cmocka_unit_test(test_histogram),
	    cmocka_unit_test(test_bad_defs),	       cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_atomic),	       cmocka_unit_test(test_collector),
	    cmocka_unit_test(test_accept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
