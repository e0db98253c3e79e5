/*
 * metrics.c - the metrics registry and its text renderings (metrics.h).
 *
 * Values are kept as the thread model of their family allows: plain
 * integers and doubles for loop-only families, the same words updated
 * with relaxed __atomic builtins for METRICS_F_ATOMIC ones (a double is
 * kept as its bits and added by compare-and-swap). Relaxed is enough: a
 * scrape needs each number to be whole, not an order between them.
 *
 * Histogram buckets are kept per bucket and summed into Prometheus'
 * cumulative "le" buckets when rendered.
 */
#include "server/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/slice.h"

struct metrics_series {
	struct metrics_family *f;
	char *values[METRICS_MAX_LABELS];
	uint64_t count; /* counters; histograms: observations */
	uint64_t dbits; /* gauges: the value; histograms: the sum (double bits) */
	uint64_t *buckets;
};

struct metrics_family {
	struct metrics *m;
	struct metrics_def def;
	size_t nlabels;
	struct metrics_series **series; /* def.max_series + 1 slots: the last is METRICS_OTHER's */
	size_t nseries;
	pthread_mutex_t lock; /* METRICS_F_ATOMIC families: lookup and rendering */
	struct metrics_family *next;
};

struct metrics_collector {
	metrics_collect_fn fn;
	void *data;
	struct metrics_collector *next;
};

struct metrics {
	struct metrics_family *families, **tail;
	struct metrics_collector *collectors;
};

static double metrics_bits_double(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t metrics_double_bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

static int metrics_is_atomic(const struct metrics_series *s)
{
	return (s->f->def.flags & METRICS_F_ATOMIC) != 0;
}

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m)
		m->tail = &m->families;
	return m;
}

static void metrics_series_free(struct metrics_series *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < METRICS_MAX_LABELS; i++)
		free(s->values[i]);
	free(s->buckets);
	free(s);
}

static void metrics_family_free(struct metrics_family *f)
{
	size_t i;

	for (i = 0; i <= f->def.max_series; i++)
		metrics_series_free(f->series[i]);
	free(f->series);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void metrics_free(struct metrics *m)
{
	struct metrics_family *f, *fn;
	struct metrics_collector *c, *cn;

	if (m == NULL)
		return;
	for (f = m->families; f; f = fn) {
		fn = f->next;
		metrics_family_free(f);
	}
	for (c = m->collectors; c; c = cn) {
		cn = c->next;
		free(c);
	}
	free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, no ':' for label names. */
static int metrics_valid_name(const char *s, int colon)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (i = 0; s[i]; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (colon && c == ':')))
			return 0;
	}
	return 1;
}

static int metrics_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

static int metrics_def_check(const struct metrics_def *d, size_t *nlabels)
{
	size_t i;

	if (!metrics_valid_name(d->name, 1) || d->help == NULL)
		return -EINVAL;
	if (d->type == METRICS_COUNTER && !metrics_has_suffix(d->name, "_total"))
		return -EINVAL;
	for (i = 0; i <= METRICS_MAX_LABELS && d->labels[i]; i++)
		if (i == METRICS_MAX_LABELS || !metrics_valid_name(d->labels[i], 0) ||
		    strcmp(d->labels[i], "le") == 0)
			return -EINVAL;
	*nlabels = i;
	if (d->type != METRICS_HISTOGRAM)
		return 0;
	if (d->nbuckets == 0 || d->nbuckets > METRICS_MAX_BUCKETS || d->buckets == NULL)
		return -EINVAL;
	for (i = 1; i < d->nbuckets; i++)
		if (!(d->buckets[i] > d->buckets[i - 1]))
			return -EINVAL;
	return 0;
}

struct metrics_family *metrics_family_new(struct metrics *m, const struct metrics_def *def)
{
	struct metrics_family *f;
	size_t nlabels;

	if (m == NULL || def == NULL || metrics_def_check(def, &nlabels) < 0)
		return NULL;
	for (f = m->families; f; f = f->next)
		if (strcmp(f->def.name, def->name) == 0)
			return NULL; /* one family per name, or the exposition is invalid */
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->m = m;
	f->def = *def;
	f->nlabels = nlabels;
	if (nlabels == 0 || f->def.max_series == 0)
		f->def.max_series = 1;
	f->series = calloc(f->def.max_series + 1, sizeof(*f->series));
	if (f->series == NULL || pthread_mutex_init(&f->lock, NULL) != 0) {
		free(f->series);
		free(f);
		return NULL;
	}
	*m->tail = f;
	m->tail = &f->next;
	return f;
}

