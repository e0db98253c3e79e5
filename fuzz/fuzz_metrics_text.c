/*
 * fuzz_metrics_text.c - Prometheus exposition text from clusters
 * (metrics_text_parse, src/server/metrics_text.c): the server_metrics of
 * every heartbeat, before remote write.
 *
 * Invariants: the answer is a sample count or one of the documented
 * errors; every sample has a valid name and its labels are within the
 * caps; a text that parses, written out again in canonical form (escapes,
 * %.17g values), parses to the same number of samples with the same names
 * and label values.
 */
#include <errno.h>
#include <math.h>

#include "common/buf.h"
#include "fuzz.h"
#include "server/metrics_text.h"

struct fz_ctx {
	struct buf out;
	size_t n;
	const struct buf *expect; /* second pass: the first pass's canonical text */
};

static void fz_put_escaped(struct buf *b, struct slice v)
{
	size_t i;

	for (i = 0; i < v.len; i++) {
		const char *e = v.base[i] == '\\' ? "\\\\" : v.base[i] == '"' ? "\\\"" :
				v.base[i] == '\n' ? "\\n" : NULL;

		if (e)
			buf_append_str(b, e);
		else
			buf_append(b, &v.base[i], 1);
	}
}

static int fz_sample(const struct metrics_text_sample *s, void *arg)
{
	struct fz_ctx *c = arg;
	size_t i;

	FUZZ_CHECK(s->name.len > 0 && s->name.len <= METRICS_TEXT_MAX_NAME);
	FUZZ_CHECK(s->nlabels <= METRICS_TEXT_MAX_LABELS);
	buf_append(&c->out, s->name.base, s->name.len);
	buf_append_str(&c->out, "{");
	for (i = 0; i < s->nlabels; i++) {
		FUZZ_CHECK(s->labels[i].name.len > 0);
		buf_append(&c->out, s->labels[i].name.base, s->labels[i].name.len);
		buf_append_str(&c->out, "=\"");
		fz_put_escaped(&c->out, s->labels[i].value);
		buf_append_str(&c->out, "\",");
	}
	buf_append_str(&c->out, "} ");
	if (isnan(s->value))
		buf_append_str(&c->out, "NaN");
	else if (isinf(s->value))
		buf_append_str(&c->out, s->value > 0 ? "+Inf" : "-Inf");
	else
		buf_printf(&c->out, "%.17g", s->value);
	if (s->has_timestamp)
		buf_printf(&c->out, " %lld", (long long)s->timestamp_ms);
	buf_append_str(&c->out, "\n");
	c->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_ctx a = {0}, b = {0};
	char *copy = malloc(size ? size : 1);
	long n, m;

	if (copy == NULL)
		abort();
	memcpy(copy, data, size); /* exact size: no NUL to lean on */
	buf_init(&a.out, 1 << 26);
	buf_init(&b.out, 1 << 26);
	n = metrics_text_parse(copy, size, fz_sample, &a, NULL);
	FUZZ_CHECK(n >= 0 || n == -EINVAL || n == -E2BIG || n == -ENOMEM);
	/* Canonical lines may be longer than the input's (values as %.17g): stay far from the cap. */
	if (n >= 0 && size < METRICS_TEXT_MAX_LINE / 4) {
		FUZZ_CHECK((size_t)n == a.n);
		m = metrics_text_parse(a.out.data, a.out.len, fz_sample, &b, NULL);
		FUZZ_CHECK(m == n);
		/* Canonical text is a fixed point. */
		FUZZ_CHECK(b.out.len == a.out.len &&
			   (a.out.len == 0 || memcmp(a.out.data, b.out.data, a.out.len) == 0));
	}
	buf_free(&a.out);
	buf_free(&b.out);
	free(copy);
	return 0;
}
