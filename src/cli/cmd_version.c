/* cmd_version.c - `lxcm version`. */
#include "cli/cli.h"

#include "cli/cmdrun.h"
#include "common/version.h"

static int version_print(json_t *v, const void *arg)
{
	(void)v;
	(void)arg;
	printf("lxcm %s\n", lxcm_version());
	return CLI_EXIT_OK;
}

static int version_run(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a)
{
	json_t *v = json_pack("{s:s}", "version", lxcm_version());

	(void)cmd;
	(void)a;
	return cmdrun_reply(ctx, v, v != NULL, "out of memory", version_print, NULL);
}

const struct cli_command cmd_version = {
    .name = "version",
    .args = "",
    .summary = "Print the version of this client",
    .help = "",
    .fn = version_run,
};
