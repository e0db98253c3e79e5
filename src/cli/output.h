/*
 * output.h - what the CLI prints on stdout: a list of things in any of the
 * formats of `--format` (LXD's `lxc list --format` set), a single reply as
 * JSON or YAML, and "key: value" lines.
 *
 * This is the one place where rows become table, compact or CSV text and
 * where a reply becomes JSON or YAML: a list command only describes its
 * columns (struct output_column) and hands the server's array to
 * output_list.
 *
 * Every string from the server goes through util_sanitize before it reaches
 * a table, a CSV field or a "key: value" line, so a cluster description
 * cannot carry escape sequences; JSON and YAML escape control characters.
 */
#ifndef LXCM_CLI_OUTPUT_H
#define LXCM_CLI_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/*
 * Most columns a table has, and the size of the buffer a column's cell
 * function writes a computed value into (server strings are kept whole).
 */
#define OUTPUT_MAX_COLS 16
#define OUTPUT_MAX_CELL 256

/*
 * --format. OUTPUT_DEFAULT (nothing asked for) is table on a terminal and
 * compact otherwise, so scripts that read today's columns keep working.
 *   table    columns with ASCII borders, a line between rows (lxc's table)
 *   compact  columns two spaces apart, no borders, no trailing blanks
 *   csv      RFC 4180 fields, one record per row, no header (as lxc's csv)
 *   json     the server's objects as they came, indented
 *   yaml     the same objects as YAML (yaml.c)
 */
enum output_format {
	OUTPUT_DEFAULT = 0,
	OUTPUT_TABLE,
	OUTPUT_COMPACT,
	OUTPUT_CSV,
	OUTPUT_JSON,
	OUTPUT_YAML,
};

/* The names --format takes, for messages: "table, compact, csv, json or yaml". */
#define OUTPUT_FORMAT_NAMES "table, compact, csv, json or yaml"

/* Parses a --format value; -EINVAL for anything but the five names. */
int output_format_parse(const char *s, enum output_format *out);
/* OUTPUT_DEFAULT made concrete for the stream f (table on a terminal). */
enum output_format output_format_resolve(enum output_format f, FILE *out);

/* ---- tables of sanitized cells ---- */

struct output_table {
	size_t ncols;
	const char *headers[OUTPUT_MAX_COLS];
	char **cells; /* nrows * ncols sanitized copies; "" for no value */
	size_t nrows, cap;
};

/* headers: ncols literal strings (borrowed). */
void output_table_init(struct output_table *t, size_t ncols, const char *const *headers);
/* Adds a row of ncols strings (NULL or "" is no value). 0 or -ENOMEM. */
int output_table_add(struct output_table *t, const char *const *cells);
/*
 * Prints the header and rows as format f (table, compact or csv; anything
 * else prints as compact). No value prints "-" in table and compact, an
 * empty field in CSV.
 */
void output_table_print(const struct output_table *t, enum output_format f, FILE *out);
void output_table_free(struct output_table *t);

/*
 * One RFC 4180 field: quoted (with quotes doubled) when it holds a comma,
 * a quote, CR or LF, or starts or ends with a blank; else as it is.
 */
void output_csv_field(FILE *out, const char *s);

/* ---- list columns and -c ---- */

/*
 * One column a list command can show. cell writes the cell of item into
 * buf (len bytes) and returns it, or returns a string that item owns, or
 * NULL for no value; key is handed to it (the JSON field the column reads).
 * With cell NULL the column is the string field key as it is.
 */
struct output_column {
	char letter;	    /* -c ns: one letter per column */
	const char *name;   /* -c name,status: the long form */
	const char *header; /* "LAST HEARTBEAT" */
	const char *help;   /* what it shows, for --help */
	const char *key;
	const char *(*cell)(json_t *item, const char *key, int64_t now, char *buf, size_t len);
};

/* A cell for an RFC 3339 field key: its age, "3h ago" ("never" when unset). */
const char *output_cell_age(json_t *item, const char *key, int64_t now, char *buf, size_t len);

/*
 * The columns of a list command: the table (terminated by an entry with
 * letter 0) and the letters shown when -c is not given.
 */
struct output_columns {
	const struct output_column *cols;
	const char *defaults;
};

/*
 * Resolves a -c value (NULL: the defaults) into indices of cols, in the
 * order given, as `lxc list -c` does: letters ("nst"), or names or letters
 * separated by commas ("name,s,tunnel"); one name alone ("status") also
 * works. Stores at most OUTPUT_MAX_COLS indices and their count. On an
 * unknown column or an empty or too long list, writes why into err and
 * returns -EINVAL.
 */
int output_columns_select(const struct output_columns *c, const char *spec, size_t *idx, size_t *n,
			  char *err, size_t errlen);

/* The "Columns:" section of a list command's --help: letter, name, header, help. */
void output_columns_help(const struct output_columns *c, FILE *out);

/*
 * Prints the JSON array list as format f: json and yaml print it as it came;
 * table, compact and csv print one row per object of it (other elements
 * are skipped) with the n columns idx of c. now is the one time every
 * relative time is measured from. 0, or -ENOMEM / -EIO with (for the
 * tables) nothing printed.
 */
int output_list(FILE *out, enum output_format f, json_t *list, const struct output_columns *c,
		const size_t *idx, size_t n, int64_t now);

/* ---- single values ---- */

/* Prints v as indented JSON (f json) or YAML (f yaml) and a newline; 0 or -EIO. */
int output_value(FILE *out, enum output_format f, json_t *v);

/* Prints "label: value\n" with the value sanitized (NULL or "" prints "-"). */
void output_kv(const char *label, const char *value);

#endif
