/*
 * output.h - what the CLI prints on stdout: aligned tables and JSON.
 *
 * Every string from the server goes through util_sanitize before it reaches
 * the terminal, so a cluster description cannot carry escape sequences.
 */
#ifndef LXCM_CLI_OUTPUT_H
#define LXCM_CLI_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Most columns a table has, and the widest cell kept (longer is cut). */
#define OUTPUT_MAX_COLS 12
#define OUTPUT_MAX_CELL 256

struct output_table {
	size_t ncols;
	const char *headers[OUTPUT_MAX_COLS];
	char **cells; /* nrows * ncols sanitized copies */
	size_t nrows, cap;
};

/* headers: ncols literal strings (borrowed). */
void output_table_init(struct output_table *t, size_t ncols, const char *const *headers);
/* Adds a row of ncols strings (NULL prints "-"). 0 or -ENOMEM. */
int output_table_add(struct output_table *t, const char *const *cells);
/* Prints the header and rows, columns two spaces apart. */
void output_table_print(const struct output_table *t, FILE *out);
void output_table_free(struct output_table *t);

/*
 * Adds the row of one list element to t (output_table_add); 0 or -ENOMEM,
 * or 0 without a row for an element it skips. now is the one time every
 * relative time in the table is measured from.
 */
typedef int (*output_row_fn)(struct output_table *t, json_t *item, int64_t now);

/*
 * Prints a table of ncols columns with one row per element of the JSON
 * array list (only the header when it is empty). 0, or -ENOMEM with
 * nothing printed.
 */
int output_list(FILE *out, json_t *list, size_t ncols, const char *const *headers,
		output_row_fn row, int64_t now);

/* Prints v as indented JSON and a newline on stdout; 0 or -EIO. */
int output_json(json_t *v);

/* Prints "label: value\n" with the value sanitized (NULL or "" prints "-"). */
void output_kv(const char *label, const char *value);

#endif