static struct metrics_series *metrics_series_new(struct metrics_family *f,
						 const char *const *values)
{
	struct metrics_series *s = calloc(1, sizeof(*s));
	size_t i, n;

	if (s == NULL)
		return NULL;
	s->f = f;
	for (i = 0; i < f->nlabels; i++) {
		const char *v = values ? values[i] : METRICS_OTHER;

		n = strnlen(v ? v : "", METRICS_LABEL_VALUE_MAX);
		s->values[i] = slice_dup(slice_make(v ? v : "", n));
		if (s->values[i] == NULL)
			goto fail;
	}
	if (f->def.type == METRICS_HISTOGRAM) {
		s->buckets = calloc(f->def.nbuckets + 1, sizeof(*s->buckets));
		if (s->buckets == NULL)
			goto fail;
	}
	return s;
fail:
	metrics_series_free(s);
	return NULL;
}

/* Values are compared as stored: cut at METRICS_LABEL_VALUE_MAX. */
static int metrics_series_matches(const struct metrics_series *s, const char *const *values)
{
	size_t i, n;

	for (i = 0; i < s->f->nlabels; i++) {
		const char *v = values[i] ? values[i] : "";

		n = strnlen(v, METRICS_LABEL_VALUE_MAX);
		if (strlen(s->values[i]) != n || memcmp(s->values[i], v, n) != 0)
			return 0;
	}
	return 1;
}

/* Finds or makes the series; past the cap, the METRICS_OTHER one. */
static struct metrics_series *metrics_series_locked(struct metrics_family *f,
						    const char *const *values)
{
	size_t i, cap = f->def.max_series;

	if (f->nlabels == 0) {
		if (f->series[0] == NULL && (f->series[0] = metrics_series_new(f, NULL)) != NULL)
			f->nseries = 1;
		return f->series[0];
	}
	for (i = 0; i < f->nseries; i++)
		if (metrics_series_matches(f->series[i], values))
			return f->series[i];
	if (f->nseries < cap) {
		f->series[f->nseries] = metrics_series_new(f, values);
		return f->series[f->nseries] ? f->series[f->nseries++] : NULL;
	}
	if (f->series[cap] == NULL)
		f->series[cap] = metrics_series_new(f, NULL);
	return f->series[cap];
}

struct metrics_series *metrics_series(struct metrics_family *f, const char *const *values)
{
	struct metrics_series *s;

	if (f == NULL)
		return NULL;
	if (!(f->def.flags & METRICS_F_ATOMIC))
		return metrics_series_locked(f, values);
	pthread_mutex_lock(&f->lock);
	s = metrics_series_locked(f, values);
	pthread_mutex_unlock(&f->lock);
	return s;
}

struct metrics_series *metrics_series0(struct metrics_family *f)
{
	return metrics_series(f, NULL);
}

size_t metrics_family_series_count(const struct metrics_family *f)
{
	return f->nseries + (f->nlabels && f->series[f->def.max_series] ? 1 : 0);
}

/* ---- updates ---- */

void metrics_inc(struct metrics_series *s, uint64_t n)
{
	if (s == NULL)
		return;
	if (metrics_is_atomic(s))
		__atomic_fetch_add(&s->count, n, __ATOMIC_RELAXED);
	else
		s->count += n;
}

/* Stores a whole word as the series' family allows. */
static void metrics_store(const struct metrics_series *s, uint64_t *word, uint64_t v)
{
	if (metrics_is_atomic(s))
		__atomic_store_n(word, v, __ATOMIC_RELAXED);
	else
		*word = v;
}

void metrics_counter_set(struct metrics_series *s, uint64_t v)
{
	if (s != NULL)
		metrics_store(s, &s->count, v);
}

void metrics_set(struct metrics_series *s, double v)
{
	if (s != NULL)
		metrics_store(s, &s->dbits, metrics_double_bits(v));
}

