/* output.c - lists in every --format, replies as JSON or YAML (output.h). */
#include "cli/output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/util.h"
#include "cli/yaml.h"

static const char *const output_format_names[] = {
    [OUTPUT_TABLE] = "table", [OUTPUT_COMPACT] = "compact", [OUTPUT_CSV] = "csv",
    [OUTPUT_JSON] = "json",   [OUTPUT_YAML] = "yaml",
};

int output_format_parse(const char *s, enum output_format *out)
{
	size_t i;

	for (i = OUTPUT_TABLE; i <= OUTPUT_YAML; i++)
		if (s != NULL && strcmp(s, output_format_names[i]) == 0) {
			*out = (enum output_format)i;
			return 0;
		}
	return -EINVAL;
}

enum output_format output_format_resolve(enum output_format f, FILE *out)
{
	if (f != OUTPUT_DEFAULT)
		return f;
	return isatty(fileno(out)) ? OUTPUT_TABLE : OUTPUT_COMPACT;
}

/* ---- tables ---- */

void output_table_init(struct output_table *t, size_t ncols, const char *const *headers)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->ncols = ncols > OUTPUT_MAX_COLS ? OUTPUT_MAX_COLS : ncols;
	for (i = 0; i < t->ncols; i++)
		t->headers[i] = headers[i];
}

/*
 * A sanitized copy of s, whole: CSV must not lose the end of a long
 * description. Sanitizing never lengthens (a '?' stands for one or more
 * bytes), so strlen + 1 bytes always hold it.
 */
static char *output_cell(const char *s)
{
	size_t len = s ? strlen(s) + 1 : 1;
	char *out = malloc(len);

	if (out != NULL)
		util_sanitize(s ? s : "", out, len);
	return out;
}

