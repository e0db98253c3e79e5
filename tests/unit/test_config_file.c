/* test_config_file.c - `--config FILE` (src/common/config_file.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config_file.h"
#include "common/slice.h"

/* A table shaped like the agent's: char vals, a boolean, a repeatable flag. */
static const struct option opts[] = {
    {"data-dir", required_argument, NULL, 'd'},
    {"interval", required_argument, NULL, 'i'},
    {"once", no_argument, NULL, 'o'},
    {"allow-path", required_argument, NULL, 'a'},
    {"config", required_argument, NULL, 'C'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* What a program's getopt loop made of an argv. */
struct parsed {
	const char *dir;
	long long interval;
	int once;
	const char *allow[8];
	size_t nallow;
	char bad_where[128]; /* config_file_where of a bad --interval */
};

static int parse_like_a_program(struct config_file *cf, struct parsed *p)
{
	int ch;

	memset(p, 0, sizeof(*p));
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(cf->argc, cf->argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			p->dir = optarg;
			break;
		case 'i':
			if (slice_to_int64(slice_cstr(optarg), 1, 86400, &p->interval) < 0) {
				snprintf(p->bad_where, sizeof(p->bad_where), "%s",
					 config_file_where(cf, optarg));
				return -1;
			}
			break;
		case 'o':
			p->once = 1;
			break;
		case 'a':
			p->allow[p->nallow++] = optarg;
			break;
		case 'C':
			break;
		default:
			return -2;
		}
	}
	return optind == cf->argc ? 0 : -3;
}

static char *write_temp(const char *data, size_t len)
{
	char *path = strdup("/tmp/lxcm-test-config-XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Parses text; returns the rc, the entries in cf. */
static int parse(struct config_file *cf, const char *text, size_t len)
{
	memset(cf, 0, sizeof(*cf));
	return config_file_parse(cf, "t.conf", text, len, opts);
}

#define PARSE(cf, lit) parse((cf), (lit), sizeof(lit) - 1)

static void test_comments_and_whitespace(void **state)
{
	struct config_file cf;

	(void)state;
	assert_int_equal(PARSE(&cf, "# a comment\n"
				    "\n"
				    "   \t\n"
				    "  data-dir   =   /var/lib/x  \n"
				    "\t# indented comment = not a key\n"
				    "interval=30\r\n"
				    "allow-path = /1.0\n"
				    "allow-path =/ui#not-a-comment\n"
				    "once = true"),
			 0);
	assert_int_equal(cf.nentries, 5);
	assert_string_equal(cf.entries[0].arg, "--data-dir=/var/lib/x");
	assert_int_equal(cf.entries[0].line, 4);
	assert_string_equal(cf.entries[1].arg, "--interval=30");
	assert_int_equal(cf.entries[1].line, 6);
	assert_string_equal(cf.entries[2].arg, "--allow-path=/1.0");
	assert_string_equal(cf.entries[3].arg, "--allow-path=/ui#not-a-comment");
	assert_string_equal(cf.entries[4].arg, "--once");
	assert_int_equal(cf.entries[4].line, 9);
	config_file_free(&cf);

	/* Empty, only comments: no entries, no error. */
	assert_int_equal(PARSE(&cf, ""), 0);
	assert_int_equal(cf.nentries, 0);
	assert_int_equal(PARSE(&cf, "#\n#\n"), 0);
	assert_int_equal(cf.nentries, 0);
	config_file_free(&cf);
}

static void test_values(void **state)
{
	struct config_file cf;

	(void)state;
	/* Quotes keep blanks and '#'; '=' in a value is the value's. */
	assert_int_equal(PARSE(&cf, "data-dir = \" /a b # c \"\n"
				    "allow-path = /x=y\n"
				    "once = false\n"),
			 0);
	assert_int_equal(cf.nentries, 2); /* false adds nothing */
	assert_string_equal(cf.entries[0].arg, "--data-dir= /a b # c ");
	assert_string_equal(cf.entries[1].arg, "--allow-path=/x=y");
	config_file_free(&cf);

	assert_int_equal(PARSE(&cf, "\n\ndata-dir = \"/a\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:3: unbalanced quotes in the value of 'data-dir'");
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "data-dir = /a\"\n"), -EINVAL);
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "data-dir = \"a\"b\"\n"), -EINVAL);
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "data-dir = \"\n"), -EINVAL);
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "data-dir = \"\"\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:1: no value for 'data-dir'");
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "data-dir =\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:1: no value for 'data-dir'");
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "once = yes\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:1: 'once' takes true or false");
	config_file_free(&cf);
}

