/*
 * cmd_apitoken_create.c - `lxcm api-token create NAME [--role R]`: a new
 * token for an operator or a tool, printed once.
 */
#include "cli/cli.h"

#include <string.h>

#include "cli/cmdrun.h"
#include "cli/util.h"

enum { CREATE_ROLE };

static const struct option apitoken_create_options[] = {
    {"role", required_argument, NULL, CLI_OPT_OWN + CREATE_ROLE},
    {NULL, 0, NULL, 0},
};

/* What the print step needs besides the reply. */
struct apitoken_create_out {
	const char *name;
	const char *role;
};

/* --role, checked; admin (what every token was before roles) by default. */
static const char *apitoken_create_role(const struct cli_args *a)
{
	const char *role = a->opt[CREATE_ROLE];

	if (role == NULL)
		return "admin";
	if (strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0 ||
	    strcmp(role, "viewer") == 0)
		return role;
	fprintf(stderr, "%s: --role must be admin, operator or viewer, not '%s'\n", a->name, role);
	return NULL;
}

/* The role the token list gives the token name; NULL when it gives none. */
static const char *apitoken_create_listed_role(json_t *list, const char *name)
{
	const char *n;
	json_t *tok;
	size_t i;

	json_array_foreach(list, i, tok)
	{
		n = util_json_str(tok, "name");
		if (n != NULL && strcmp(n, name) == 0)
			return util_json_str(tok, "role");
	}
	return NULL;
}

/*
 * A server from before roles ignores "role" and makes every token an admin
 * token. So a token meant to do less is checked: the role in the create
 * reply, else the one in the token list, must be the one asked for, and
 * when it is not the token is revoked at once rather than handed to
 * someone who believes it can only read. 0 when confirmed, else the exit
 * code, printed.
 */
static int apitoken_create_confirm(struct cli_ctx *ctx, const struct cli_command *cmd, json_t *md,
				   const char *name, const char *role)
{
	const char *got = util_json_str(md, "role");
	json_t *list = NULL;
	int rc;

	if (got == NULL && client_request(ctx, "GET", cmd->path, NULL, &list) == 0)
		got = apitoken_create_listed_role(list, name);
	rc = got != NULL && strcmp(got, role) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	json_decref(list);
	if (rc == CLI_EXIT_OK)
		return rc;
	fprintf(stderr,
		"Error: the server did not confirm the role %s for the new token %s (a server\n"
		"from before roles makes every token an admin token); revoking it again.\n",
		role, name);
	if (cmdrun_request(ctx, &(const struct cmdrun_req){
				    .method = "DELETE", .prefix = cmd->path, .name = name}) != 0)
		fprintf(stderr,
			"Error: the token %s still exists: revoke it with "
			"'lxcm api-token revoke %s'.\n",
			name, name);
	return rc;
}

static int apitoken_create_valid(json_t *md)
{
	return util_json_str(md, "token") != NULL;
}

static int apitoken_create_print(json_t *md, const void *arg)
{
	const struct apitoken_create_out *o = arg;

	printf("%s\n", util_json_str(md, "token"));
	fprintf(stderr,
		"API token %s created with the role %s. It is shown only now: keep it\n"
		"in a file of mode 0600 and pass it with --token-file or LXCM_TOKEN_FILE.\n",
		o->name, o->role);
	return CLI_EXIT_OK;
}

static int apitoken_create_run(struct cli_ctx *ctx, const struct cli_command *cmd,
			       const struct cli_args *a)
{
	struct apitoken_create_out o = {a->pos[0], apitoken_create_role(a)};
	json_t *body, *md = NULL;
	int rc;

	if (o.role == NULL)
		return CLI_EXIT_USAGE;
	body = json_pack("{s:s,s:s}", "name", o.name, "role", o.role);
	if (body == NULL)
		return CLI_EXIT_FAIL;
	rc = client_request(ctx, "POST", cmd->path, body, &md);
	json_decref(body);
	if (rc == 0 && apitoken_create_valid(md) && strcmp(o.role, "admin") != 0)
		rc = apitoken_create_confirm(ctx, cmd, md, o.name, o.role);
	if (rc != 0) {
		json_decref(md);
		return rc;
	}
	return cmdrun_reply(ctx, md, apitoken_create_valid(md), "the server's reply holds no token",
			    apitoken_create_print, &o);
}

const struct cli_command cmd_apitoken_create = {
    .name = "api-token create",
    .args = "NAME [--role ROLE]",
    .summary = "Create an API token for an operator or a tool",
    .help = "Creates a bearer token for the management API and prints it once.\n"
	    "The server keeps only its SHA-256. Revoke it with 'lxcm api-token revoke NAME'.\n"
	    "\n"
	    "Options:\n"
	    "  --role ROLE  what the token may do (default admin):\n"
	    "                 viewer    read the management API; through tunnels only GET\n"
	    "                           and HEAD, and no WebSocket but /1.0/events\n"
	    "                 operator  read the management API and do anything through\n"
	    "                           tunnels (exec, console, file and image transfers),\n"
	    "                           but not create or remove clusters, join tokens or\n"
	    "                           API tokens\n"
	    "                 admin     everything\n"
	    "               A server that does not know roles would make an admin token:\n"
	    "               the command then revokes it again and fails.\n",
    .nargs = 1,
    .options = apitoken_create_options,
    .fn = apitoken_create_run,
    .path = "/1.0/auth/tokens",
};
