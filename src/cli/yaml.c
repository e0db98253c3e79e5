/* yaml.c - a JSON value as block-style YAML (yaml.h). */
#include "cli/yaml.h"

#include <errno.h>
#include <string.h>

static void yaml_indent(FILE *out, size_t n)
{
	while (n-- > 0)
		fputc(' ', out);
}

static char yaml_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether s is one of the words YAML 1.1 or 1.2 reads as a boolean or null. */
static int yaml_is_keyword(const char *s, size_t n)
{
	static const char *const words[] = {"null", "true", "false", "yes", "no",
					    "on",   "off",  "y",     "n",   "~"};
	size_t i, k;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strlen(words[i]) != n)
			continue;
		for (k = 0; k < n && yaml_lower(s[k]) == words[i][k]; k++)
			;
		if (k == n)
			return 1;
	}
	return 0;
}

/*
 * Whether s can be written without quotes and still read back as the same
 * string: printable ASCII only, not starting with an indicator, a digit,
 * a sign or a dot (numbers, timestamps, .inf), no blank at either end, no
 * ": " or " #" inside, no trailing ':', and not a keyword.
 */
static int yaml_plain_ok(const char *s, size_t n)
{
	static const char bad_first[] = "-?:,[]{}#&*!|>'\"%@`<=+.~ 0123456789";
	size_t i;

	if (n == 0 || strchr(bad_first, s[0]) != NULL || s[n - 1] == ' ' || s[n - 1] == ':')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f)
			return 0;
		if (i + 1 < n && ((c == ':' && s[i + 1] == ' ') || (c == ' ' && s[i + 1] == '#')))
			return 0;
	}
	return !yaml_is_keyword(s, n);
}

/*
 * The escape for the character at s (n bytes left), or NULL to copy its
 * first byte as it is; *used says how many bytes it stands for. The input
 * is valid UTF-8 (jansson checks every string), so a C1 control is 0xC2
 * then 0x80..0x9F.
 */
static const char *yaml_escape(const unsigned char *s, size_t n, char *buf, size_t len,
			       size_t *used)
{
	*used = 1;
	switch (s[0]) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\t':
		return "\\t";
	case '\r':
		return "\\r";
	case '\0':
		return "\\0";
	default:
		break;
	}
	if (s[0] < 0x20 || s[0] == 0x7f) {
		snprintf(buf, len, "\\x%02x", s[0]);
		return buf;
	}
	if (s[0] == 0xc2 && n >= 2 && s[1] >= 0x80 && s[1] <= 0x9f) {
		*used = 2;
		snprintf(buf, len, "\\x%02x", s[1]);
		return buf;
	}
	if (s[0] == 0xe2 && n >= 3 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9)) {
		*used = 3; /* U+2028 and U+2029 end a line for some readers */
		return s[2] == 0xa8 ? "\\u2028" : "\\u2029";
	}
	return NULL;
}

static void yaml_quoted(FILE *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *esc;
	char buf[8];
	size_t used;

	fputc('"', out);
	while (n > 0) {
		esc = yaml_escape(p, n, buf, sizeof(buf), &used);
		if (esc != NULL)
			fputs(esc, out);
		else
			fputc(p[0], out);
		p += used;
		n -= used;
	}
	fputc('"', out);
}

/*
 * Whether s (n bytes) can be a literal block ("|" or "|-") and read back
 * the same, as a PEM certificate can: it has a line break, no control
 * character but LF, no C1 control or Unicode line separator, no blank at
 * the start or end of a line or of s, no empty line at the start, and at
 * most one line break at the end. Stricter than YAML needs, so that no
 * indentation or chomping indicator beyond "-" is ever required.
 */
static int yaml_literal_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i;

	if (n < 2 || memchr(s, '\n', n) == NULL || p[0] == ' ' || p[0] == '\n' || p[n - 1] == ' ' ||
	    (p[n - 1] == '\n' && p[n - 2] == '\n'))
		return 0;
	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (p[i - 1] == ' ' || (i + 1 < n && p[i + 1] == ' '))
				return 0;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			return 0;
		} else if ((p[i] == 0xc2 && i + 1 < n && p[i + 1] <= 0x9f) ||
			   (p[i] == 0xe2 && i + 2 < n && p[i + 1] == 0x80 &&
			    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))) {
			return 0; /* C1, U+2028, U+2029 */
		}
	}
	return 1;
}

