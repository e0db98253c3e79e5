/*
 * test_cli_output.c - unit tests for the CLI's output formats: RFC 4180
 * fields, the bordered table and compact columns, -c column selection
 * (src/cli/output.c), and the YAML emitter (src/cli/yaml.c). The sources
 * are included (h2o t/00unit) so statics are reachable; every output goes
 * to a memory stream and is compared whole.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/cli/output.c"
#include "../../src/cli/util.c"
#include "../../src/cli/yaml.c"

/* ---- a memory stream ---- */

struct mem {
	FILE *f;
	char *text;
	size_t len;
};

static FILE *mem_open(struct mem *m)
{
	m->text = NULL;
	m->len = 0;
	m->f = open_memstream(&m->text, &m->len);
	assert_non_null(m->f);
	return m->f;
}

/* Closes the stream, compares its text with want, frees it. */
static void mem_expect(struct mem *m, const char *want)
{
	fclose(m->f);
	assert_string_equal(m->text, want);
	free(m->text);
}

/* ---- CSV ---- */

static void csv_expect(const char *field, const char *want)
{
	struct mem m;

	output_csv_field(mem_open(&m), field);
	mem_expect(&m, want);
}

static void test_csv_quoting(void **state)
{
	(void)state;
	csv_expect("plain", "plain");
	csv_expect("", "");
	csv_expect("été", "été");
	csv_expect("a,b", "\"a,b\"");
	csv_expect("say \"hi\"", "\"say \"\"hi\"\"\"");
	csv_expect("\"", "\"\"\"\"");
	csv_expect("two\nlines", "\"two\nlines\"");
	csv_expect("cr\r", "\"cr\r\"");
	csv_expect(" lead", "\" lead\"");
	csv_expect("trail\t", "\"trail\t\"");
	csv_expect("in side", "in side");
}

/* ---- tables ---- */

static void table_fill(struct output_table *t)
{
	static const char *const headers[] = {"NAME", "DESCRIPTION", "N"};
	const char *r1[] = {"c1", "east, \"main\"", "12"};
	const char *r2[] = {"été", NULL, ""};

	output_table_init(t, 3, headers);
	assert_int_equal(output_table_add(t, r1), 0);
	assert_int_equal(output_table_add(t, r2), 0);
}

static void test_table_formats(void **state)
{
	struct output_table t;
	struct mem m;

	(void)state;
	table_fill(&t);
	output_table_print(&t, OUTPUT_TABLE, mem_open(&m));
	/* Headers centred (the odd blank to the right), cells left-aligned,
	 * widths in characters, "-" for no value, a line between rows. */
	mem_expect(&m, "+------+--------------+----+\n"
		       "| NAME | DESCRIPTION  | N  |\n"
		       "+------+--------------+----+\n"
		       "| c1   | east, \"main\" | 12 |\n"
		       "+------+--------------+----+\n"
		       "| été  | -            | -  |\n"
		       "+------+--------------+----+\n");
	output_table_print(&t, OUTPUT_COMPACT, mem_open(&m));
	mem_expect(&m, "NAME  DESCRIPTION   N\n"
		       "c1    east, \"main\"  12\n"
		       "été   -             -\n");
	/* CSV: no header, empty fields for no value. */
	output_table_print(&t, OUTPUT_CSV, mem_open(&m));
	mem_expect(&m, "c1,\"east, \"\"main\"\"\",12\n"
		       "été,,\n");
	output_table_free(&t);
}

/* A long description is kept whole (CSV must not cut data), sanitized. */
static void test_table_long_cell(void **state)
{
	static const char *const headers[] = {"D"};
	char longer[5000];
	const char *row[] = {longer};
	struct output_table t;
	struct mem m;

	(void)state;
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	longer[10] = '\033';
	output_table_init(&t, 1, headers);
	assert_int_equal(output_table_add(&t, row), 0);
	longer[10] = '?';
	output_table_print(&t, OUTPUT_CSV, mem_open(&m));
	fclose(m.f);
	assert_int_equal(m.len, sizeof(longer));
	assert_memory_equal(m.text, longer, sizeof(longer) - 1);
	free(m.text);
	output_table_free(&t);
}

