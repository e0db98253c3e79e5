/*
 * metrics_text.c - the strict exposition-text parser (metrics_text.h).
 *
 * One line at a time, by a cursor that never reads past the line's end.
 * Label values are unescaped into a scratch buffer as long as the longest
 * line, so a sample never needs more memory than its line.
 */
#include "server/metrics_text.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mt_cur {
	const char *p, *end;
};

struct mt_parser {
	struct metrics_text_sample s;
	char *scratch; /* METRICS_TEXT_MAX_LINE bytes */
	size_t used;
};

static int mt_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void mt_skip_blanks(struct mt_cur *c)
{
	while (c->p < c->end && mt_is_blank(*c->p))
		c->p++;
}

static int mt_name_char(char c, int first, int colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
		return 1;
	return !first && c >= '0' && c <= '9';
}

/* A metric (colon 1) or label (colon 0) name. */
static int mt_name(struct mt_cur *c, int colon, struct slice *out)
{
	const char *start = c->p;

	if (c->p >= c->end || !mt_name_char(*c->p, 1, colon))
		return -EINVAL;
	while (c->p < c->end && mt_name_char(*c->p, 0, colon))
		c->p++;
	if ((size_t)(c->p - start) > METRICS_TEXT_MAX_NAME)
		return -E2BIG;
	*out = slice_make(start, (size_t)(c->p - start));
	return 0;
}

/* A quoted label value, unescaped into the scratch buffer. */
static int mt_label_value(struct mt_parser *ps, struct mt_cur *c, struct slice *out)
{
	char *dst = ps->scratch + ps->used, *start = dst;

	if (c->p >= c->end || *c->p != '"')
		return -EINVAL;
	for (c->p++; c->p < c->end && *c->p != '"'; c->p++) {
		char ch = *c->p;

		if (ch == '\\') {
			if (++c->p >= c->end)
				return -EINVAL;
			ch = *c->p == 'n' ? '\n' : *c->p == '\\' ? '\\' : *c->p == '"' ? '"' : 0;
			if (ch == 0)
				return -EINVAL;
		}
		*dst++ = ch; /* never past the line's length: the scratch holds a whole line */
	}
	if (c->p >= c->end)
		return -EINVAL;
	c->p++;
	ps->used += (size_t)(dst - start);
	*out = slice_make(start, (size_t)(dst - start));
	return 0;
}

static int mt_label_dup(const struct metrics_text_sample *s, struct slice name)
{
	size_t i;

	if (slice_eq(name, LIT("__name__")))
		return 1;
	for (i = 0; i < s->nlabels; i++)
		if (slice_eq(s->labels[i].name, name))
			return 1;
	return 0;
}

/* {a="x",b="y",} after the name; the '{' is at the cursor. */
static int mt_labels(struct mt_parser *ps, struct mt_cur *c)
{
	struct metrics_text_sample *s = &ps->s;
	struct slice name;
	int rc;

	c->p++;
	for (;;) {
		mt_skip_blanks(c);
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			return 0;
		}
		if (s->nlabels == METRICS_TEXT_MAX_LABELS)
			return -E2BIG;
		if ((rc = mt_name(c, 0, &name)) < 0)
			return rc;
		if (mt_label_dup(s, name))
			return -EINVAL;
		mt_skip_blanks(c);
		if (c->p >= c->end || *c->p != '=')
			return -EINVAL;
		c->p++;
		mt_skip_blanks(c);
		s->labels[s->nlabels].name = name;
		if ((rc = mt_label_value(ps, c, &s->labels[s->nlabels].value)) < 0)
			return rc;
		s->nlabels++;
		mt_skip_blanks(c);
		if (c->p < c->end && *c->p == ',')
			c->p++;
		else if (c->p >= c->end || *c->p != '}')
			return -EINVAL;
	}
}

/* The next blank-separated token. */
static struct slice mt_token(struct mt_cur *c)
{
	const char *start = c->p;

