/*
 * cmd_token_create.c - `lxcm token create NAME`: a join token for a cluster
 * that is not enrolled yet, printed with the commands that use it.
 */
#include "cli/cli.h"

#include <string.h>

#include "cli/cmdrun.h"
#include "cli/util.h"
#include "common/jointoken.h"
#include "common/timefmt.h"

enum { CREATE_DESCRIPTION, CREATE_EXPIRY };

static const struct option token_create_options[] = {
    {"description", required_argument, NULL, CLI_OPT_OWN + CREATE_DESCRIPTION},
    {"expiry", required_argument, NULL, CLI_OPT_OWN + CREATE_EXPIRY},
    {NULL, 0, NULL, 0},
};

/* The request body; NULL after printing why (a usage error). */
static json_t *token_create_body(const struct cli_args *a)
{
	const char *description = a->opt[CREATE_DESCRIPTION], *expiry = a->opt[CREATE_EXPIRY];
	json_t *body = json_object();
	char when[TIME_RFC3339_LEN];
	int bad = body == NULL;

	bad = bad || json_object_set_new(body, "cluster_name", json_string(a->pos[0])) != 0;
	if (!bad && description)
		bad = json_object_set_new(body, "description", json_string(description)) != 0;
	if (bad) {
		fputs("lxcm token create: NAME and --description must be valid UTF-8\n", stderr);
		json_decref(body);
		return NULL;
	}
	if (expiry == NULL)
		return body;
	if (util_parse_expiry(expiry, time_now(), when, sizeof(when)) != 0 ||
	    json_object_set_new(body, "expiry", json_string(when)) != 0) {
		fprintf(stderr,
			"lxcm token create: invalid --expiry '%s': give a future RFC 3339 time "
			"(2030-01-31T12:00:00Z)\nor a duration such as 30m, 2h, 7d, 1h30m\n",
			expiry);
		json_decref(body);
		return NULL;
	}
	return body;
}

/* The token goes into shell commands: insist on the base64 alphabet. */
static int token_create_valid(json_t *md)
{
	const char *t = util_json_str(md, "token");
	size_t n = t ? strlen(t) : 0;

	return n > 0 && n <= JOIN_TOKEN_MAX &&
	       strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") == n;
}

static int token_create_print(json_t *md, const void *arg)
{
	const char *name = arg, *token = util_json_str(md, "token");
	struct join_token jt;
	char safe[256], when[TIME_RFC3339_LEN], rel[32];

	util_sanitize(name, safe, sizeof(safe));
	printf("%s\n\n", token);
	printf("Enroll the cluster \"%s\" by running, on the cluster, either\n", safe);
	printf("  lxcm-agent join %s --data-dir /var/lib/lxcm-agent\n", token);
	printf("or, for MicroCloud,\n");
	printf("  microcloud cluster-manager join %s\n", token);
	if (join_token_decode(token, strlen(token), &jt) == 0) {
		if (time_format_rfc3339(jt.expires_at, when, sizeof(when)) == 0) {
			util_reltime(jt.expires_at, time_now(), rel, sizeof(rel));
			printf("\nThe token works once and expires at %s (%s).\n", when, rel);
		}
		join_token_clear(&jt);
	}
	return CLI_EXIT_OK;
}

static int token_create_run(struct cli_ctx *ctx, const struct cli_command *cmd,
			    const struct cli_args *a)
{
	json_t *body = token_create_body(a);
	int rc;

	if (body == NULL)
		return CLI_EXIT_USAGE;
	rc = cmdrun_request(
	    ctx, &(const struct cmdrun_req){.method = "POST",
					    .path = cmd->path,
					    .body = body,
					    .check = token_create_valid,
					    .bad = "the server's reply holds no valid token",
					    .print = token_create_print,
					    .arg = a->pos[0]});
	json_decref(body);
	return rc;
}

const struct cli_command cmd_token_create = {
    .name = "token create",
    .args = "NAME [--description D] [--expiry T]",
    .summary = "Create a single-use join token for a new cluster",
    .help = "Creates a join token for the cluster NAME and prints it with the two\n"
	    "commands that use it: one for the lxcm agent, one for MicroCloud.\n"
	    "\n"
	    "Options:\n"
	    "  --description D  a note kept with the token and the cluster\n"
	    "  --expiry T       when the token stops working: an RFC 3339 time\n"
	    "                   (2030-01-31T12:00:00Z) or a duration from now\n"
	    "                   (30m, 2h, 7d, 1h30m); the server's default is 24h\n",
    .nargs = 1,
    .options = token_create_options,
    .fn = token_create_run,
    .path = "/1.0/remote-cluster-join-token",
};
