/*
 * cmd_cluster_set.c - `lxcm cluster set NAME`: change a cluster's
 * description and alert thresholds with a PATCH of only the given fields.
 */
#include "cli/cli.h"

#include "cli/cmdrun.h"
#include "cli/util.h"

enum { SET_DESCRIPTION, SET_DISK, SET_MEMORY };

static const struct option cluster_set_options[] = {
    {"description", required_argument, NULL, CLI_OPT_OWN + SET_DESCRIPTION},
    {"disk-threshold", required_argument, NULL, CLI_OPT_OWN + SET_DISK},
    {"memory-threshold", required_argument, NULL, CLI_OPT_OWN + SET_MEMORY},
    {NULL, 0, NULL, 0},
};

/* Adds --WHICH-threshold to the patch if given; 0 or an exit code, printed. */
static int cluster_set_threshold(json_t *patch, const struct cli_args *a, int opt,
				 const char *which, const char *key)
{
	const char *arg = a->opt[opt];
	int pct;

	if (arg == NULL)
		return 0;
	if (util_parse_percent(arg, &pct) != 0) {
		fprintf(stderr,
			"%s: --%s-threshold must be a whole number from 0 to 100, not '%s'\n",
			a->name, which, arg);
		return CLI_EXIT_USAGE;
	}
	return json_object_set_new(patch, key, json_integer(pct)) == 0 ? 0 : CLI_EXIT_FAIL;
}

/* Fills the patch with the fields given; 0 or an exit code, printed. */
static int cluster_set_patch(json_t *patch, const struct cli_args *a)
{
	const char *desc = a->opt[SET_DESCRIPTION];
	int rc;

	if (desc != NULL && json_object_set_new(patch, "description", json_string(desc)) != 0) {
		fprintf(stderr, "%s: --description must be valid UTF-8\n", a->name);
		return CLI_EXIT_USAGE;
	}
	rc = cluster_set_threshold(patch, a, SET_DISK, "disk", "disk_threshold");
	if (rc == 0)
		rc = cluster_set_threshold(patch, a, SET_MEMORY, "memory", "memory_threshold");
	return rc;
}

static int cluster_set_run(struct cli_ctx *ctx, const struct cli_command *cmd,
			   const struct cli_args *a)
{
	json_t *patch = json_object();
	int rc;

	if (patch == NULL)
		return CLI_EXIT_FAIL;
	rc = cluster_set_patch(patch, a);
	if (rc == 0 && json_object_size(patch) == 0) {
		fprintf(stderr, "%s: nothing to change\n", a->name);
		cli_usage(cmd, stderr);
		rc = CLI_EXIT_USAGE;
	}
	if (rc == 0)
		rc = cmdrun_request(ctx, &(const struct cmdrun_req){.method = "PATCH",
								    .prefix = cmd->path,
								    .name = a->pos[0],
								    .body = patch});
	json_decref(patch);
	return rc;
}

const struct cli_command cmd_cluster_set = {
    .name = "cluster set",
    .args = "NAME [--description D] [--disk-threshold N] [--memory-threshold N]",
    .summary = "Change a cluster's description or alert thresholds",
    .help = "Only the options given are changed.\n"
	    "\n"
	    "Options:\n"
	    "  --description D       a free-form note about the cluster\n"
	    "  --disk-threshold N    storage use, in percent (0-100), above which the\n"
	    "                        cluster is flagged (default 80)\n"
	    "  --memory-threshold N  the same for memory use\n",
    .nargs = 1,
    .options = cluster_set_options,
    .fn = cluster_set_run,
    .path = "/1.0/remote-cluster",
};