	while (c->p < c->end && !mt_is_blank(*c->p))
		c->p++;
	return slice_make(start, (size_t)(c->p - start));
}

/* Decimal or exponent notation only: no hex, no "infinity" spelled out. */
static int mt_float(struct slice t, double *out)
{
	char num[64], *end;
	size_t i;

	if (slice_eq(t, LIT("NaN"))) {
		*out = NAN;
		return 0;
	}
	if (slice_eq(t, LIT("+Inf")) || slice_eq(t, LIT("Inf")) || slice_eq(t, LIT("-Inf"))) {
		*out = t.base[0] == '-' ? -INFINITY : INFINITY;
		return 0;
	}
	if (t.len == 0 || t.len >= sizeof(num))
		return -EINVAL;
	for (i = 0; i < t.len; i++)
		if (!strchr("0123456789+-.eE", t.base[i]) || t.base[i] == '\0')
			return -EINVAL;
	memcpy(num, t.base, t.len);
	num[t.len] = '\0';
	*out = strtod(num, &end);
	return end == num + t.len ? 0 : -EINVAL;
}

static int mt_sample(struct mt_parser *ps, struct mt_cur *c)
{
	struct metrics_text_sample *s = &ps->s;
	struct slice tok;
	long long ts;
	int rc;

	memset(s, 0, sizeof(*s));
	ps->used = 0;
	if ((rc = mt_name(c, 1, &s->name)) < 0)
		return rc;
	if (c->p < c->end && *c->p == '{' && (rc = mt_labels(ps, c)) < 0)
		return rc;
	if (c->p >= c->end || !mt_is_blank(*c->p))
		return -EINVAL;
	mt_skip_blanks(c);
	if (mt_float(mt_token(c), &s->value) < 0)
		return -EINVAL;
	mt_skip_blanks(c);
	if (c->p == c->end)
		return 0;
	tok = mt_token(c);
	if (slice_to_int64(tok, INT64_MIN, INT64_MAX, &ts) < 0)
		return -EINVAL;
	s->has_timestamp = 1;
	s->timestamp_ms = ts;
	mt_skip_blanks(c);
	return c->p == c->end ? 0 : -EINVAL;
}

/* Comments and blank lines carry nothing; the line's bytes must still be clean. */
static int mt_line_clean(struct slice line)
{
	return memchr(line.base, '\0', line.len) == NULL && memchr(line.base, '\r', line.len) == NULL;
}

long metrics_text_parse(const char *text, size_t len, metrics_text_fn fn, void *arg,
			size_t *err_line)
{
	struct mt_parser *ps = NULL;
	const char *p = text, *end;
	size_t lineno = 0;
	long n = 0;
	int rc = 0;

	if (err_line)
		*err_line = 0;
	if (len == 0 || text == NULL)
		return 0;
	end = text + len;
	ps = malloc(sizeof(*ps));
	if (ps == NULL || (ps->scratch = malloc(METRICS_TEXT_MAX_LINE)) == NULL) {
		free(ps);
		return -ENOMEM;
	}
	while (p < end && rc == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct slice line = slice_make(p, (size_t)((nl ? nl : end) - p));
		struct mt_cur c = {line.base, line.base + line.len};

		lineno++;
		p = nl ? nl + 1 : end;
		if (line.len > METRICS_TEXT_MAX_LINE)
			rc = -E2BIG;
		else if (!mt_line_clean(line))
			rc = -EINVAL;
		else if (line.len == 0 || line.base[0] == '#')
			continue;
		else if (n == METRICS_TEXT_MAX_SAMPLES)
			rc = -E2BIG;
		else if ((rc = mt_sample(ps, &c)) == 0 && ++n && fn)
			rc = fn(&ps->s, arg);
	}
	free(ps->scratch);
	free(ps);
	if (rc != 0 && err_line)
		*err_line = lineno;
	return rc != 0 ? rc : n;
}
