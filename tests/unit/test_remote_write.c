/* test_remote_write.c - the remote-write body of a heartbeat, decoded back. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <snappy-c.h>

#include "remote_write.pb-c.h"
#include "server/remote_write.h"

static Lxcm__Prometheus__WriteRequest *decode(const struct remote_write_batch *b)
{
	size_t len = 0;
	char *raw;
	Lxcm__Prometheus__WriteRequest *wr;

	assert_int_equal(snappy_uncompressed_length(b->body, b->len, &len), SNAPPY_OK);
	raw = malloc(len ? len : 1);
	assert_non_null(raw);
	assert_int_equal(snappy_uncompress(b->body, b->len, raw, &len), SNAPPY_OK);
	wr = lxcm__prometheus__write_request__unpack(NULL, len, (const uint8_t *)raw);
	free(raw);
	assert_non_null(wr);
	return wr;
}

static const char *label(const Lxcm__Prometheus__TimeSeries *ts, const char *name)
{
	size_t i;

	for (i = 0; i < ts->n_labels; i++)
		if (strcmp(ts->labels[i]->name, name) == 0)
			return ts->labels[i]->value;
	return NULL;
}

static void test_encode(void **state)
{
	static const char good[] = "# TYPE lxd_procs_total gauge\n"
				   "lxd_procs_total{name=\"c1\",project=\"default\"} 12\n"
				   "up{cluster=\"theirs\",member=\"x\"} 1 1700000000123\n";
	static const char bad[] = "lxd_ok 1\nthis is not a sample\n";
	static const char other[] = "lxd_memory_bytes 4.5e+06\n";
	struct remote_write_text t[3] = {
	    {"m1", good, sizeof(good) - 1}, {"m2", bad, sizeof(bad) - 1}, {"m3", other, sizeof(other) - 1}};
	struct remote_write_batch b;
	Lxcm__Prometheus__WriteRequest *wr;
	const Lxcm__Prometheus__TimeSeries *ts;
	size_t i, k;

	(void)state;
	assert_int_equal(remote_write_encode("lxd1", t, 3, 1800000000000, &b), 0);
	assert_int_equal(b.malformed, 1);
	assert_int_equal(b.nsamples, 3);
	wr = decode(&b);
	assert_int_equal(wr->n_timeseries, 3);
	ts = wr->timeseries[0];
	assert_string_equal(label(ts, "__name__"), "lxd_procs_total");
	assert_string_equal(label(ts, "cluster"), "lxd1");
	assert_string_equal(label(ts, "member"), "m1");
	assert_string_equal(label(ts, "name"), "c1");
	assert_int_equal(ts->n_samples, 1);
	assert_true(ts->samples[0]->value == 12);
	assert_int_equal(ts->samples[0]->timestamp, 1800000000000);
	ts = wr->timeseries[1];
	assert_string_equal(label(ts, "cluster"), "lxd1");
	assert_string_equal(label(ts, "exported_cluster"), "theirs");
	assert_string_equal(label(ts, "exported_member"), "x");
	assert_int_equal(ts->samples[0]->timestamp, 1700000000123);
	ts = wr->timeseries[2];
	assert_string_equal(label(ts, "member"), "m3");
	assert_true(ts->samples[0]->value == 4.5e6);
	/* Labels are sorted by name in every series. */
	for (i = 0; i < wr->n_timeseries; i++)
		for (k = 1; k < wr->timeseries[i]->n_labels; k++)
			assert_true(strcmp(wr->timeseries[i]->labels[k - 1]->name,
					   wr->timeseries[i]->labels[k]->name) < 0);
	lxcm__prometheus__write_request__free_unpacked(wr, NULL);
	free(b.body);
}

static void test_nothing_to_send(void **state)
{
	struct remote_write_text t[2] = {{"m1", "", 0}, {"m2", "bad\n", 4}};
	struct remote_write_batch b;

	(void)state;
	assert_int_equal(remote_write_encode("c", t, 2, 1, &b), 0);
	assert_null(b.body);
	assert_int_equal(b.nsamples, 0);
	assert_int_equal(b.malformed, 1);
	assert_int_equal(remote_write_encode("c", NULL, 0, 1, &b), 0);
	assert_null(b.body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_nothing_to_send),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
