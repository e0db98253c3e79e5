/*
 * test_cli_cmdrun.c - unit tests for what the CLI's commands share: tables
 * (src/cli/output.c), the request/reply/list/delete runners
 * (src/cli/cmdrun.c), and the commands built on them, driven through their
 * table entries. The CLI's objects are not in a library, so the sources are
 * included (h2o t/00unit); client_request and client_path are replaced by a
 * fake server that records each request and answers from a script.
 */
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

#include "../../src/cli/clusterfmt.c"
#include "../../src/cli/cmd_apitoken_create.c"
#include "../../src/cli/cmd_apitoken_list.c"
#include "../../src/cli/cmd_cluster_list.c"
#include "../../src/cli/cmd_token_revoke.c"
#include "../../src/cli/cmdrun.c"
#include "../../src/cli/output.c"
#include "../../src/cli/util.c"
#include "../../src/cli/yaml.c"

/* ---- the fake server ---- */

#define FAKE_MAX 8

struct fake_call {
	char method[16];
	char path[256];
	char *body; /* compact JSON, or NULL */
	int wants_reply;
};

static struct {
	struct fake_call calls[FAKE_MAX];
	int ncalls;
	json_t *replies[FAKE_MAX]; /* metadata to answer with; NULL: an HTTP error */
	int nreplies;
} fake;

static void fake_reset(void)
{
	int i;

	for (i = 0; i < fake.ncalls; i++)
		free(fake.calls[i].body);
	for (i = fake.ncalls; i < fake.nreplies; i++)
		json_decref(fake.replies[i]); /* scripted but never asked for */
	memset(&fake, 0, sizeof(fake));
}

/* Queues the next answer (takes the reference); NULL answers with an error. */
static void fake_answer(json_t *md)
{
	assert_true(fake.nreplies < FAKE_MAX);
	fake.replies[fake.nreplies++] = md;
}

int client_request(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
		   json_t **metadata)
{
	struct fake_call *c;
	json_t *md;

	(void)ctx;
	assert_true(fake.ncalls < fake.nreplies);
	c = &fake.calls[fake.ncalls];
	md = fake.replies[fake.ncalls++];
	snprintf(c->method, sizeof(c->method), "%s", method);
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->body = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	c->wants_reply = metadata != NULL;
	if (metadata != NULL)
		*metadata = NULL;
	if (md == NULL) {
		fputs("Error: refused (HTTP 409)\n", stderr);
		return CLI_EXIT_FAIL;
	}
	if (metadata != NULL)
		*metadata = md;
	else
		json_decref(md);
	return 0;
}

/* As client.c's: the name percent-encoded, or a usage error. */
int client_path(char *out, size_t len, const char *prefix, const char *name)
{
	char enc[1024];
	int n;

	if (util_urlencode(name, enc, sizeof(enc)) != 0) {
		fprintf(stderr, "Error: \"%s\" is not a valid name\n", name);
		return CLI_EXIT_USAGE;
	}
	n = snprintf(out, len, "%s/%s", prefix, enc);
	return n > 0 && (size_t)n < len ? 0 : CLI_EXIT_USAGE;
}

/* Each test starts and ends with a fake server that has seen nothing. */
static int fake_setup(void **state)
{
	(void)state;
	fake_reset();
	return 0;
}

/* ---- capturing stdout and stderr ---- */

struct capture {
	FILE *out, *err;
	int saved_out, saved_err;
	char stdout_text[4096], stderr_text[4096];
};

static void capture_begin(struct capture *c)
{
	fflush(stdout);
	fflush(stderr);
	c->out = tmpfile();
	c->err = tmpfile();
	assert_non_null(c->out);
	assert_non_null(c->err);
	c->saved_out = dup(STDOUT_FILENO);
	c->saved_err = dup(STDERR_FILENO);
	assert_true(dup2(fileno(c->out), STDOUT_FILENO) >= 0);
	assert_true(dup2(fileno(c->err), STDERR_FILENO) >= 0);
}

static void capture_read(FILE *f, char *buf, size_t len)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void capture_end(struct capture *c)
{
	fflush(stdout);
	fflush(stderr);
	dup2(c->saved_out, STDOUT_FILENO);
	dup2(c->saved_err, STDERR_FILENO);
	close(c->saved_out);
	close(c->saved_err);
	capture_read(c->out, c->stdout_text, sizeof(c->stdout_text));
	capture_read(c->err, c->stderr_text, sizeof(c->stderr_text));
}