static void test_bad_lines(void **state)
{
	struct config_file cf;

	(void)state;
	assert_int_equal(PARSE(&cf, "# ok\ninterval = 5\nnope = 1\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:3: unknown key 'nope'");
	config_file_free(&cf);
	/* No abbreviations, no "--", no case folding. */
	assert_int_equal(PARSE(&cf, "inter = 5\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:1: unknown key 'inter'");
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "--interval = 5\n"), -EINVAL);
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "Interval = 5\n"), -EINVAL);
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "= 5\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:1: unknown key ''");
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "\ninterval 5\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:2: expected 'key = value'");
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "once\n"), -EINVAL);
	config_file_free(&cf);
	/* A file cannot name a file, nor ask for help. */
	assert_int_equal(PARSE(&cf, "config = /etc/x\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:1: 'config' cannot be set in a config file");
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "help = true\n"), -EINVAL);
	config_file_free(&cf);
	/* A long key is cut in the message. */
	{
		char line[200];

		memset(line, 'k', 150);
		memcpy(line + 150, " = 1\n", 6);
		assert_int_equal(parse(&cf, line, strlen(line)), -EINVAL);
		assert_non_null(strstr(cf.err, "...'"));
		assert_true(strlen(cf.err) < 120);
		config_file_free(&cf);
	}
}

static void test_nul_and_control_bytes(void **state)
{
	struct config_file cf;

	(void)state;
	assert_int_equal(PARSE(&cf, "interval = 5\ndata-dir = /a\0b\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:2: NUL byte");
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "\0"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:1: NUL byte");
	config_file_free(&cf);
	/* Even inside a comment: such a file is not text. */
	assert_int_equal(PARSE(&cf, "# \0\n"), -EINVAL);
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "data-dir = /a\033[31m\n"), -EINVAL);
	assert_string_equal(cf.err, "t.conf:1: control character 0x1b");
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "data-dir = /a\rb\n"), -EINVAL);
	config_file_free(&cf);
	assert_int_equal(PARSE(&cf, "data-dir = /a\x7f\n"), -EINVAL);
	config_file_free(&cf);
	/* Bytes above 0x7f (UTF-8) are fine. */
	assert_int_equal(PARSE(&cf, "data-dir = /caf\xc3\xa9\n"), 0);
	config_file_free(&cf);
}

static void test_caps(void **state)
{
	struct config_file cf;
	size_t n = CONFIG_FILE_MAX_LINE + 64;
	char *text = malloc(CONFIG_FILE_MAX_BYTES + 2), *path;
	int rc;

	(void)state;
	assert_non_null(text);
	/* A line of exactly the cap is fine; one byte more is not. */
	memcpy(text, "# ok\ndata-dir = ", 16);
	memset(text + 16, 'x', n - 16);
	text[5 + CONFIG_FILE_MAX_LINE] = '\n';
	assert_int_equal(parse(&cf, text, 6 + CONFIG_FILE_MAX_LINE), 0);
	config_file_free(&cf);
	text[5 + CONFIG_FILE_MAX_LINE] = 'x';
	text[6 + CONFIG_FILE_MAX_LINE] = '\n';
	assert_int_equal(parse(&cf, text, 7 + CONFIG_FILE_MAX_LINE), -EINVAL);
	assert_string_equal(cf.err, "t.conf:2: line longer than 4096 bytes");
	config_file_free(&cf);

	/* The file cap, in memory and on disk. */
	memset(text, '#', CONFIG_FILE_MAX_BYTES + 1);
	for (size_t i = 1000; i < CONFIG_FILE_MAX_BYTES + 1; i += 1000)
		text[i] = '\n';
	assert_int_equal(parse(&cf, text, CONFIG_FILE_MAX_BYTES), 0);
	config_file_free(&cf);
	assert_int_equal(parse(&cf, text, CONFIG_FILE_MAX_BYTES + 1), -E2BIG);
	assert_string_equal(cf.err, "t.conf: larger than 262144 bytes");
	config_file_free(&cf);
	path = write_temp(text, CONFIG_FILE_MAX_BYTES + 1);
	memset(&cf, 0, sizeof(cf));
	rc = config_file_load(&cf, path, opts);
	assert_int_equal(rc, -E2BIG);
	assert_non_null(strstr(cf.err, "larger than 262144 bytes"));
	assert_int_equal(strncmp(cf.err, path, strlen(path)), 0);
	config_file_free(&cf);
	unlink(path);
	free(path);
	free(text);
}

static void test_missing_file(void **state)
{
	struct config_file cf;
	char *argv[] = {"prog", "--config", "/nonexistent/lxcm.conf", NULL};

	(void)state;
	memset(&cf, 0, sizeof(cf));
	assert_int_equal(config_file_load(&cf, "/nonexistent/lxcm.conf", opts), -ENOENT);
	assert_string_equal(cf.err, "/nonexistent/lxcm.conf: cannot read the config file: "
				    "No such file or directory");
	config_file_free(&cf);
	assert_int_equal(config_file_merge(&cf, 3, argv, ":h", opts), -EINVAL);
	assert_null(cf.argv);
	assert_non_null(strstr(cf.err, "No such file"));
	config_file_free(&cf);
}

