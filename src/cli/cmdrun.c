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
	} else if (ctx->json) {
		rc = output_json(md) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
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

static int cmdrun_print_list(json_t *md, const void *arg)
{
	const struct cmdrun_list *l = arg;
	size_t ncols = 0;

	while (ncols < OUTPUT_MAX_COLS && l->headers[ncols] != NULL)
		ncols++;
	if (output_list(stdout, md, ncols, l->headers, l->row, time_now()) != 0)
		return CLI_EXIT_FAIL;
	return CLI_EXIT_OK;
}

int cmdrun_list(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a)
{
	(void)a;
	return cmdrun_request(ctx, &(const struct cmdrun_req){.method = "GET",
							      .path = cmd->path,
							      .check = cmdrun_is_array,
							      .bad = cmd->list->bad,
							      .print = cmdrun_print_list,
							      .arg = cmd->list});
}

int cmdrun_delete(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a)
{
	return cmdrun_request(ctx, &(const struct cmdrun_req){
				       .method = "DELETE", .prefix = cmd->path, .name = a->pos[0]});
}
