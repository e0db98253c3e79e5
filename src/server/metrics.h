/*
 * metrics.h - a small registry of counters, gauges and histograms, and its
 * rendering as Prometheus text exposition 0.0.4 or OpenMetrics 1.0.
 *
 * A family is a metric name with fixed label names; a series is one set of
 * label values of a family. Series are made on first use and live as long
 * as the registry; each family has a cap on its series, chosen when it is
 * made, so a label fed from outside can never grow the registry without
 * bound: past the cap, every new set of values lands in one series whose
 * values are all METRICS_OTHER.
 *
 * Hot path: a caller looks its series up once (or per event, for labels
 * that change) and then updating it is one integer add. Families are of
 * two kinds: plain ones are touched only on the loop thread (updates are
 * plain adds, no lock anywhere); METRICS_F_ATOMIC ones may be updated and
 * looked up from any thread (relaxed atomic adds; the lookup takes the
 * family's mutex). Families are made, and the registry rendered and freed,
 * on the loop thread.
 *
 * Collectors run just before each rendering, on the loop thread, to bring
 * values kept elsewhere (the tunnel registry, /proc) into gauges.
 */
#ifndef LXCM_METRICS_H
#define LXCM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

enum metrics_format {
	METRICS_TEXT_004,    /* text/plain; version=0.0.4 */
	METRICS_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
};

#define METRICS_MAX_LABELS 4
#define METRICS_MAX_BUCKETS 20
#define METRICS_LABEL_VALUE_MAX 128 /* longer values are cut */
#define METRICS_OTHER "_other"	    /* the values of the series past a family's cap */
#define METRICS_F_ATOMIC 0x1	    /* updated from other threads than the loop's */
#define METRICS_F_FLOAT 0x2	    /* a counter of fractions, set with metrics_set (CPU seconds) */
#define METRICS_RENDER_MAX (64 << 20)

#define METRICS_CONTENT_TYPE_004 "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_CONTENT_TYPE_OM "application/openmetrics-text; version=1.0.0; charset=utf-8"

struct metrics;
struct metrics_family;
struct metrics_series;

/* The shape of a family. Strings are not copied: they must outlive the registry. */
struct metrics_def {
	enum metrics_type type;
	/* For counters the full name with "_total", as 0.0.4 wants it;
	 * OpenMetrics gets the family name without it. */
	const char *name;
	const char *help;
	const char *labels[METRICS_MAX_LABELS + 1]; /* NULL-terminated */
	const double *buckets;			    /* histograms: upper bounds, ascending */
	size_t nbuckets;			    /* at most METRICS_MAX_BUCKETS, +Inf implied */
	size_t max_series;			    /* 0: 1 (no labels) */
	unsigned flags;				    /* METRICS_F_* */
};

typedef void (*metrics_collect_fn)(struct metrics *m, void *data);

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Adds a family. NULL on bad input (name, labels, buckets) or no memory. */
struct metrics_family *metrics_family_new(struct metrics *m, const struct metrics_def *def);

/*
 * The series of these label values (as many as the family has labels;
 * NULL when it has none), made on first use. NULL only without memory.
 * Values longer than METRICS_LABEL_VALUE_MAX are cut.
 */
struct metrics_series *metrics_series(struct metrics_family *f, const char *const *values);
/* The one series of a family without labels. */
struct metrics_series *metrics_series0(struct metrics_family *f);
size_t metrics_family_series_count(const struct metrics_family *f);

/* Updates. Each accepts NULL (a series that could not be made) and does nothing. */
void metrics_inc(struct metrics_series *s, uint64_t n);	    /* counters */
void metrics_counter_set(struct metrics_series *s, uint64_t v); /* mirrors a count kept elsewhere */
void metrics_set(struct metrics_series *s, double v);	    /* gauges */
void metrics_add(struct metrics_series *s, double d);	    /* gauges */
void metrics_observe(struct metrics_series *s, double v);   /* histograms */

/* Value reads, for tests and collectors. */
uint64_t metrics_counter_value(const struct metrics_series *s);
double metrics_gauge_value(const struct metrics_series *s);
uint64_t metrics_histogram_count(const struct metrics_series *s);

/* Runs fn(m, data) before every rendering. 0 or -ENOMEM. */
int metrics_on_collect(struct metrics *m, metrics_collect_fn fn, void *data);

/* Runs the collectors and appends every family to out. 0 or -ENOMEM / -E2BIG. */
int metrics_render(struct metrics *m, enum metrics_format fmt, struct buf *out);

/*
 * The format an Accept header asks for: OpenMetrics when it names
 * application/openmetrics-text (with a q above 0), 0.0.4 otherwise.
 */
enum metrics_format metrics_format_for_accept(const char *accept, size_t len);

#endif