static void test_without_config(void **state)
{
	struct config_file cf;
	char *argv[] = {"prog", "--interval", "9", "--once", NULL};
	struct parsed p;

	(void)state;
	assert_int_equal(config_file_merge(&cf, 4, argv, ":h", opts), 0);
	assert_int_equal(cf.argc, 4);
	for (int i = 0; i < 4; i++)
		assert_ptr_equal(cf.argv[i], argv[i]);
	assert_null(cf.argv[4]);
	assert_int_equal(parse_like_a_program(&cf, &p), 0);
	assert_int_equal(p.interval, 9);
	config_file_free(&cf);

	/* A table without a config entry is the program's bug, said plainly. */
	{
		static const struct option no_config[] = {{"once", no_argument, NULL, 'o'},
							  {NULL, 0, NULL, 0}};

		assert_int_equal(config_file_merge(&cf, 4, argv, ":h", no_config), -EINVAL);
		assert_string_equal(cf.err, "--config: not in the option table");
		config_file_free(&cf);
	}
}

static void test_command_line_overrides(void **state)
{
	static const char text[] = "data-dir = /from/file\n"
				   "interval = 5\n"
				   "allow-path = /1.0\n"
				   "allow-path = /ui\n"
				   "once = true\n";
	char *path = write_temp(text, sizeof(text) - 1);
	struct config_file cf;
	struct parsed p;
	char want[128];

	(void)state;
	{
		/* Abbreviated, separate and joined forms all count as given. */
		char *argv[] = {"prog", "--inter", "7", "--config", path, "--allow-path=/only",
				NULL};

		assert_int_equal(config_file_merge(&cf, 6, argv, ":h", opts), 0);
		assert_int_equal(parse_like_a_program(&cf, &p), 0);
		assert_string_equal(p.dir, "/from/file");
		assert_int_equal(p.interval, 7);
		assert_int_equal(p.once, 1);
		/* A repeatable flag on the command line replaces the file's lines. */
		assert_int_equal(p.nallow, 1);
		assert_string_equal(p.allow[0], "/only");
		/* The program's argv is left as it was. */
		assert_string_equal(argv[1], "--inter");
		config_file_free(&cf);
	}
	{
		char *argv[] = {"prog", "--config=", NULL};

		argv[1] = malloc(strlen(path) + 10);
		assert_non_null(argv[1]);
		memcpy(argv[1], "--config=", 9);
		memcpy(argv[1] + 9, path, strlen(path) + 1);
		assert_int_equal(config_file_merge(&cf, 2, argv, ":h", opts), 0);
		assert_int_equal(cf.argc, 1 + 5 + 1);
		assert_int_equal(parse_like_a_program(&cf, &p), 0);
		assert_int_equal(p.interval, 5);
		assert_int_equal(p.nallow, 2);
		assert_string_equal(p.allow[1], "/ui");
		/* Values from the file are named by their line; others are not. */
		assert_true(snprintf(want, sizeof(want), "%s:4: ", path) < (int)sizeof(want));
		assert_string_equal(config_file_where(&cf, p.allow[1]), want);
		assert_string_equal(config_file_where(&cf, argv[1]), "");
		assert_string_equal(config_file_where(&cf, NULL), "");
		config_file_free(&cf);
		free(argv[1]);
	}
	unlink(path);
	free(path);
}

static void test_bad_value_names_the_line(void **state)
{
	static const char text[] = "# heartbeat\n\ninterval = 0\n";
	char *path = write_temp(text, sizeof(text) - 1);
	char *argv[] = {"prog", "--config", path, NULL};
	char want[128];
	struct config_file cf;
	struct parsed p;

	(void)state;
	assert_int_equal(config_file_merge(&cf, 3, argv, ":h", opts), 0);
	assert_int_equal(parse_like_a_program(&cf, &p), -1);
	assert_true(snprintf(want, sizeof(want), "%s:3: ", path) < (int)sizeof(want));
	assert_string_equal(p.bad_where, want);
	config_file_free(&cf);
	/* The same value on the command line is not blamed on the file. */
	{
		char *argv2[] = {"prog", "--config", path, "--interval", "0", NULL};

		assert_int_equal(config_file_merge(&cf, 5, argv2, ":h", opts), 0);
		assert_int_equal(parse_like_a_program(&cf, &p), -1);
		assert_string_equal(p.bad_where, "");
		config_file_free(&cf);
	}
	unlink(path);
	free(path);
}

static void test_free_is_null_safe(void **state)
{
	(void)state;
	config_file_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_comments_and_whitespace),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_bad_lines),
	    cmocka_unit_test(test_nul_and_control_bytes),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_without_config),
	    cmocka_unit_test(test_command_line_overrides),
	    cmocka_unit_test(test_bad_value_names_the_line),
	    cmocka_unit_test(test_free_is_null_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