/* Runs a command's entry as main.c would after parsing, capturing its output. */
static int run_cmd(const struct cli_command *cmd, int json, const char *name, const char *opt0,
		   struct capture *cap)
{
	struct cli_ctx ctx = {.prog = "lxcm", .format = json ? OUTPUT_JSON : OUTPUT_DEFAULT};
	char *pos[] = {(char *)name, NULL};
	struct cli_args a = {.name = "lxcm test", .pos = pos, .opt = {opt0}};
	int rc;

	capture_begin(cap);
	rc = cmd->fn(&ctx, cmd, &a);
	capture_end(cap);
	return rc;
}

/* ---- output_list ---- */

static int row_two(struct output_table *t, json_t *item, int64_t now)
{
	const char *row[2] = {util_json_str(item, "a"), util_json_str(item, "b")};

	(void)now;
	return output_table_add(t, row);
}

typedef int (*row_fn)(struct output_table *t, json_t *item, int64_t now);

/* A table of one row per element, printed compact (what a pipe gets) unless a row failed. */
static char *list_text(json_t *list, size_t ncols, const char *const *headers, row_fn row, int *rc)
{
	struct output_table t;
	char *text = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&text, &len);
	json_t *item;

	assert_non_null(f);
	*rc = 0;
	output_table_init(&t, ncols, headers);
	json_array_foreach(list, i, item)
	{
		*rc = row(&t, item, 0);
		if (*rc != 0)
			break;
	}
	if (*rc == 0)
		output_table_print(&t, OUTPUT_COMPACT, f);
	output_table_free(&t);
	fclose(f);
	return text;
}

/* The rows of a list command's default columns, as output_list prints them. */
static char *command_list_text(const struct cmdrun_list *l, json_t *list, int *rc)
{
	size_t idx[OUTPUT_MAX_COLS], n;
	char *text = NULL, err[256];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(output_columns_select(&l->columns, NULL, idx, &n, err, sizeof(err)), 0);
	*rc = output_list(f, OUTPUT_COMPACT, list, &l->columns, idx, n, 0);
	fclose(f);
	return text;
}

static void test_list_widths(void **state)
{
	static const char *const headers[] = {"N", "LONG HEADER"};
	json_t *list = json_loads("[{\"a\":\"wide value\",\"b\":\"x\"},"
				  "{\"a\":\"\\u00e9t\\u00e9\",\"b\":\"\"},"
				  "{\"a\":\"esc\\u001b[31m\",\"b\":\"last column, not padded\"},"
				  "{\"b\":\"no a\"}]",
				  0, NULL);
	char *text;
	int rc;

	(void)state;
	assert_non_null(list);
	text = list_text(list, 2, headers, row_two, &rc);
	assert_int_equal(rc, 0);
	/* Columns two spaces apart, sized by the widest cell in characters
	 * (not bytes: "été" is 3 wide), "-" for missing or empty cells, escape
	 * sequences made harmless, and no trailing blanks. */
	assert_string_equal(text, "N           LONG HEADER\n"
				  "wide value  x\n"
				  "été         -\n"
				  "esc?[31m    last column, not padded\n"
				  "-           no a\n");
	free(text);
	json_decref(list);
}

