/* cmdrun.c - request, reply and table shapes shared by the commands (cmdrun.h). */
#include "cli/cmdrun.h"

#include "common/timefmt.h"

int cmdrun_reply(const struct cli_ctx *ctx, json_t *md, int ok, const char *bad,
		 int (*print)(json_t *md, const void *arg), const void *arg)
{
	int rc;

	if (!ok) {
		fprintf(stderr, "Error: %s\n", bad);
		rc = CLI_EXIT_FAIL;
	} else if (ctx->format == OUTPUT_JSON || ctx->format == OUTPUT_YAML) {
		rc = output_value(stdout, ctx->format, md) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	} else {
		rc = print(md, arg);
	}
	json_decref(md);
	return rc;
}

int cmdrun_request(struct cli_ctx *ctx, const struct cmdrun_req *r)
{
	char buf[1200];
	const char *path = r->path;
	json_t *md = NULL;
	int rc;

	if (path == NULL) {
		rc = client_path(buf, sizeof(buf), r->prefix, r->name);
		if (rc != 0)
			return rc;
		path = buf;
	}
	rc = client_request(ctx, r->method, path, r->body, r->print ? &md : NULL);
	if (rc != 0 || r->print == NULL)
		return rc;
	return cmdrun_reply(ctx, md, r->check == NULL || r->check(md), r->bad, r->print, r->arg);
}

static int cmdrun_is_array(json_t *md)
{
	return json_is_array(md);
}

/* What a list prints, chosen before the request. */
struct cmdrun_listing {
	const struct cmdrun_list *list;
	enum output_format format;
	size_t idx[OUTPUT_MAX_COLS];
	size_t n;
};

static int cmdrun_print_list(json_t *md, const void *arg)
{
	const struct cmdrun_listing *l = arg;

	if (output_list(stdout, l->format, md, &l->list->columns, l->idx, l->n, time_now()) != 0)
		return CLI_EXIT_FAIL;
	return CLI_EXIT_OK;
}

/* The list commands' own option: a->opt[CMDRUN_LIST_COLUMNS]. */
enum { CMDRUN_LIST_COLUMNS };
const struct option cmdrun_list_options[] = {
    {"columns", required_argument, NULL, 'c'},
    {NULL, 0, NULL, 0},
};

int cmdrun_list(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a)
{
	struct cmdrun_listing l = {.list = cmd->list,
				   .format = output_format_resolve(ctx->format, stdout)};
	char err[512];

	if (output_columns_select(&cmd->list->columns, a->opt[CMDRUN_LIST_COLUMNS], l.idx, &l.n,
				  err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: -c: %s\n", a->name, err);
		return CLI_EXIT_USAGE;
	}
	return cmdrun_request(ctx, &(const struct cmdrun_req){.method = "GET",
							      .path = cmd->path,
							      .check = cmdrun_is_array,
							      .bad = cmd->list->bad,
							      .print = cmdrun_print_list,
							      .arg = &l});
}

/* The long name of a list's column by letter, for the help's example. */
static const char *cmdrun_column_name(const struct output_columns *c, char letter)
{
	const struct output_column *col;

	for (col = c->cols; col->letter != '\0'; col++)
		if (col->letter == letter)
			return col->name;
	return "?";
}

void cmdrun_list_help(const struct cli_command *cmd, FILE *out)
{
	const struct output_columns *c = &cmd->list->columns;

	fprintf(out,
		"\nOptions:\n"
		"  --format FORMAT        " OUTPUT_FORMAT_NAMES " (see 'lxcm --help');\n"
		"                         json and yaml print the server's objects whole\n"
		"  -c, --columns COLUMNS  the columns to show, in this order: letters (%s)\n"
		"                         or names and letters separated by commas\n"
		"                         (%s,%s)\n\n",
		c->defaults, cmdrun_column_name(c, c->defaults[0]),
		cmdrun_column_name(c, c->defaults[1]));
	output_columns_help(c, out);
}

int cmdrun_delete(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a)
{
	return cmdrun_request(ctx, &(const struct cmdrun_req){
				       .method = "DELETE", .prefix = cmd->path, .name = a->pos[0]});
}