static void metrics_add_bits(struct metrics_series *s, double d)
{
	uint64_t old, want;

	if (!metrics_is_atomic(s)) {
		s->dbits = metrics_double_bits(metrics_bits_double(s->dbits) + d);
		return;
	}
	old = __atomic_load_n(&s->dbits, __ATOMIC_RELAXED);
	do {
		want = metrics_double_bits(metrics_bits_double(old) + d);
	} while (!__atomic_compare_exchange_n(&s->dbits, &old, want, 1, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
}

void metrics_add(struct metrics_series *s, double d)
{
	if (s != NULL)
		metrics_add_bits(s, d);
}

void metrics_observe(struct metrics_series *s, double v)
{
	const struct metrics_def *d;
	size_t i;

	if (s == NULL || s->buckets == NULL || isnan(v))
		return;
	d = &s->f->def;
	for (i = 0; i < d->nbuckets && v > d->buckets[i]; i++)
		;
	if (metrics_is_atomic(s)) {
		__atomic_fetch_add(&s->buckets[i], 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED);
	} else {
		s->buckets[i]++;
		s->count++;
	}
	metrics_add_bits(s, v);
}

uint64_t metrics_counter_value(const struct metrics_series *s)
{
	return s ? __atomic_load_n(&s->count, __ATOMIC_RELAXED) : 0;
}

double metrics_gauge_value(const struct metrics_series *s)
{
	return s ? metrics_bits_double(__atomic_load_n(&s->dbits, __ATOMIC_RELAXED)) : 0;
}

uint64_t metrics_histogram_count(const struct metrics_series *s)
{
	return metrics_counter_value(s);
}

int metrics_on_collect(struct metrics *m, metrics_collect_fn fn, void *data)
{
	struct metrics_collector *c = calloc(1, sizeof(*c)), **pp;

	if (c == NULL)
		return -ENOMEM;
	c->fn = fn;
	c->data = data;
	for (pp = &m->collectors; *pp; pp = &(*pp)->next)
		;
	*pp = c;
	return 0;
}

/* ---- rendering ---- */

struct metrics_out {
	struct buf *b;
	enum metrics_format fmt;
	int err;
};

static void metrics_put(struct metrics_out *o, const char *s, size_t n)
{
	if (o->err == 0 && buf_append(o->b, s, n) < 0)
		o->err = -E2BIG;
}

static void metrics_puts(struct metrics_out *o, const char *s)
{
	metrics_put(o, s, strlen(s));
}

/* Escapes \ and newline (and " in label values, and in OpenMetrics help). */
static void metrics_put_escaped(struct metrics_out *o, const char *s, int quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" :
				  (*s == '"' && quote) ? "\\\"" : NULL;

		if (esc == NULL)
			continue;
		metrics_put(o, run, (size_t)(s - run));
		metrics_puts(o, esc);
		run = s + 1;
	}
	metrics_put(o, run, (size_t)(s - run));
}

/* A float as both formats read it: +Inf, -Inf, NaN, or shortest-ish decimal. */
static void metrics_put_double(struct metrics_out *o, double v)
{
	char num[40];
	int n;

	if (isnan(v)) {
		metrics_puts(o, "NaN");
		return;
	}
	if (isinf(v)) {
		metrics_puts(o, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	n = snprintf(num, sizeof(num), "%.15g", v);
	if (n < 0 || (size_t)n >= sizeof(num)) {
		o->err = -EINVAL;
		return;
	}
	metrics_put(o, num, (size_t)n);
}

static void metrics_put_u64(struct metrics_out *o, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);

	if (n < 0 || (size_t)n >= sizeof(num)) {
		o->err = -EINVAL;
		return;
	}
	metrics_put(o, num, (size_t)n);
}

/* {a="x",b="y"} plus an optional le; nothing when there is no label at all. */
static void metrics_put_labels(struct metrics_out *o, const struct metrics_series *s,
			       const double *le)
{
	size_t i, n = s->f->nlabels;

	if (n == 0 && le == NULL)
		return;
	metrics_puts(o, "{");
	for (i = 0; i < n; i++) {
		if (i)
			metrics_puts(o, ",");
		metrics_puts(o, s->f->def.labels[i]);
		metrics_puts(o, "=\"");
		metrics_put_escaped(o, s->values[i], 1);
		metrics_puts(o, "\"");
	}
	if (le) {
		metrics_puts(o, n ? ",le=\"" : "le=\"");
		metrics_put_double(o, *le);
		metrics_puts(o, "\"");
	}
	metrics_puts(o, "}");
}

static void metrics_put_sample_name(struct metrics_out *o, const struct metrics_family *f,
				    const char *suffix)
{
	metrics_puts(o, f->def.name);
	metrics_puts(o, suffix);
}

static void metrics_render_histogram(struct metrics_out *o, const struct metrics_series *s)
{
	const struct metrics_def *d = &s->f->def;
	uint64_t cum = 0;
	double inf = INFINITY;
	size_t i;

	for (i = 0; i <= d->nbuckets; i++) {
		cum += __atomic_load_n(&s->buckets[i], __ATOMIC_RELAXED);
		metrics_put_sample_name(o, s->f, "_bucket");
		metrics_put_labels(o, s, i < d->nbuckets ? &d->buckets[i] : &inf);
		metrics_puts(o, " ");
		metrics_put_u64(o, cum);
		metrics_puts(o, "\n");
	}
	metrics_put_sample_name(o, s->f, "_sum");
	metrics_put_labels(o, s, NULL);
	metrics_puts(o, " ");
	metrics_put_double(o, metrics_gauge_value(s));
	metrics_puts(o, "\n");
	metrics_put_sample_name(o, s->f, "_count");
	metrics_put_labels(o, s, NULL);
	metrics_puts(o, " ");
	/* The count is the +Inf bucket: the two can never disagree in one scrape. */
	metrics_put_u64(o, cum);
	metrics_puts(o, "\n");
}

static void metrics_render_series(struct metrics_out *o, const struct metrics_series *s)
{
	if (s->f->def.type == METRICS_HISTOGRAM) {
		metrics_render_histogram(o, s);
		return;
	}
	metrics_puts(o, s->f->def.name);
	metrics_put_labels(o, s, NULL);
	metrics_puts(o, " ");
	if (s->f->def.type == METRICS_COUNTER && !(s->f->def.flags & METRICS_F_FLOAT))
		metrics_put_u64(o, metrics_counter_value(s));
	else
		metrics_put_double(o, metrics_gauge_value(s));
	metrics_puts(o, "\n");
}

/* The family's name on HELP and TYPE lines: OpenMetrics drops a counter's _total. */
static void metrics_put_family_name(struct metrics_out *o, const struct metrics_family *f)
{
	size_t n = strlen(f->def.name);

	if (o->fmt == METRICS_OPENMETRICS && f->def.type == METRICS_COUNTER)
		n -= strlen("_total");
	metrics_put(o, f->def.name, n);
}

static void metrics_render_family(struct metrics_out *o, struct metrics_family *f)
{
	static const char *types[] = {"counter", "gauge", "histogram"};
	size_t i, n;

	metrics_puts(o, "# HELP ");
	metrics_put_family_name(o, f);
	metrics_puts(o, " ");
	metrics_put_escaped(o, f->def.help, o->fmt == METRICS_OPENMETRICS);
	metrics_puts(o, "\n# TYPE ");
	metrics_put_family_name(o, f);
	metrics_puts(o, " ");
	metrics_puts(o, types[f->def.type]);
	metrics_puts(o, "\n");
	n = f->def.max_series;
	for (i = 0; i <= n; i++)
		if (f->series[i])
			metrics_render_series(o, f->series[i]);
}

int metrics_render(struct metrics *m, enum metrics_format fmt, struct buf *out)
{
	struct metrics_out o = {out, fmt, 0};
	struct metrics_collector *c;
	struct metrics_family *f;

	for (c = m->collectors; c; c = c->next)
		c->fn(m, c->data);
	for (f = m->families; f && o.err == 0; f = f->next) {
		if (f->def.flags & METRICS_F_ATOMIC)
			pthread_mutex_lock(&f->lock);
		metrics_render_family(&o, f);
		if (f->def.flags & METRICS_F_ATOMIC)
			pthread_mutex_unlock(&f->lock);
	}
	if (fmt == METRICS_OPENMETRICS)
		metrics_puts(&o, "# EOF\n");
	return o.err;
}

/* ---- content negotiation ---- */

/* q=0 (or 0.0, 0.00, 0.000) refuses a media range; anything else accepts it. */
static int metrics_q_zero(struct slice params)
{
	const char *p = params.base, *end = params.base + params.len;

	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		struct slice prm = slice_trim_blanks(slice_make(p, (size_t)((semi ? semi : end) - p)));
		size_t i;

		if (prm.len >= 3 && (prm.base[0] == 'q' || prm.base[0] == 'Q') && prm.base[1] == '=') {
			for (i = 2; i < prm.len && (prm.base[i] == '0' || prm.base[i] == '.'); i++)
				;
			return i == prm.len;
		}
		p = semi ? semi + 1 : end;
	}
	return 0;
}

enum metrics_format metrics_format_for_accept(const char *accept, size_t len)
{
	const char *p = accept, *end = accept ? accept + len : NULL;

	while (p && p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;
		const char *semi = memchr(p, ';', (size_t)(stop - p));
		struct slice type = slice_trim_blanks(slice_make(p, (size_t)((semi ? semi : stop) - p)));

		if (slice_eq_nocase(type, LIT("application/openmetrics-text")) &&
		    !metrics_q_zero(semi ? slice_make(semi + 1, (size_t)(stop - semi - 1))
					 : SLICE_NULL))
			return METRICS_OPENMETRICS;
		p = comma ? comma + 1 : end;
	}
	return METRICS_TEXT_004;
}
