/*
 * cmd_cluster_set.c - `lxcm cluster set NAME`: change a cluster's
 * description and alert thresholds with a PATCH of only the given fields.
 */
#include "cli/cli.h"

#include "cli/util.h"

struct cluster_set_args {
	json_t *patch;
	const char *cmd; /* for messages */
};

enum { OPT_DESCRIPTION = CLI_OPT_OWN, OPT_DISK, OPT_MEMORY };

static const struct option cluster_set_options[] = {
    {"description", required_argument, NULL, OPT_DESCRIPTION},
    {"disk-threshold", required_argument, NULL, OPT_DISK},
    {"memory-threshold", required_argument, NULL, OPT_MEMORY},
    {NULL, 0, NULL, 0},
};

static int cluster_set_opt(void *state, int val, const char *arg)
{
	struct cluster_set_args *a = state;
	const char *key = val == OPT_DISK ? "disk_threshold" : "memory_threshold";
	int pct;

	if (val == OPT_DESCRIPTION) {
		if (json_object_set_new(a->patch, "description", json_string(arg)) != 0) {
			fprintf(stderr, "%s: --description must be valid UTF-8\n", a->cmd);
			return CLI_EXIT_USAGE;
		}
		return 0;
	}
	if (util_parse_percent(arg, &pct) != 0) {
		fprintf(stderr,
			"%s: --%s-threshold must be a whole number from 0 to 100, not '%s'\n",
			a->cmd, val == OPT_DISK ? "disk" : "memory", arg);
		return CLI_EXIT_USAGE;
	}
	return json_object_set_new(a->patch, key, json_integer(pct)) == 0 ? 0 : CLI_EXIT_FAIL;
}

static int cluster_set_run(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
			   char **argv)
{
	struct cluster_set_args a = {json_object(), argv[0]};
	char path[1200];
	int first, rc;

	if (a.patch == NULL)
		return CLI_EXIT_FAIL;
	rc =
	    cli_parse(ctx, cmd, argc, argv, cluster_set_options, cluster_set_opt, &a, 1, 1, &first);
	if (rc >= 0)
		goto out;
	if (json_object_size(a.patch) == 0) {
		fprintf(stderr, "%s: nothing to change\n", argv[0]);
		cli_usage(cmd, stderr);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	rc = client_path(path, sizeof(path), "/1.0/remote-cluster", argv[first]);
	if (rc == 0)
		rc = client_request(ctx, "PATCH", path, a.patch, NULL);
out:
	json_decref(a.patch);
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
    .fn = cluster_set_run,
};