static void test_table_empty(void **state)
{
	static const char *const headers[] = {"NAME", "STATUS"};
	struct output_table t;
	struct mem m;

	(void)state;
	output_table_init(&t, 2, headers);
	output_table_print(&t, OUTPUT_TABLE, mem_open(&m));
	mem_expect(&m, "+------+--------+\n"
		       "| NAME | STATUS |\n"
		       "+------+--------+\n");
	output_table_print(&t, OUTPUT_CSV, mem_open(&m));
	mem_expect(&m, "");
	output_table_free(&t);
}

/* ---- formats ---- */

static void test_format_parse(void **state)
{
	enum output_format f = OUTPUT_DEFAULT;

	(void)state;
	assert_int_equal(output_format_parse("yaml", &f), 0);
	assert_int_equal(f, OUTPUT_YAML);
	assert_int_equal(output_format_parse("compact", &f), 0);
	assert_int_equal(f, OUTPUT_COMPACT);
	assert_int_equal(output_format_parse("JSON", &f), -EINVAL);
	assert_int_equal(output_format_parse("", &f), -EINVAL);
	assert_int_equal(output_format_parse(NULL, &f), -EINVAL);
	assert_int_equal(f, OUTPUT_COMPACT); /* untouched on error */
	assert_int_equal(output_format_resolve(OUTPUT_CSV, stdout), OUTPUT_CSV);
}

/* ---- columns ---- */

static const char *cell_upper(json_t *item, const char *key, int64_t now, char *buf, size_t len)
{
	const char *s = util_json_str(item, key);
	size_t i;

	(void)now;
	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < len; i++)
		buf[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 'a' + 'A' : s[i]);
	buf[i] = '\0';
	return s ? buf : NULL;
}

static const struct output_column test_cols[] = {
    {'n', "name", "NAME", "the name", "name", NULL},
    {'s', "status", "STATUS", "the status", "status", cell_upper},
    {'S', "size", "SIZE", "the size", "size", NULL},
    {0, NULL, NULL, NULL, NULL, NULL},
};
static const struct output_columns test_columns = {test_cols, "ns"};

/* The -c spec as the list of letters it selects, or the error text. */
static void select_expect(const char *spec, const char *want)
{
	size_t idx[OUTPUT_MAX_COLS], n, i;
	char got[64], err[256];

	if (output_columns_select(&test_columns, spec, idx, &n, err, sizeof(err)) != 0) {
		assert_string_equal(err, want);
		return;
	}
	for (i = 0; i < n; i++)
		got[i] = test_cols[idx[i]].letter;
	got[n] = '\0';
	assert_string_equal(got, want);
}

static void test_columns_select(void **state)
{
	(void)state;
	select_expect(NULL, "ns");
	select_expect("sn", "sn");
	select_expect("Ssn", "Ssn"); /* letters are case-sensitive, as lxc's */
	select_expect("nn", "nn");
	select_expect("status", "s");	       /* one long name alone */
	select_expect("size,n,status", "Sns"); /* names and letters, with commas */
	select_expect("ns,Sn", "nsSn");	       /* runs of letters between commas */
	select_expect("x", "unknown column 'x'; the columns are: n (name), s (status), S (size)");
	select_expect("nx", "unknown column 'x' in 'nx'; the columns are: n (name), s (status), "
			    "S (size)");
	select_expect("name,stat", "unknown column 't' in 'stat'; the columns are: n (name), "
				   "s (status), S (size)");
	select_expect("ns,", "an empty column name");
	select_expect("", "no columns given");
	select_expect("nnnnnnnnnnnnnnnnn", "more than 16 columns");
}

