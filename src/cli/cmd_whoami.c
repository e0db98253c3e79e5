/* cmd_whoami.c - `lxcm whoami`: who the manager takes this client for (GET /1.0). */
#include "cli/cli.h"
#include <string.h>

#include "cli/cmdrun.h"
#include "cli/output.h"
#include "cli/util.h"

static int whoami_valid(json_t *md)
{
	return json_is_object(md) && json_is_string(json_object_get(md, "auth"));
}

static int whoami_print(json_t *md, const void *arg)
{
	const char *auth = util_json_str(md, "auth");

	(void)arg;
	output_kv("auth", auth);
	if (auth == NULL || strcmp(auth, "trusted") != 0)
		return CLI_EXIT_OK;
	output_kv("user", util_json_str(md, "auth_user_name"));
	output_kv("method", util_json_str(md, "auth_user_method"));
	output_kv("role", util_json_str(md, "role"));
	if (util_json_str(md, "expires_at") != NULL)
		output_kv("session expires", util_json_str(md, "expires_at"));
	return CLI_EXIT_OK;
}

static int whoami_run(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a)
{
	(void)a;
	return cmdrun_request(ctx, &(const struct cmdrun_req){.method = "GET",
							      .path = cmd->path,
							      .check = whoami_valid,
							      .bad = "the server did not say who you are",
							      .print = whoami_print});
}

const struct cli_command cmd_whoami = {
    .name = "whoami",
    .args = "",
    .summary = "Show who the manager takes you for, and your role",
    .help = "Asks GET /1.0 with this client's credential and prints \"auth\"\n"
	    "(trusted or untrusted), the user name, how they authenticated\n"
	    "(token or oidc) and the role; --json prints the whole answer.\n",
    .fn = whoami_run,
    .path = "/1.0",
};