int output_table_add(struct output_table *t, const char *const *cells)
{
	size_t i, base;
	char **grown;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		grown = realloc(t->cells, cap * t->ncols * sizeof(*grown));
		if (grown == NULL)
			return -ENOMEM;
		t->cells = grown;
		t->cap = cap;
	}
	base = t->nrows * t->ncols;
	for (i = 0; i < t->ncols; i++) {
		t->cells[base + i] = output_cell(cells[i]);
		if (t->cells[base + i] == NULL) {
			while (i-- > 0)
				free(t->cells[base + i]);
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

/* What a table or compact cell shows: "-" stands for no value. */
static const char *output_shown(const char *cell)
{
	return cell[0] != '\0' ? cell : "-";
}

static void output_repeat(FILE *out, int c, size_t n)
{
	while (n-- > 0)
		fputc(c, out);
}

/* The widest shown cell of each column, header included. */
static void output_widths(const struct output_table *t, size_t *width)
{
	size_t i, r, w;

	for (i = 0; i < t->ncols; i++)
		width[i] = util_display_width(t->headers[i]);
	for (r = 0; r < t->nrows; r++)
		for (i = 0; i < t->ncols; i++) {
			w = util_display_width(output_shown(t->cells[r * t->ncols + i]));
			if (w > width[i])
				width[i] = w;
		}
}

/* Compact: columns two spaces apart; the last is not padded (no trailing blanks). */
static void output_compact_row(const struct output_table *t, const char *const *cells,
			       const size_t *width, FILE *out)
{
	size_t i;

	for (i = 0; i < t->ncols; i++) {
		fputs(output_shown(cells[i]), out);
		if (i + 1 < t->ncols)
			output_repeat(out, ' ',
				      width[i] - util_display_width(output_shown(cells[i])) + 2);
	}
	fputc('\n', out);
}

/* "+------+--------+": the border above, below and between rows. */
static void output_border(const struct output_table *t, const size_t *width, FILE *out)
{
	size_t i;

	for (i = 0; i < t->ncols; i++) {
		fputc('+', out);
		output_repeat(out, '-', width[i] + 2);
	}
	fputs("+\n", out);
}

/*
 * "| c1   | ACTIVE |": cells left-aligned, or centred as lxc centres its
 * headers (the odd blank goes to the right).
 */
static void output_boxed_row(const struct output_table *t, const char *const *cells,
			     const size_t *width, int centre, FILE *out)
{
	size_t i, gap, left;

	for (i = 0; i < t->ncols; i++) {
		gap = width[i] - util_display_width(output_shown(cells[i]));
		left = centre ? gap / 2 : 0;
		fputs("| ", out);
		output_repeat(out, ' ', left);
		fputs(output_shown(cells[i]), out);
		output_repeat(out, ' ', gap - left + 1);
	}
	fputs("|\n", out);
}

static void output_boxed(const struct output_table *t, const size_t *width, FILE *out)
{
	size_t r;

	output_border(t, width, out);
	output_boxed_row(t, t->headers, width, 1, out);
	output_border(t, width, out);
	for (r = 0; r < t->nrows; r++) {
		output_boxed_row(t, (const char *const *)&t->cells[r * t->ncols], width, 0, out);
		output_border(t, width, out);
	}
}

void output_csv_field(FILE *out, const char *s)
{
	size_t n = strlen(s);

	if (strpbrk(s, ",\"\r\n") == NULL &&
	    (n == 0 || (s[0] != ' ' && s[0] != '\t' && s[n - 1] != ' ' && s[n - 1] != '\t'))) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static void output_csv(const struct output_table *t, FILE *out)
{
	size_t r, i;

	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			if (i > 0)
				fputc(',', out);
			output_csv_field(out, t->cells[r * t->ncols + i]);
		}
		fputc('\n', out);
	}
}

void output_table_print(const struct output_table *t, enum output_format f, FILE *out)
{
	size_t width[OUTPUT_MAX_COLS], r;

	if (f == OUTPUT_CSV) {
		output_csv(t, out);
		return;
	}
	output_widths(t, width);
	if (f == OUTPUT_TABLE) {
		output_boxed(t, width, out);
		return;
	}
	output_compact_row(t, t->headers, width, out);
	for (r = 0; r < t->nrows; r++)
		output_compact_row(t, (const char *const *)&t->cells[r * t->ncols], width, out);
}

void output_table_free(struct output_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* ---- columns ---- */

static size_t output_ncols(const struct output_columns *c)
{
	size_t n = 0;

	while (c->cols[n].letter != '\0')
		n++;
	return n;
}

/* The column named by a letter (len 1) or a long name; -1 if none. */
static long output_column_find(const struct output_columns *c, const char *s, size_t len)
{
	size_t i, n = output_ncols(c);

	for (i = 0; i < n; i++) {
		const struct output_column *col = &c->cols[i];
		if ((len == 1 && s[0] == col->letter) ||
		    (strlen(col->name) == len && strncmp(col->name, s, len) == 0))
			return (long)i;
	}
	return -1;
}

/* Says which columns exist, after "unknown column": "n (name), s (status), ...". */
static void output_columns_known(const struct output_columns *c, char *err, size_t errlen)
{
	size_t i, n = output_ncols(c), used = strlen(err);
	int w;

	for (i = 0; i < n && used < errlen; i++) {
		w = snprintf(err + used, errlen - used, "%s%c (%s)", i ? ", " : "",
			     c->cols[i].letter, c->cols[i].name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static int output_columns_add(const struct output_columns *c, const char *s, size_t len,
			      size_t *idx, size_t *n, char *err, size_t errlen)
{
	long i = output_column_find(c, s, len);

	if (*n == OUTPUT_MAX_COLS) {
		snprintf(err, errlen, "more than %d columns", OUTPUT_MAX_COLS);
		return -EINVAL;
	}
	if (i < 0) {
		snprintf(err, errlen,
			 "unknown column '%.*s'; the columns are: ", len > 64 ? 64 : (int)len, s);
		output_columns_known(c, err, errlen);
		return -EINVAL;
	}
	idx[(*n)++] = (size_t)i;
	return 0;
}

/*
 * One comma-separated part: a letter, a long name, or else a run of
 * letters ("ns,tunnel"); in a run, an unknown letter names the part too.
 */
static int output_columns_part(const struct output_columns *c, const char *s, size_t len,
			       size_t *idx, size_t *n, char *err, size_t errlen)
{
	size_t k;

	if (len == 0) {
		snprintf(err, errlen, "an empty column name");
		return -EINVAL;
	}
	if (len == 1 || output_column_find(c, s, len) >= 0)
		return output_columns_add(c, s, len, idx, n, err, errlen);
	for (k = 0; k < len; k++)
		if (output_column_find(c, s + k, 1) < 0) {
			snprintf(err, errlen,
				 "unknown column '%c' in '%.*s'; the columns are: ", s[k],
				 len > 64 ? 64 : (int)len, s);
			output_columns_known(c, err, errlen);
			return -EINVAL;
		}
	for (k = 0; k < len; k++)
		if (output_columns_add(c, s + k, 1, idx, n, err, errlen) != 0)
			return -EINVAL;
	return 0;
}

int output_columns_select(const struct output_columns *c, const char *spec, size_t *idx, size_t *n,
			  char *err, size_t errlen)
{
	const char *s = spec ? spec : c->defaults, *comma;
	int rc;

	*n = 0;
	if (*s == '\0') {
		snprintf(err, errlen, "no columns given");
		return -EINVAL;
	}
	for (;;) {
		comma = strchr(s, ',');
		rc = output_columns_part(c, s, comma ? (size_t)(comma - s) : strlen(s), idx, n, err,
					 errlen);
		if (rc != 0 || comma == NULL)
			return rc;
		s = comma + 1;
	}
}

void output_columns_help(const struct output_columns *c, FILE *out)
{
	size_t i, n = output_ncols(c), w = 0;

	for (i = 0; i < n; i++)
		if (strlen(c->cols[i].name) > w)
			w = strlen(c->cols[i].name);
	fprintf(out, "Columns (-c; the default is %s):\n", c->defaults);
	for (i = 0; i < n; i++)
		fprintf(out, "  %c, %-*s  %s: %s\n", c->cols[i].letter, (int)w, c->cols[i].name,
			c->cols[i].header, c->cols[i].help);
}

/* ---- lists ---- */

const char *output_cell_age(json_t *item, const char *key, int64_t now, char *buf, size_t len)
{
	util_reltime(util_json_time(item, key), now, buf, len);
	return buf;
}

static const char *output_column_cell(const struct output_column *col, json_t *item, int64_t now,
				      char *buf, size_t len)
{
	if (col->cell != NULL)
		return col->cell(item, col->key, now, buf, len);
	return util_json_str(item, col->key);
}

/* Adds the row of one object: the selected columns, in order. */
static int output_list_row(struct output_table *t, const struct output_columns *c,
			   const size_t *idx, json_t *item, int64_t now)
{
	char bufs[OUTPUT_MAX_COLS][OUTPUT_MAX_CELL];
	const char *row[OUTPUT_MAX_COLS];
	size_t i;

	for (i = 0; i < t->ncols; i++)
		row[i] = output_column_cell(&c->cols[idx[i]], item, now, bufs[i], sizeof(bufs[i]));
	return output_table_add(t, row);
}

int output_list(FILE *out, enum output_format f, json_t *list, const struct output_columns *c,
		const size_t *idx, size_t n, int64_t now)
{
	const char *headers[OUTPUT_MAX_COLS];
	struct output_table t;
	json_t *item;
	size_t i;
	int rc = 0;

	if (f == OUTPUT_JSON || f == OUTPUT_YAML)
		return output_value(out, f, list);
	for (i = 0; i < n && i < OUTPUT_MAX_COLS; i++)
		headers[i] = c->cols[idx[i]].header;
	output_table_init(&t, n, headers);
	json_array_foreach(list, i, item)
	{
		if (json_is_object(item))
			rc = output_list_row(&t, c, idx, item, now);
		if (rc != 0)
			break;
	}
	if (rc == 0)
		output_table_print(&t, f, out);
	output_table_free(&t);
	return rc;
}

/* ---- single values ---- */

int output_value(FILE *out, enum output_format f, json_t *v)
{
	if (f == OUTPUT_YAML)
		return yaml_emit(out, v);
	if (json_dumpf(v, out, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0)
		return -EIO;
	fputc('\n', out);
	return 0;
}

void output_kv(const char *label, const char *value)
{
	char tmp[4096];

	util_sanitize(value && *value ? value : "-", tmp, sizeof(tmp));
	printf("%s: %s\n", label, tmp);
}
