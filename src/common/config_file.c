/*
 * config_file.c - `key = value` lines turned into the long options of a
 * getopt_long table (config_file.h, format in docs/configuration.md).
 */
#include "common/config_file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/slice.h"

/* How much of a bad key an error message repeats. */
#define CF_KEY_SHOWN 64

/*
 * Options that make no sense in a file: a file naming another file, and
 * the flags that print something and exit instead of running.
 */
static const char *const cf_reserved[] = {CONFIG_FILE_OPTION, "help", "version"};

/* Writes "path:line: message" (no line when 0) to cf->err; returns -EINVAL. */
__attribute__((format(printf, 4, 5))) static int cf_fail(struct config_file *cf, const char *path,
							 unsigned line, const char *fmt, ...)
{
	size_t cap = sizeof(cf->err);
	va_list ap;
	int n, m;

	n = line ? snprintf(cf->err, cap, "%s:%u: ", path, line)
		 : snprintf(cf->err, cap, "%s: ", path);
	if (n < 0 || (size_t)n >= cap / 2) /* a path this long: the reason matters more */
		n = snprintf(cf->err, cap, "config file line %u: ", line);
	if (n < 0)
		n = 0;
	va_start(ap, fmt);
	m = vsnprintf(cf->err + n, cap - (size_t)n, fmt, ap);
	va_end(ap);
	/* A message cut short still says what is wrong; mark the cut. */
	if (m < 0 || (size_t)m >= cap - (size_t)n)
		memcpy(cf->err + cap - 4, "...", 4);
	return -EINVAL;
}

/* Index of the option named exactly key (no abbreviations), or -1. */
static long cf_find_option(const struct option *opts, struct slice key)
{
	size_t i;

	for (i = 0; opts[i].name != NULL; i++)
		if (slice_eq(slice_cstr(opts[i].name), key))
			return (long)i;
	return -1;
}

static int cf_reserved_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(cf_reserved) / sizeof(cf_reserved[0]); i++)
		if (strcmp(cf_reserved[i], name) == 0)
			return 1;
	return 0;
}

