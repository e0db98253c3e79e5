/*
 * remote_write_encode.c - the server_metrics of one heartbeat as one
 * Prometheus remote-write body: every sample of every member's exposition
 * text becomes a TimeSeries labelled with cluster and member, packed with
 * protobuf-c (remote_write.proto) and compressed with snappy's block
 * format. Pure computation, no I/O: remote_write.c runs it on libuv's
 * thread pool.
 *
 * Each text is parsed twice: a first pass checks it (a malformed text is
 * counted and left out whole) and sizes one arena for everything, the
 * second fills it. So a heartbeat of 10,000 samples costs a handful of
 * allocations, not one per label.
 *
 * The exposition's own "cluster" or "member" labels are kept as
 * "exported_cluster" / "exported_member", as Prometheus does for scraped
 * labels that clash with its target labels.
 */
#include "server/remote_write.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remote_write.pb-c.h"
#include "server/metrics_text.h"

#define RW_EXTRA_LABELS 3 /* __name__, cluster, member */
#define RW_EXPORTED "exported_"

typedef Lxcm__Prometheus__TimeSeries rw_series;
typedef Lxcm__Prometheus__Label rw_label;
typedef Lxcm__Prometheus__Sample rw_sample;

/* What pass one counts, and where pass two writes. */
struct rw_build {
	size_t nseries, nlabels, nbytes;
	/* pass two */
	rw_series *series;
	rw_series **series_p;
	rw_sample *samples;
	rw_sample **samples_p;
	rw_label *labels;
	rw_label **labels_p;
	char *arena;
	size_t iseries, ilabel, ibyte;
	const char *cluster, *member;
	int64_t now_ms;
};

static int rw_clashes(struct slice name)
{
	return slice_eq(name, LIT("cluster")) || slice_eq(name, LIT("member"));
}

static int rw_count(const struct metrics_text_sample *s, void *arg)
{
	struct rw_build *b = arg;
	size_t i;

	b->nseries++;
	b->nlabels += s->nlabels + RW_EXTRA_LABELS;
	b->nbytes += s->name.len + 1;
	for (i = 0; i < s->nlabels; i++)
		b->nbytes += s->labels[i].name.len + s->labels[i].value.len + 2 +
			     (rw_clashes(s->labels[i].name) ? strlen(RW_EXPORTED) : 0);
	return 0;
}

/* Copies into the arena, sized by pass one; returns the NUL-terminated copy. */
static char *rw_copy(struct rw_build *b, const char *prefix, struct slice s)
{
	char *dst = b->arena + b->ibyte;
	size_t pl = prefix ? strlen(prefix) : 0;

	if (pl)
		memcpy(dst, prefix, pl);
	if (s.len)
		memcpy(dst + pl, s.base, s.len);
	dst[pl + s.len] = '\0';
	b->ibyte += pl + s.len + 1;
	return dst;
}

static rw_label *rw_label_add(struct rw_build *b, char *name, char *value)
{
	rw_label *l = &b->labels[b->ilabel];

	lxcm__prometheus__label__init(l);
	l->name = name;
	l->value = value;
	b->labels_p[b->ilabel++] = l;
	return l;
}

static int rw_label_cmp(const void *a, const void *b)
{
	return strcmp((*(rw_label *const *)a)->name, (*(rw_label *const *)b)->name);
}