static void test_list_empty(void **state)
{
	static const char *const headers[] = {"NAME", "B"};
	json_t *empty = json_array(), *notalist = json_object();
	char *text;
	int rc;

	(void)state;
	text = list_text(empty, 2, headers, row_two, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(text, "NAME  B\n");
	free(text);
	/* Not an array: no rows either (cmdrun_list refuses it before). */
	text = list_text(notalist, 2, headers, row_two, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(text, "NAME  B\n");
	free(text);
	json_decref(empty);
	json_decref(notalist);
}

static int row_fails_second(struct output_table *t, json_t *item, int64_t now)
{
	return t->nrows == 1 ? -ENOMEM : row_two(t, item, now);
}

static void test_list_row_error(void **state)
{
	static const char *const headers[] = {"A", "B"};
	json_t *list = json_loads("[{\"a\":\"1\"},{\"a\":\"2\"},{\"a\":\"3\"}]", 0, NULL);
	char *text;
	int rc;

	(void)state;
	text = list_text(list, 2, headers, row_fails_second, &rc);
	assert_int_equal(rc, -ENOMEM);
	assert_string_equal(text, ""); /* nothing half-printed */
	free(text);
	json_decref(list);
}

/* cluster list skips what is not a cluster object. */
static void test_list_row_skips(void **state)
{
	json_t *list = json_loads("[42,{\"name\":\"c1\",\"status\":\"ACTIVE\"}]", 0, NULL);
	char *text;
	int rc;

	(void)state;
	text = command_list_text(&cluster_list, list, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "NAME  STATUS  MEMBERS"));
	assert_non_null(strstr(text, "\nc1    ACTIVE  -"));
	assert_null(strstr(text, "42"));
	free(text);
	json_decref(list);
}

/* ---- cmdrun_reply and cmdrun_request ---- */

static int print_name(json_t *md, const void *arg)
{
	const char *tag = arg;
	const char *name = util_json_str(md, "name");

	printf("%s:%s\n", tag ? tag : "", name ? name : "");
	return CLI_EXIT_OK;
}

static void test_reply_modes(void **state)
{
	struct cli_ctx human = {0}, json = {.format = OUTPUT_JSON};
	struct capture cap;
	int rc;

	(void)state;
	capture_begin(&cap);
	rc = cmdrun_reply(&human, json_pack("{s:s}", "name", "c1"), 1, "bad", print_name, "x");
	capture_end(&cap);
	assert_int_equal(rc, CLI_EXIT_OK);
	assert_string_equal(cap.stdout_text, "x:c1\n");
	assert_string_equal(cap.stderr_text, "");

	capture_begin(&cap);
	rc = cmdrun_reply(&json, json_pack("{s:s}", "name", "c1"), 1, "bad", print_name, "x");
	capture_end(&cap);
	assert_int_equal(rc, CLI_EXIT_OK);
	assert_string_equal(cap.stdout_text, "{\n  \"name\": \"c1\"\n}\n");

	/* A reply that is not what was asked for is an error, JSON or not. */
	capture_begin(&cap);
	rc = cmdrun_reply(&json, json_null(), 0, "the server did not send a cluster", print_name,
			  "x");
	capture_end(&cap);
	assert_int_equal(rc, CLI_EXIT_FAIL);
	assert_string_equal(cap.stdout_text, "");
	assert_string_equal(cap.stderr_text, "Error: the server did not send a cluster\n");
}

static void test_request_named(void **state)
{
	struct cli_ctx ctx = {0};
	struct capture cap;
	int rc;

	(void)state;
	fake_answer(json_pack("{s:s}", "name", "a b/c"));
	capture_begin(&cap);
	rc = cmdrun_request(&ctx, &(const struct cmdrun_req){.method = "GET",
							     .prefix = "/1.0/remote-cluster",
							     .name = "a b/c",
							     .print = print_name,
							     .arg = "got"});
	capture_end(&cap);
	assert_int_equal(rc, 0);
	assert_string_equal(fake.calls[0].path, "/1.0/remote-cluster/a%20b%2Fc");
	assert_string_equal(cap.stdout_text, "got:a b/c\n");

	/* A name that cannot be a path segment is refused before any request. */
	fake_reset();
	capture_begin(&cap);
	rc = cmdrun_request(
	    &ctx, &(const struct cmdrun_req){.method = "DELETE", .prefix = "/1.0/x", .name = ".."});
	capture_end(&cap);
	assert_int_equal(rc, CLI_EXIT_USAGE);
	assert_int_equal(fake.ncalls, 0);

	/* Without print nothing is asked for nor printed, even with --json. */
	ctx.format = OUTPUT_JSON;
	fake_answer(json_pack("{s:s}", "ignored", "yes"));
	capture_begin(&cap);
	rc = cmdrun_request(&ctx, &(const struct cmdrun_req){.method = "PATCH", .path = "/p"});
	capture_end(&cap);
	assert_int_equal(rc, 0);
	assert_int_equal(fake.calls[0].wants_reply, 0);
	assert_string_equal(cap.stdout_text, "");

	/* A refused request returns the client's exit code and prints nothing more. */
	fake_reset();
	fake_answer(NULL);
	capture_begin(&cap);
	rc = cmdrun_request(
	    &ctx, &(const struct cmdrun_req){.method = "GET", .path = "/p", .print = print_name});
	capture_end(&cap);
	assert_int_equal(rc, CLI_EXIT_FAIL);
	assert_string_equal(cap.stdout_text, "");
	assert_string_equal(cap.stderr_text, "Error: refused (HTTP 409)\n");
}

/* ---- commands through their entries ---- */

static void test_delete_entry(void **state)
{
	struct capture cap;
	int rc;

	(void)state;
	fake_answer(json_object());
	rc = run_cmd(&cmd_token_revoke, 0, "c 1", NULL, &cap);
	assert_int_equal(rc, 0);
	assert_int_equal(fake.ncalls, 1);
	assert_string_equal(fake.calls[0].method, "DELETE");
	assert_string_equal(fake.calls[0].path, "/1.0/remote-cluster-join-token/c%201");
	assert_null(fake.calls[0].body);
	assert_string_equal(cap.stdout_text, "");
}

static void test_apitoken_list_role(void **state)
{
	struct capture cap;
	int rc;

	(void)state;
	/* A server with roles, and one from before them ("-"). */
	fake_answer(json_loads("[{\"name\":\"admin\",\"role\":\"admin\",\"created_at\":\"\","
			       "\"audit_actor\":\"token:0123456789ab\"},"
			       "{\"name\":\"dash\",\"role\":\"viewer\"},{\"name\":\"old\"}]",
			       0, NULL));
	rc = run_cmd(&cmd_apitoken_list, 0, NULL, NULL, &cap);
	assert_int_equal(rc, 0);
	assert_string_equal(fake.calls[0].method, "GET");
	assert_string_equal(fake.calls[0].path, "/1.0/auth/tokens");
	assert_string_equal(cap.stdout_text, "NAME   ROLE    CREATED  AUDIT ACTOR\n"
					     "admin  admin   never    token:0123456789ab\n"
					     "dash   viewer  never    -\n"
					     "old    -       never    -\n");

	/* --json prints the server's list as it came. */
	fake_reset();
	fake_answer(json_loads("[{\"name\":\"old\"}]", 0, NULL));
	rc = run_cmd(&cmd_apitoken_list, 1, NULL, NULL, &cap);
	assert_int_equal(rc, 0);
	assert_string_equal(cap.stdout_text, "[\n  {\n    \"name\": \"old\"\n  }\n]\n");

	/* Anything but a list is an error. */
	fake_reset();
	fake_answer(json_object());
	rc = run_cmd(&cmd_apitoken_list, 0, NULL, NULL, &cap);
	assert_int_equal(rc, CLI_EXIT_FAIL);
	assert_string_equal(cap.stdout_text, "");
	assert_string_equal(cap.stderr_text, "Error: the server did not send a list of tokens\n");
}

static void test_apitoken_create_default_admin(void **state)
{
	struct capture cap;
	int rc;

	(void)state;
	fake_answer(json_pack("{s:s,s:s}", "name", "ci", "token", "lxcm_secret"));
	rc = run_cmd(&cmd_apitoken_create, 0, "ci", NULL, &cap);
	assert_int_equal(rc, 0);
	assert_int_equal(fake.ncalls, 1); /* admin needs no confirmation */
	assert_string_equal(fake.calls[0].method, "POST");
	assert_string_equal(fake.calls[0].path, "/1.0/auth/tokens");
	assert_string_equal(fake.calls[0].body, "{\"name\":\"ci\",\"role\":\"admin\"}");
	assert_string_equal(cap.stdout_text, "lxcm_secret\n");
	assert_non_null(strstr(cap.stderr_text, "API token ci created with the role admin."));

	/* A reply without a token is an error. */
	fake_reset();
	fake_answer(json_pack("{s:s}", "name", "ci"));
	rc = run_cmd(&cmd_apitoken_create, 0, "ci", NULL, &cap);
	assert_int_equal(rc, CLI_EXIT_FAIL);
	assert_string_equal(cap.stdout_text, "");
	assert_string_equal(cap.stderr_text, "Error: the server's reply holds no token\n");
}

static void test_apitoken_create_role_confirmed(void **state)
{
	struct capture cap;
	int rc;

	(void)state;
	/* Confirmed by the create reply. */
	fake_reset();
	fake_answer(json_pack("{s:s,s:s,s:s}", "name", "v", "token", "lxcm_v", "role", "viewer"));
	rc = run_cmd(&cmd_apitoken_create, 0, "v", "viewer", &cap);
	assert_int_equal(rc, 0);
	assert_int_equal(fake.ncalls, 1);
	assert_string_equal(fake.calls[0].body, "{\"name\":\"v\",\"role\":\"viewer\"}");
	assert_string_equal(cap.stdout_text, "lxcm_v\n");

	/* Confirmed by the token list when the reply does not say. */
	fake_reset();
	fake_answer(json_pack("{s:s,s:s}", "name", "o", "token", "lxcm_o"));
	fake_answer(json_loads("[{\"name\":\"admin\",\"role\":\"admin\"},"
			       "{\"name\":\"o\",\"role\":\"operator\"}]",
			       0, NULL));
	rc = run_cmd(&cmd_apitoken_create, 1, "o", "operator", &cap);
	assert_int_equal(rc, 0);
	assert_int_equal(fake.ncalls, 2);
	assert_string_equal(fake.calls[1].method, "GET");
	assert_string_equal(fake.calls[1].path, "/1.0/auth/tokens");
	assert_non_null(strstr(cap.stdout_text, "\"token\": \"lxcm_o\""));
}

/* A server from before roles made an admin token: it is taken back. */
static void test_apitoken_create_role_ignored(void **state)
{
	struct capture cap;
	int rc;

	(void)state;
	fake_answer(json_pack("{s:s,s:s}", "name", "v", "token", "lxcm_v"));
	fake_answer(json_loads("[{\"name\":\"admin\"},{\"name\":\"v\"}]", 0, NULL));
	fake_answer(json_object());
	rc = run_cmd(&cmd_apitoken_create, 0, "v", "viewer", &cap);
	assert_int_equal(rc, CLI_EXIT_FAIL);
	assert_int_equal(fake.ncalls, 3);
	assert_string_equal(fake.calls[2].method, "DELETE");
	assert_string_equal(fake.calls[2].path, "/1.0/auth/tokens/v");
	assert_string_equal(cap.stdout_text, ""); /* the secret is never shown */
	assert_non_null(strstr(cap.stderr_text, "did not confirm the role viewer"));

	/* Another role than asked for is the same; a failed revoke says what to do. */
	fake_reset();
	fake_answer(json_pack("{s:s,s:s,s:s}", "name", "v", "token", "lxcm_v", "role", "admin"));
	fake_answer(NULL);
	rc = run_cmd(&cmd_apitoken_create, 0, "v", "viewer", &cap);
	assert_int_equal(rc, CLI_EXIT_FAIL);
	assert_int_equal(fake.ncalls, 2);
	assert_string_equal(fake.calls[1].method, "DELETE");
	assert_string_equal(cap.stdout_text, "");
	assert_non_null(strstr(cap.stderr_text, "revoke it with 'lxcm api-token revoke v'"));
}

static void test_apitoken_create_bad_role(void **state)
{
	struct capture cap;
	int rc;

	(void)state;
	rc = run_cmd(&cmd_apitoken_create, 0, "x", "root", &cap);
	assert_int_equal(rc, CLI_EXIT_USAGE);
	assert_int_equal(fake.ncalls, 0);
	assert_string_equal(cap.stderr_text, "lxcm test: --role must be admin, operator or viewer, "
					     "not 'root'\n");
	rc = run_cmd(&cmd_apitoken_create, 0, "x", "", &cap);
	assert_int_equal(rc, CLI_EXIT_USAGE);
	assert_int_equal(fake.ncalls, 0);
}

#define FAKE_TEST(f) cmocka_unit_test_setup_teardown(f, fake_setup, fake_setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    FAKE_TEST(test_list_widths),
	    FAKE_TEST(test_list_empty),
	    FAKE_TEST(test_list_row_error),
	    FAKE_TEST(test_list_row_skips),
	    FAKE_TEST(test_reply_modes),
	    FAKE_TEST(test_request_named),
	    FAKE_TEST(test_delete_entry),
	    FAKE_TEST(test_apitoken_list_role),
	    FAKE_TEST(test_apitoken_create_default_admin),
	    FAKE_TEST(test_apitoken_create_role_confirmed),
	    FAKE_TEST(test_apitoken_create_role_ignored),
	    FAKE_TEST(test_apitoken_create_bad_role),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