/* s as a literal block whose lines stand at column indent; "|-" without a final LF. */
static void yaml_literal(FILE *out, const char *s, size_t n, size_t indent)
{
	const char *nl;
	size_t len;

	fputs(s[n - 1] == '\n' ? "|\n" : "|-\n", out);
	while (n > 0) {
		nl = memchr(s, '\n', n);
		len = nl ? (size_t)(nl - s) : n;
		if (len > 0) {
			yaml_indent(out, indent);
			fwrite(s, 1, len, out);
		}
		fputc('\n', out);
		len += nl ? 1 : 0;
		s += len;
		n -= len;
	}
}

/* A string on one line: plain where it can be, else double-quoted. */
static void yaml_string(FILE *out, const char *s, size_t n)
{
	if (yaml_plain_ok(s, n))
		fwrite(s, 1, n, out);
	else
		yaml_quoted(out, s, n);
}

/* A real that YAML 1.1 reads as a float too: it needs a '.' ("1e+20" -> "1.0e+20"). */
static void yaml_real(FILE *out, double d)
{
	char buf[40];
	const char *e;
	int n = snprintf(buf, sizeof(buf), "%.17g", d);

	if (n < 0 || (size_t)n >= sizeof(buf)) {
		fputs(".nan", out); /* cannot happen for a finite double */
		return;
	}
	if (strchr(buf, '.') != NULL) {
		fputs(buf, out);
		return;
	}
	e = strchr(buf, 'e');
	if (e == NULL) {
		fprintf(out, "%s.0", buf);
		return;
	}
	fprintf(out, "%.*s.0%s", (int)(e - buf), buf, e);
}

/*
 * A scalar or an empty container on the current line, and the line's end;
 * a multi-line string may go on as a literal block at column indent.
 */
static void yaml_inline(FILE *out, json_t *v, size_t indent)
{
	static const char *const literal[] = {
	    [JSON_OBJECT] = "{}",   [JSON_ARRAY] = "[]",  [JSON_TRUE] = "true",
	    [JSON_FALSE] = "false", [JSON_NULL] = "null",
	};

	if (json_is_string(v) && yaml_literal_ok(json_string_value(v), json_string_length(v))) {
		yaml_literal(out, json_string_value(v), json_string_length(v), indent);
		return; /* it ended its lines */
	}
	if (json_is_string(v))
		yaml_string(out, json_string_value(v), json_string_length(v));
	else if (json_is_integer(v))
		fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		yaml_real(out, json_real_value(v));
	else
		fputs(v != NULL ? literal[json_typeof(v)] : "null", out);
	fputc('\n', out);
}

static int yaml_is_block(json_t *v)
{
	return (json_is_object(v) && json_object_size(v) > 0) ||
	       (json_is_array(v) && json_array_size(v) > 0);
}

static void yaml_block(FILE *out, json_t *v, size_t indent, int first_inline);

/*
 * A non-empty mapping whose keys stand at column indent; with first_inline
 * the cursor already is there (after "- ") for the first key.
 */
static void yaml_map(FILE *out, json_t *obj, size_t indent, int first_inline)
{
	const char *key;
	json_t *v;
	int first = 1;

	json_object_foreach(obj, key, v)
	{
		if (!first || !first_inline)
			yaml_indent(out, indent);
		first = 0;
		yaml_string(out, key, strlen(key));
		fputc(':', out);
		if (!yaml_is_block(v)) {
			fputc(' ', out);
			yaml_inline(out, v, indent + 2);
			continue;
		}
		fputc('\n', out);
		/* A sequence stays at the key's column, a mapping goes two deeper. */
		yaml_block(out, v, json_is_array(v) ? indent : indent + 2, 0);
	}
}

/* A non-empty sequence whose "- " stand at column indent. */
static void yaml_seq(FILE *out, json_t *arr, size_t indent, int first_inline)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		if (i > 0 || !first_inline)
			yaml_indent(out, indent);
		fputs("- ", out);
		if (!yaml_is_block(v)) {
			yaml_inline(out, v, indent + 2);
			continue;
		}
		yaml_block(out, v, indent + 2, 1);
	}
}

static void yaml_block(FILE *out, json_t *v, size_t indent, int first_inline)
{
	if (json_is_object(v))
		yaml_map(out, v, indent, first_inline);
	else
		yaml_seq(out, v, indent, first_inline);
}

int yaml_emit(FILE *out, json_t *v)
{
	if (yaml_is_block(v)) {
		yaml_block(out, v, 0, 0);
	} else {
		yaml_inline(out, v, 2);
	}
	return ferror(out) ? -EIO : 0;
}