static int rw_fill(const struct metrics_text_sample *s, void *arg)
{
	struct rw_build *b = arg;
	rw_series *ts = &b->series[b->iseries];
	rw_sample *sm = &b->samples[b->iseries];
	size_t i, first = b->ilabel;

	lxcm__prometheus__time_series__init(ts);
	lxcm__prometheus__sample__init(sm);
	sm->value = s->value;
	sm->timestamp = s->has_timestamp ? s->timestamp_ms : b->now_ms;
	b->samples_p[b->iseries] = sm;
	ts->samples = &b->samples_p[b->iseries];
	ts->n_samples = 1;
	rw_label_add(b, (char *)"__name__", rw_copy(b, NULL, s->name));
	rw_label_add(b, (char *)"cluster", (char *)b->cluster);
	rw_label_add(b, (char *)"member", (char *)b->member);
	for (i = 0; i < s->nlabels; i++) {
		const char *prefix = rw_clashes(s->labels[i].name) ? RW_EXPORTED : NULL;
		char *name = rw_copy(b, prefix, s->labels[i].name);

		rw_label_add(b, name, rw_copy(b, NULL, s->labels[i].value));
	}
	ts->labels = &b->labels_p[first];
	ts->n_labels = b->ilabel - first;
	/* The spec wants labels sorted by name. */
	qsort(ts->labels, ts->n_labels, sizeof(*ts->labels), rw_label_cmp);
	b->series_p[b->iseries++] = ts;
	return 0;
}

static int rw_alloc(struct rw_build *b)
{
	size_t n = b->nseries ? b->nseries : 1, nl = b->nlabels ? b->nlabels : 1;

	b->series = calloc(n, sizeof(*b->series));
	b->series_p = calloc(n, sizeof(*b->series_p));
	b->samples = calloc(n, sizeof(*b->samples));
	b->samples_p = calloc(n, sizeof(*b->samples_p));
	b->labels = calloc(nl, sizeof(*b->labels));
	b->labels_p = calloc(nl, sizeof(*b->labels_p));
	b->arena = malloc(b->nbytes + 1);
	return b->series && b->series_p && b->samples && b->samples_p && b->labels &&
			       b->labels_p && b->arena
		       ? 0
		       : -ENOMEM;
}

static void rw_build_free(struct rw_build *b)
{
	free(b->series);
	free(b->series_p);
	free(b->samples);
	free(b->samples_p);
	free(b->labels);
	free(b->labels_p);
	free(b->arena);
}

/* Packs and compresses what pass two built into out->body. */
static int rw_pack(struct rw_build *b, struct remote_write_batch *out)
{
	Lxcm__Prometheus__WriteRequest wr = LXCM__PROMETHEUS__WRITE_REQUEST__INIT;
	size_t len, clen;
	uint8_t *raw;
	char *body;

	wr.n_timeseries = b->iseries;
	wr.timeseries = b->series_p;
	len = lxcm__prometheus__write_request__get_packed_size(&wr);
	raw = malloc(len ? len : 1);
	clen = snappy_max_compressed_length(len);
	body = malloc(clen ? clen : 1);
	if (raw == NULL || body == NULL) {
		free(raw);
		free(body);
		return -ENOMEM;
	}
	lxcm__prometheus__write_request__pack(&wr, raw);
	if (snappy_compress((const char *)raw, len, body, &clen) != SNAPPY_OK) {
		free(raw);
		free(body);
		return -EIO;
	}
	free(raw);
	out->body = body;
	out->len = clen;
	return 0;
}

int remote_write_encode(const char *cluster, const struct remote_write_text *texts, size_t n,
			int64_t now_ms, struct remote_write_batch *out)
{
	struct rw_build b;
	long *ok = calloc(n ? n : 1, sizeof(*ok));
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&b, 0, sizeof(b));
	if (ok == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct rw_build one = {0};

		ok[i] = metrics_text_parse(texts[i].text, texts[i].len, rw_count, &one, NULL);
		if (ok[i] < 0) {
			out->malformed++;
			continue;
		}
		b.nseries += one.nseries;
		b.nlabels += one.nlabels;
		b.nbytes += one.nbytes;
	}
	rc = b.nseries ? rw_alloc(&b) : 0;
	b.cluster = cluster;
	b.now_ms = now_ms;
	for (i = 0; rc == 0 && b.nseries && i < n; i++) {
		if (ok[i] < 0)
			continue;
		b.member = texts[i].member;
		metrics_text_parse(texts[i].text, texts[i].len, rw_fill, &b, NULL);
	}
	if (rc == 0 && b.iseries)
		rc = rw_pack(&b, out);
	out->nsamples = b.iseries;
	rw_build_free(&b);
	free(ok);
	return rc;
}
