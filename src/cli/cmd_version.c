/*
 * cmd_version.c - `lxcm version`.
 */
#include "cli/cli.h"
#include "common/version.h"

#include "cli/output.h"


static int version_run(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
	json_t *v;
	int first, rc;

	rc = cli_parse(ctx, cmd, argc, argv, NULL, NULL, NULL, 0, 0, &first);
	if (rc >= 0)
		return rc;
	if (!ctx->json) {
		printf("lxcm %s\n", lxcm_version());
		return CLI_EXIT_OK;
	}
	v = json_pack("{s:s}", "version", lxcm_version());
	rc = v && output_json(v) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	json_decref(v);
	return rc;
}

const struct cli_command cmd_version = {
    .name = "version",
    .args = "",
    .summary = "Print the version of this client",
    .help = "",
    .fn = version_run,
};
