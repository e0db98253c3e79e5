/* output.c - tables and JSON on stdout (output.h). */
#include "cli/output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/util.h"

void output_table_init(struct output_table *t, size_t ncols, const char *const *headers)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->ncols = ncols > OUTPUT_MAX_COLS ? OUTPUT_MAX_COLS : ncols;
	for (i = 0; i < t->ncols; i++)
		t->headers[i] = headers[i];
}

static char *output_cell(const char *s)
{
	char tmp[OUTPUT_MAX_CELL];

	util_sanitize(s && *s ? s : "-", tmp, sizeof(tmp));
	return strdup(tmp);
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

static void output_pad(FILE *out, size_t n)
{
	while (n-- > 0)
		fputc(' ', out);
}

/* Prints one row; the last column is not padded (no trailing blanks). */
static void output_row(const struct output_table *t, const char *const *cells, const size_t *width,
		       FILE *out)
{
	size_t i;

	for (i = 0; i < t->ncols; i++) {
		fputs(cells[i], out);
		if (i + 1 < t->ncols)
			output_pad(out, width[i] - util_display_width(cells[i]) + 2);
	}
	fputc('\n', out);
}

void output_table_print(const struct output_table *t, FILE *out)
{
	size_t width[OUTPUT_MAX_COLS], i, r, w;

	for (i = 0; i < t->ncols; i++)
		width[i] = util_display_width(t->headers[i]);
	for (r = 0; r < t->nrows; r++)
		for (i = 0; i < t->ncols; i++) {
			w = util_display_width(t->cells[r * t->ncols + i]);
			if (w > width[i])
				width[i] = w;
		}
	output_row(t, t->headers, width, out);
	for (r = 0; r < t->nrows; r++)
		output_row(t, (const char *const *)&t->cells[r * t->ncols], width, out);
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

int output_list(FILE *out, json_t *list, size_t ncols, const char *const *headers,
		output_row_fn row, int64_t now)
{
	struct output_table t;
	json_t *item;
	size_t i;
	int rc = 0;

	output_table_init(&t, ncols, headers);
	json_array_foreach(list, i, item)
	{
		rc = row(&t, item, now);
		if (rc != 0)
			break;
	}
	if (rc == 0)
		output_table_print(&t, out);
	output_table_free(&t);
	return rc;
}

int output_json(json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0)
		return -EIO;
	fputc('\n', stdout);
	return 0;
}

void output_kv(const char *label, const char *value)
{
	char tmp[4096];

	util_sanitize(value && *value ? value : "-", tmp, sizeof(tmp));
	printf("%s: %s\n", label, tmp);
}