/* NUL and control bytes other than tab are refused: 0, or the bad byte + 1. */
static int cf_bad_byte(struct slice line)
{
	size_t i;

	for (i = 0; i < line.len; i++) {
		unsigned char c = (unsigned char)line.base[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return c + 1;
	}
	return 0;
}

/* Appends "--name" or "--name=value" as an entry of cf. */
static int cf_add(struct config_file *cf, size_t opt, const char *name, const struct slice *value,
		  unsigned line)
{
	size_t nlen = strlen(name), len = 2 + nlen + (value ? 1 + value->len : 0);
	struct config_file_entry *e;
	char *arg;

	if ((cf->nentries & (cf->nentries - 1)) == 0) {
		size_t cap = cf->nentries ? cf->nentries * 2 : 8;

		e = realloc(cf->entries, cap * sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
		cf->entries = e;
	}
	arg = malloc(len + 1);
	if (arg == NULL)
		return -ENOMEM;
	memcpy(arg, "--", 2);
	memcpy(arg + 2, name, nlen);
	if (value) {
		arg[2 + nlen] = '=';
		memcpy(arg + 3 + nlen, value->base, value->len);
	}
	arg[len] = '\0';
	cf->entries[cf->nentries++] = (struct config_file_entry){arg, line, opt};
	return 0;
}

/* Takes the quotes off a "quoted" value; -1 when they do not pair up. */
static int cf_unquote(struct slice *v)
{
	if (v->len == 0 || (v->base[0] != '"' && v->base[v->len - 1] != '"'))
		return 0;
	if (v->len < 2 || v->base[0] != '"' || v->base[v->len - 1] != '"' ||
	    memchr(v->base + 1, '"', v->len - 2) != NULL)
		return -1;
	*v = slice_make(v->base + 1, v->len - 2);
	return 0;
}

/* One `key = value` whose key is known: checks the value's form, adds it. */
static int cf_add_pair(struct config_file *cf, const char *path, unsigned line, size_t opt,
		       const struct option *o, struct slice value)
{
	if (cf_unquote(&value) < 0)
		return cf_fail(cf, path, line, "unbalanced quotes in the value of '%s'", o->name);
	if (value.len == 0)
		return cf_fail(cf, path, line, "no value for '%s'", o->name);
	if (o->has_arg != no_argument)
		return cf_add(cf, opt, o->name, &value, line);
	if (slice_eq(value, LIT("true")))
		return cf_add(cf, opt, o->name, NULL, line);
	if (slice_eq(value, LIT("false")))
		return 0;
	return cf_fail(cf, path, line, "'%s' takes true or false", o->name);
}

static int cf_parse_line(struct config_file *cf, const char *path, unsigned line, struct slice text,
			 const struct option *opts)
{
	const char *eq;
	struct slice key;
	long opt;
	int bad;

	if (text.len > 0 && text.base[text.len - 1] == '\r')
		text.len--; /* a file written on Windows */
	bad = cf_bad_byte(text);
	if (bad == 1)
		return cf_fail(cf, path, line, "NUL byte");
	if (bad)
		return cf_fail(cf, path, line, "control character 0x%02x", bad - 1);
	text = slice_trim_blanks(text);
	if (text.len == 0 || text.base[0] == '#')
		return 0;
	eq = memchr(text.base, '=', text.len);
	if (eq == NULL)
		return cf_fail(cf, path, line, "expected 'key = value'");
	key = slice_trim_blanks(slice_make(text.base, (size_t)(eq - text.base)));
	opt = cf_find_option(opts, key);
	if (opt < 0 || key.len == 0)
		return cf_fail(cf, path, line, "unknown key '%.*s%s'",
			       (int)(key.len > CF_KEY_SHOWN ? CF_KEY_SHOWN : key.len), key.base,
			       key.len > CF_KEY_SHOWN ? "..." : "");
	if (cf_reserved_name(opts[opt].name))
		return cf_fail(cf, path, line, "'%s' cannot be set in a config file",
			       opts[opt].name);
	return cf_add_pair(cf, path, line, (size_t)opt, &opts[opt],
			   slice_trim_blanks(slice_make(eq + 1, (size_t)(text.base + text.len - eq - 1))));
}

int config_file_parse(struct config_file *cf, const char *path, const char *data, size_t len,
		      const struct option *opts)
{
	const char *p = data, *end = data + len, *nl;
	unsigned line = 1;
	size_t n;
	int rc;

	cf->path = path;
	if (len > CONFIG_FILE_MAX_BYTES) {
		cf_fail(cf, path, 0, "larger than %d bytes", CONFIG_FILE_MAX_BYTES);
		return -E2BIG;
	}
	for (; p < end; p += n + 1, line++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (n > CONFIG_FILE_MAX_LINE)
			return cf_fail(cf, path, line, "line longer than %d bytes",
				       CONFIG_FILE_MAX_LINE);
		rc = cf_parse_line(cf, path, line, slice_make(p, n), opts);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int config_file_load(struct config_file *cf, const char *path, const struct option *opts)
{
	char *data;
	size_t len;
	int rc;

	cf->path = path;
	rc = fs_read_file(path, CONFIG_FILE_MAX_BYTES, &data, &len);
	if (rc == -E2BIG) {
		cf_fail(cf, path, 0, "larger than %d bytes", CONFIG_FILE_MAX_BYTES);
		return rc;
	}
	if (rc < 0) {
		cf_fail(cf, path, 0, "cannot read the config file: %s", strerror(-rc));
		return rc;
	}
	rc = config_file_parse(cf, path, data, len, opts);
	free(data);
	return rc;
}

/* The option table index getopt_long's answer ch stands for, or -1. */
static long cf_index_of(const struct option *opts, int ch, int longindex)
{
	size_t i;

	if (longindex >= 0)
		return longindex;
	for (i = 0; ch != '?' && ch != ':' && opts[i].name != NULL; i++)
		if (opts[i].flag == NULL && opts[i].val == ch)
			return (long)i;
	return -1;
}

/*
 * Reads argv as the program's getopt loop will (on a copy: GNU getopt
 * reorders it), marking in given[] each option present and returning the
 * last --config's value in *path. Errors are left for the program's loop.
 */
static int cf_scan(int argc, char **argv, const char *optstring, const struct option *opts,
		   long config_opt, unsigned char *given, const char **path)
{
	char **copy = calloc((size_t)argc + 1, sizeof(*copy));
	int saved_opterr = opterr, ch, li;
	long i;

	if (copy == NULL)
		return -ENOMEM;
	memcpy(copy, argv, (size_t)argc * sizeof(*copy));
	opterr = 0;
	optind = 0; /* glibc and musl: start over */
	for (li = -1; (ch = getopt_long(argc, copy, optstring, opts, &li)) != -1; li = -1) {
		i = cf_index_of(opts, ch, li);
		if (i < 0)
			continue;
		given[i] = 1;
		if (i == config_opt)
			*path = optarg;
	}
	opterr = saved_opterr;
	optind = 0;
	free(copy);
	return 0;
}

/* cf->argv: argv[0], the file's flags the command line does not give, argv[1..]. */
static int cf_build_argv(struct config_file *cf, int argc, char **argv, const unsigned char *given)
{
	size_t i, n = 0;

	cf->argv = calloc((size_t)argc + cf->nentries + 1, sizeof(*cf->argv));
	if (cf->argv == NULL)
		return -ENOMEM;
	cf->argv[n++] = argv[0];
	for (i = 0; i < cf->nentries; i++)
		if (!given[cf->entries[i].opt])
			cf->argv[n++] = cf->entries[i].arg;
	for (i = 1; i < (size_t)argc; i++)
		cf->argv[n++] = argv[i];
	cf->argc = (int)n;
	return 0;
}

int config_file_merge(struct config_file *cf, int argc, char **argv, const char *optstring,
		      const struct option *opts)
{
	const char *path = NULL;
	unsigned char *given;
	long config_opt = cf_find_option(opts, LIT(CONFIG_FILE_OPTION)), nopts;
	int rc;

	memset(cf, 0, sizeof(*cf));
	if (config_opt < 0 || opts[config_opt].has_arg != required_argument || argc < 1)
		return cf_fail(cf, "--" CONFIG_FILE_OPTION, 0, "not in the option table");
	for (nopts = 0; opts[nopts].name != NULL; nopts++)
		;
	given = calloc((size_t)nopts, 1);
	if (given == NULL)
		return -ENOMEM;
	rc = cf_scan(argc, argv, optstring, opts, config_opt, given, &path);
	if (rc == 0 && path != NULL)
		rc = config_file_load(cf, path, opts);
	if (rc == 0)
		rc = cf_build_argv(cf, argc, argv, given);
	free(given);
	if (rc < 0) {
		char err[sizeof(cf->err)];

		memcpy(err, cf->err, sizeof(err));
		config_file_free(cf);
		memcpy(cf->err, err, sizeof(err));
	}
	return rc < 0 && rc != -ENOMEM ? -EINVAL : rc;
}

const char *config_file_where(struct config_file *cf, const char *arg)
{
	uintptr_t a = (uintptr_t)arg, base;
	size_t i;
	int n;

	for (i = 0; arg != NULL && i < cf->nentries; i++) {
		base = (uintptr_t)cf->entries[i].arg;
		if (a < base || a > base + strlen(cf->entries[i].arg))
			continue;
		n = snprintf(cf->where, sizeof(cf->where), "%s:%u: ", cf->path,
			     cf->entries[i].line);
		if (n < 0 || (size_t)n >= sizeof(cf->where))
			n = snprintf(cf->where, sizeof(cf->where),
				     "config file line %u: ", cf->entries[i].line);
		return n < 0 ? "" : cf->where;
	}
	return "";
}

void config_file_free(struct config_file *cf)
{
	size_t i;

	if (cf == NULL)
		return;
	for (i = 0; i < cf->nentries; i++)
		free(cf->entries[i].arg);
	free(cf->entries);
	free(cf->argv);
	memset(cf, 0, sizeof(*cf));
}