static void test_list_formats(void **state)
{
	json_t *list = json_loads("[{\"name\":\"a\",\"status\":\"up\",\"size\":\"1\"},"
				  "7,{\"name\":\"b\"}]",
				  0, NULL);
	size_t idx[] = {1, 0};
	struct mem m;

	(void)state;
	assert_non_null(list);
	/* Only objects make rows; cells through the column's function. */
	assert_int_equal(output_list(mem_open(&m), OUTPUT_CSV, list, &test_columns, idx, 2, 0), 0);
	mem_expect(&m, "UP,a\n,b\n");
	assert_int_equal(output_list(mem_open(&m), OUTPUT_COMPACT, list, &test_columns, idx, 2, 0),
			 0);
	mem_expect(&m, "STATUS  NAME\nUP      a\n-       b\n");
	/* JSON and YAML print the list whole, whatever the columns. */
	assert_int_equal(output_list(mem_open(&m), OUTPUT_JSON, list, &test_columns, idx, 1, 0), 0);
	mem_expect(&m,
		   "[\n  {\n    \"name\": \"a\",\n    \"status\": \"up\",\n    \"size\": \"1\"\n"
		   "  },\n  7,\n  {\n    \"name\": \"b\"\n  }\n]\n");
	assert_int_equal(output_list(mem_open(&m), OUTPUT_YAML, list, &test_columns, idx, 1, 0), 0);
	mem_expect(&m, "- name: a\n  status: up\n  size: \"1\"\n- 7\n- name: b\n");
	json_decref(list);
}

static void test_columns_help(void **state)
{
	struct mem m;

	(void)state;
	output_columns_help(&test_columns, mem_open(&m));
	mem_expect(&m, "Columns (-c; the default is ns):\n"
		       "  n, name    NAME: the name\n"
		       "  s, status  STATUS: the status\n"
		       "  S, size    SIZE: the size\n");
}

/* ---- YAML ---- */

static void yaml_expect(const char *json, const char *want)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	struct mem m;

	assert_non_null(v);
	assert_int_equal(yaml_emit(mem_open(&m), v), 0);
	mem_expect(&m, want);
	json_decref(v);
}

static void test_yaml_scalars(void **state)
{
	(void)state;
	yaml_expect("null", "null\n");
	yaml_expect("true", "true\n");
	yaml_expect("false", "false\n");
	yaml_expect("-42", "-42\n");
	yaml_expect("0.5", "0.5\n");
	yaml_expect("1e20", "1.0e+20\n"); /* YAML 1.1 wants the dot */
	yaml_expect("3.0", "3.0\n");
	yaml_expect("\"plain text\"", "plain text\n");
	yaml_expect("\"token:0123abcd\"", "token:0123abcd\n");
	/* Strings that would read back as something else are quoted. */
	yaml_expect("\"\"", "\"\"\n");
	yaml_expect("\"yes\"", "\"yes\"\n");
	yaml_expect("\"Off\"", "\"Off\"\n");
	yaml_expect("\"null\"", "\"null\"\n");
	yaml_expect("\"~\"", "\"~\"\n");
	yaml_expect("\"42\"", "\"42\"\n");
	yaml_expect("\"0.42\"", "\"0.42\"\n");
	yaml_expect("\".inf\"", "\".inf\"\n");
	yaml_expect("\"2026-11-24T22:58:01Z\"", "\"2026-11-24T22:58:01Z\"\n");
	yaml_expect("\"-dash\"", "\"-dash\"\n");
	yaml_expect("\"a: b\"", "\"a: b\"\n");
	yaml_expect("\"a #b\"", "\"a #b\"\n");
	yaml_expect("\"ends:\"", "\"ends:\"\n");
	yaml_expect("\" lead\"", "\" lead\"\n");
	yaml_expect("\"trail \"", "\"trail \"\n");
	yaml_expect("\"*alias\"", "\"*alias\"\n");
	yaml_expect("\"<<\"", "\"<<\"\n");
	yaml_expect("\"\\\"q\\\"\"", "\"\\\"q\\\"\"\n");
}

static void test_yaml_escapes(void **state)
{
	(void)state;
	/* UTF-8 is kept (quoted); control characters of C0, DEL and C1, NUL
	 * and the Unicode line separators are escaped. */
	yaml_expect("\"\\u00e9t\\u00e9\"", "\"été\"\n");
	yaml_expect("\"a\\nb\\tc\\rd\\\\e\"", "\"a\\nb\\tc\\rd\\\\e\"\n");
	yaml_expect("\"esc\\u001b[31m\\u007f\"", "\"esc\\x1b[31m\\x7f\"\n");
	yaml_expect("\"csi\\u009b\"", "\"csi\\x9b\"\n");
	yaml_expect("\"nul\\u0000x\"", "\"nul\\0x\"\n");
	yaml_expect("\"ls\\u2028ps\\u2029\"", "\"ls\\u2028ps\\u2029\"\n");
	/* A PEM block, as cluster_certificate is, is a literal block. */
	yaml_expect("\"-----BEGIN X-----\\nAAA=\\n-----END X-----\\n\"",
		    "|\n  -----BEGIN X-----\n  AAA=\n  -----END X-----\n");
}

