/*
 * cmd_token_create.c - `lxcm token create NAME`: a join token for a cluster
 * that is not enrolled yet, printed with the commands that use it.
 */
#include "cli/cli.h"

#include <string.h>

#include "cli/output.h"
#include "cli/util.h"
#include "common/jointoken.h"
#include "common/timefmt.h"

struct token_create_args {
	const char *description;
	const char *expiry;
};

enum { OPT_DESCRIPTION = CLI_OPT_OWN, OPT_EXPIRY };

static const struct option token_create_options[] = {
    {"description", required_argument, NULL, OPT_DESCRIPTION},
    {"expiry", required_argument, NULL, OPT_EXPIRY},
    {NULL, 0, NULL, 0},
};

static int token_create_opt(void *state, int val, const char *arg)
{
	struct token_create_args *a = state;

	if (val == OPT_DESCRIPTION)
		a->description = arg;
	else
		a->expiry = arg;
	return 0;
}

/* The request body; NULL after printing why (a usage error). */
static json_t *token_create_body(const char *name, const struct token_create_args *a)
{
	json_t *body = json_object();
	char when[TIME_RFC3339_LEN];
	int bad = body == NULL;

	bad = bad || json_object_set_new(body, "cluster_name", json_string(name)) != 0;
	if (!bad && a->description)
		bad = json_object_set_new(body, "description", json_string(a->description)) != 0;
	if (bad) {
		fputs("lxcm token create: NAME and --description must be valid UTF-8\n", stderr);
		json_decref(body);
		return NULL;
	}
	if (a->expiry == NULL)
		return body;
	if (util_parse_expiry(a->expiry, time_now(), when, sizeof(when)) != 0 ||
	    json_object_set_new(body, "expiry", json_string(when)) != 0) {
		fprintf(stderr,
			"lxcm token create: invalid --expiry '%s': give a future RFC 3339 time "
			"(2030-01-31T12:00:00Z)\nor a duration such as 30m, 2h, 7d, 1h30m\n",
			a->expiry);
		json_decref(body);
		return NULL;
	}
	return body;
}

/* The token goes into shell commands: insist on the base64 alphabet. */
static int token_create_valid(const char *t)
{
	size_t n = strlen(t);

	return n > 0 && n <= JOIN_TOKEN_MAX &&
	       strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") == n;
}

static void token_create_print(const char *name, const char *token)
{
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
}

static int token_create_run(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
			    char **argv)
{
	struct token_create_args a = {0};
	json_t *body, *md = NULL;
	const char *token;
	int first, rc;

	rc = cli_parse(ctx, cmd, argc, argv, token_create_options, token_create_opt, &a, 1, 1,
		       &first);
	if (rc >= 0)
		return rc;
	body = token_create_body(argv[first], &a);
	if (body == NULL)
		return CLI_EXIT_USAGE;
	rc = client_request(ctx, "POST", "/1.0/remote-cluster-join-token", body, &md);
	json_decref(body);
	if (rc != 0)
		return rc;
	token = util_json_str(md, "token");
	if (token == NULL || !token_create_valid(token)) {
		fputs("Error: the server's reply holds no valid token\n", stderr);
		rc = CLI_EXIT_FAIL;
	} else if (ctx->json) {
		rc = output_json(md) == 0 ? 0 : CLI_EXIT_FAIL;
	} else {
		token_create_print(argv[first], token);
	}
	json_decref(md);
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
    .fn = token_create_run,
};