static void test_yaml_nesting(void **state)
{
	(void)state;
	yaml_expect("{}", "{}\n");
	yaml_expect("[]", "[]\n");
	yaml_expect("{\"a\":1,\"b\":{},\"c\":[]}", "a: 1\nb: {}\nc: []\n");
	/* A sequence in a mapping stays at the key's column (go-yaml, lxc). */
	yaml_expect(
	    "{\"name\":\"c1\",\"pools\":[{\"name\":\"local\",\"total\":10},"
	    "{\"name\":\"remote\",\"total\":20}],\"owner\":{\"id\":7,\"tags\":[\"x\",\"y\"]}}",
	    "name: c1\n"
	    "pools:\n"
	    "- name: local\n"
	    "  total: 10\n"
	    "- name: remote\n"
	    "  total: 20\n"
	    "owner:\n"
	    "  id: 7\n"
	    "  tags:\n"
	    "  - x\n"
	    "  - \"y\"\n");
	/* Lists in lists, and objects in lists in lists. */
	yaml_expect("[[1,[2,3]],[{\"k\":\"v\",\"j\":null}],[[]]]", "- - 1\n"
								   "  - - 2\n"
								   "    - 3\n"
								   "- - k: v\n"
								   "    j: null\n"
								   "- - []\n");
	/* Keys are quoted by the same rule as values. */
	yaml_expect("{\"on\":\"x\",\"a b\":\"c\",\"1\":2}", "\"on\": x\na b: c\n\"1\": 2\n");
}

static void test_yaml_literal_blocks(void **state)
{
	(void)state;
	/* Lines at two more than the key or the "- "; "|-" without a final LF;
	 * quotes, '#' and ": " need nothing in a block; empty lines stay. */
	yaml_expect("{\"cert\":\"a\\nb\\n\",\"note\":\"x: \\\"y\\\" #z\\n\\nend\"}",
		    "cert: |\n"
		    "  a\n"
		    "  b\n"
		    "note: |-\n"
		    "  x: \"y\" #z\n"
		    "\n"
		    "  end\n");
	yaml_expect("[{\"k\":[\"l1\\nl2\"]}]", "- k:\n"
					       "  - |-\n"
					       "    l1\n"
					       "    l2\n");
	/* What a literal block could not say exactly is double-quoted. */
	yaml_expect("\"trail \\nx\"", "\"trail \\nx\"\n");
	yaml_expect("\"x\\n indented\"", "\"x\\n indented\"\n");
	yaml_expect("\" lead\\nx\"", "\" lead\\nx\"\n");
	yaml_expect("\"\\nfirst empty\"", "\"\\nfirst empty\"\n");
	yaml_expect("\"two ends\\n\\n\"", "\"two ends\\n\\n\"\n");
	yaml_expect("\"tab\\tin\\nx\"", "\"tab\\tin\\nx\"\n");
	yaml_expect("\"csi\\u009b\\nx\"", "\"csi\\x9b\\nx\"\n");
	yaml_expect("\"\\n\"", "\"\\n\"\n");
}

static void test_yaml_write_error(void **state)
{
	FILE *f = fopen("/dev/full", "w");
	json_t *v = json_pack("{s:s}", "name", "c1");

	(void)state;
	if (f == NULL) {
		json_decref(v);
		skip();
	}
	setvbuf(f, NULL, _IONBF, 0);
	assert_int_equal(yaml_emit(f, v), -EIO);
	fclose(f);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_csv_quoting),	     cmocka_unit_test(test_table_formats),
	    cmocka_unit_test(test_table_empty),	     cmocka_unit_test(test_table_long_cell),
	    cmocka_unit_test(test_format_parse),     cmocka_unit_test(test_columns_select),
	    cmocka_unit_test(test_list_formats),     cmocka_unit_test(test_columns_help),
	    cmocka_unit_test(test_yaml_scalars),     cmocka_unit_test(test_yaml_escapes),
	    cmocka_unit_test(test_yaml_nesting),     cmocka_unit_test(test_yaml_literal_blocks),
	    cmocka_unit_test(test_yaml_write_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
