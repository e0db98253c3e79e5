/*
 * main.c - the lxcm CLI: global options, the command table, dispatch and
 * help. Each command lives in its own cmd_*.c and exports one entry.
 */
#include "cli/cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmdrun.h"
#include "common/log.h"

extern const struct cli_command cmd_token_create, cmd_token_list, cmd_token_revoke,
    cmd_cluster_list, cmd_cluster_show, cmd_cluster_set, cmd_cluster_remove, cmd_proxy, cmd_version,
    cmd_apitoken_create, cmd_apitoken_list, cmd_apitoken_revoke, cmd_audit, cmd_whoami;

/* In the order `lxcm --help` lists them. */
const struct cli_command *const cli_commands[] = {
    &cmd_cluster_list, &cmd_cluster_show, &cmd_cluster_set, &cmd_cluster_remove, &cmd_token_create,
    &cmd_token_list,   &cmd_token_revoke, &cmd_apitoken_create, &cmd_apitoken_list,
    &cmd_apitoken_revoke, &cmd_audit, &cmd_proxy, &cmd_whoami, &cmd_version, NULL,
};

static const char *const cli_group_summary[][2] = {
    {"cluster", "Enrolled LXD clusters: list, inspect, configure, remove"},
    {"token", "Join tokens that let a new cluster enroll"},
    {"api-token", "API tokens of operators and tools: create, list, revoke"},
};

static const char cli_global_usage[] =
    "Usage: lxcm [--server URL] [--token-file FILE] [--server-fingerprint FP] "
    "[--format FORMAT] [--json] COMMAND ...\n";

static const char cli_global_help[] =
    "Global options (also accepted after the command):\n"
    "  --server URL             management API: https://HOST[:PORT], port 8443 by default\n"
    "                           (env LXCM_SERVER; default " CLI_DEFAULT_SERVER ")\n"
    "  --token-file FILE        file holding the API token (wins over env LXCM_TOKEN,\n"
    "                           the token itself, and LXCM_TOKEN_FILE, a file)\n"
    "  --server-fingerprint FP  require this SHA-256 certificate fingerprint; the\n"
    "                           known_servers file is then neither read nor written\n"
    "  --format FORMAT          how to print: table|compact|csv|json|yaml. Lists print\n"
    "                           table on a terminal, else compact (two spaces between\n"
    "                           columns, no borders); csv is one RFC 4180 record per\n"
    "                           row without a header; json and yaml print the API's\n"
    "                           objects, for lists and single replies alike\n"
    "  --json                   the same as --format json\n"
    "  -h, --help               help, also after any command or group\n"
    "\n"
    "The server's certificate is trusted on first use and remembered in\n"
    "$XDG_CONFIG_HOME/lxcm/known_servers (default ~/.config/lxcm/known_servers);\n"
    "a later change of certificate is an error.\n";

int cli_global_option(struct cli_ctx *ctx, int val, const char *arg)
{
	switch (val) {
	case CLI_OPT_SERVER:
		ctx->server = arg;
		return 0;
	case CLI_OPT_TOKEN_FILE:
		ctx->token_file = arg;
		return 0;
	case CLI_OPT_FINGERPRINT:
		ctx->fingerprint = arg;
		return 0;
	case CLI_OPT_JSON:
		arg = "json"; /* --json is an alias of --format json */
		/* fall through */
	case CLI_OPT_FORMAT:
		if (output_format_parse(arg, &ctx->format) == 0)
			return 0;
		fprintf(stderr, "lxcm: --format must be %s, not '%s'\n", OUTPUT_FORMAT_NAMES, arg);
		return -1;
	default:
		return -1;
	}
}

void cli_usage(const struct cli_command *cmd, FILE *out)
{
	fprintf(out, "Usage: lxcm %s%s%s\n", cmd->name, cmd->args[0] ? " " : "", cmd->args);
}

void cli_help(const struct cli_command *cmd)
{
	cli_usage(cmd, stdout);
	printf("\n%s.\n", cmd->summary);
	if (cmd->help[0] != '\0')
		printf("\n%s", cmd->help);
	if (cmd->list != NULL)
		cmdrun_list_help(cmd, stdout);
	printf("\nGlobal options (--server, --token-file, --server-fingerprint, --format,\n"
	       "--json) work here too; see 'lxcm --help'.\n");
}

static size_t cli_count_options(const struct option *o)
{
	size_t n = 0;

	while (o != NULL && o[n].name != NULL)
		n++;
	return n;
}

/*
 * The getopt string of a command: "h" and the one-letter forms of its own
 * options ("hc:"). out holds 2 + 2 * CLI_MAX_OPTS bytes.
 */
static void cli_short_options(const struct option *o, size_t n, char *out)
{
	size_t i, k = 0;

	out[k++] = 'h';
	for (i = 0; i < n; i++) {
		if (o[i].val >= CLI_OPT_OWN || o[i].val <= ' ' || o[i].val > '~')
			continue;
		out[k++] = (char)o[i].val;
		if (o[i].has_arg == required_argument)
			out[k++] = ':';
	}
	out[k] = '\0';
}

/* Which of the command's options getopt returned as c; -1 if none. */
static int cli_own_index(const struct option *o, size_t n, int c)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (o[i].val == c)
			return (int)i;
	return -1;
}

/* Reports a wrong argument count the way getopt reports a bad option. */
static int cli_check_args(const struct cli_command *cmd, char **argv, int nargs, int first)
{
	if (nargs < cmd->nargs)
		fprintf(stderr, "%s: missing argument\n", argv[0]);
	else if (nargs > cmd->nargs)
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0],
			argv[first + cmd->nargs]);
	else
		return -1;
	cli_usage(cmd, stderr);
	return CLI_EXIT_USAGE;
}

/*
 * Parses a command's argv (argv[0] its full name) into ctx (common
 * options) and a (the command's own options and its positional
 * arguments). Returns -1 when the command should run, else the exit code
 * to return right away: 0 after --help, 2 after a usage error.
 */
static int cli_parse(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
		     struct cli_args *a)
{
	static const struct option global[] = {CLI_GLOBAL_LONGOPTS, {NULL, 0, NULL, 0}};
	struct option all[32];
	size_t nown = cli_count_options(cmd->options), nglobal = cli_count_options(global);
	char shorts[2 + 2 * CLI_MAX_OPTS];
	int c, own;

	if (nown > CLI_MAX_OPTS || nown + nglobal + 1 > sizeof(all) / sizeof(all[0]))
		abort(); /* our own table is too large: a bug, not input */
	if (nown)
		memcpy(all, cmd->options, nown * sizeof(*all));
	memcpy(all + nown, global, (nglobal + 1) * sizeof(*global));
	cli_short_options(cmd->options, nown, shorts);
	optind = 0; /* glibc: start over, argv differs from the last call */
	while ((c = getopt_long(argc, argv, shorts, all, NULL)) != -1) {
		if (c == 'h') {
			cli_help(cmd);
			return CLI_EXIT_OK;
		}
		own = cli_own_index(cmd->options, nown, c);
		if (own >= 0) {
			a->opt[own] = optarg ? optarg : "";
			continue;
		}
		if (cli_global_option(ctx, c, optarg) == 0)
			continue;
		cli_usage(cmd, stderr); /* getopt said what was wrong */
		return CLI_EXIT_USAGE;
	}
	a->name = argv[0];
	a->pos = argv + optind;
	return cli_check_args(cmd, argv, argc - optind, optind);
}

static void cli_main_help(void)
{
	const struct cli_command *const *c;
	char head[64];
	size_t plen;
	int n;

	fputs(cli_global_usage, stdout);
	fputs("\nManage the LXD clusters enrolled with an lxcm server.\n\nCommands:\n", stdout);
	for (c = cli_commands; *c != NULL; c++) {
		/* Positional arguments only; 'lxcm COMMAND --help' shows the options. */
		plen = strcspn((*c)->args, "[");
		while (plen > 0 && (*c)->args[plen - 1] == ' ')
			plen--;
		n = snprintf(head, sizeof(head), "%s%s%.*s", (*c)->name, plen ? " " : "", (int)plen,
			     (*c)->args);
		if (n < 0 || (size_t)n >= sizeof(head))
			head[0] = '\0';
		printf("  %-24s %s\n", head, (*c)->summary);
	}
	printf("\n%s\nRun 'lxcm COMMAND --help' for a command's options.\n", cli_global_help);
}

static const char *cli_group_of(const char *word)
{
	size_t i;

	for (i = 0; i < sizeof(cli_group_summary) / sizeof(cli_group_summary[0]); i++)
		if (strcmp(cli_group_summary[i][0], word) == 0)
			return cli_group_summary[i][1];
	return NULL;
}

/* Lists a group's commands: on stdout for --help, stderr after a mistake. */
static void cli_group_help(const char *group, FILE *out)
{
	const struct cli_command *const *c;
	size_t glen = strlen(group);

	fprintf(out, "Usage: lxcm %s COMMAND ...\n\n%s.\n\nCommands:\n", group,
		cli_group_of(group));
	for (c = cli_commands; *c != NULL; c++)
		if (strncmp((*c)->name, group, glen) == 0 && (*c)->name[glen] == ' ')
			fprintf(out, "  %-16s %s\n", (*c)->name + glen + 1, (*c)->summary);
	fprintf(out, "\nRun 'lxcm %s COMMAND --help' for a command's options.\n", group);
}

/* The command named by words[0] (and words[1] for a group); *nwords says how many. */
static const struct cli_command *cli_find(int n, char **words, int *nwords)
{
	const struct cli_command *const *c;
	size_t glen;

	for (c = cli_commands; *c != NULL; c++) {
		const char *sp = strchr((*c)->name, ' ');
		if (sp == NULL && strcmp((*c)->name, words[0]) == 0) {
			*nwords = 1;
			return *c;
		}
		glen = sp ? (size_t)(sp - (*c)->name) : 0;
		if (sp && n >= 2 && strlen(words[0]) == glen &&
		    strncmp((*c)->name, words[0], glen) == 0 && strcmp(sp + 1, words[1]) == 0) {
			*nwords = 2;
			return *c;
		}
	}
	return NULL;
}

/* Explains an unknown command; returns the exit code. */
static int cli_unknown(int n, char **words)
{
	int is_help = n >= 2 && (strcmp(words[1], "--help") == 0 || strcmp(words[1], "-h") == 0);

	if (cli_group_of(words[0]) != NULL) {
		if (is_help) {
			cli_group_help(words[0], stdout);
			return CLI_EXIT_OK;
		}
		if (n >= 2)
			fprintf(stderr, "lxcm: unknown command '%s %s'\n", words[0], words[1]);
		else
			fprintf(stderr, "lxcm: '%s' needs a command\n", words[0]);
		cli_group_help(words[0], stderr);
		return CLI_EXIT_USAGE;
	}
	fprintf(stderr, "lxcm: unknown command '%s'\n%sRun 'lxcm --help' for the commands.\n",
		words[0], cli_global_usage);
	return CLI_EXIT_USAGE;
}

/* `lxcm help [COMMAND]`: the same text as --help. */
static int cli_help_command(int n, char **words)
{
	const struct cli_command *cmd;
	int used;

	if (n == 0) {
		cli_main_help();
		return CLI_EXIT_OK;
	}
	cmd = cli_find(n, words, &used);
	if (cmd != NULL && used == n) {
		cli_help(cmd);
		return CLI_EXIT_OK;
	}
	if (n == 1 && cli_group_of(words[0]) != NULL) {
		cli_group_help(words[0], stdout);
		return CLI_EXIT_OK;
	}
	fprintf(stderr, "lxcm: no help for '%s'\n", words[0]);
	return CLI_EXIT_USAGE;
}

/* Runs the command named at the start of words with the rest as its argv. */
static int cli_dispatch(struct cli_ctx *ctx, int n, char **words)
{
	const struct cli_command *cmd;
	struct cli_args a = {0};
	char name[64];
	char **sub;
	int used, rc, i;

	if (strcmp(words[0], "help") == 0)
		return cli_help_command(n - 1, words + 1);
	cmd = cli_find(n, words, &used);
	if (cmd == NULL)
		return cli_unknown(n, words);
	rc = snprintf(name, sizeof(name), "lxcm %s", cmd->name);
	if (rc < 0 || (size_t)rc >= sizeof(name))
		return CLI_EXIT_FAIL;
	sub = calloc((size_t)(n - used) + 2, sizeof(*sub));
	if (sub == NULL) {
		fputs("lxcm: out of memory\n", stderr);
		return CLI_EXIT_FAIL;
	}
	sub[0] = name;
	for (i = used; i < n; i++)
		sub[i - used + 1] = words[i];
	rc = cli_parse(ctx, cmd, n - used + 1, sub, &a);
	if (rc < 0)
		rc = cmd->fn(ctx, cmd, &a);
	free(sub);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    CLI_GLOBAL_LONGOPTS, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
	struct cli_ctx ctx = {.prog = "lxcm"};
	int c, rc;

	/* Library log lines are for daemons; the CLI prints its own errors. */
	log_set_prefix("lxcm");
	log_set_level(getenv("LXCM_DEBUG") ? LOG_LEVEL_DEBUG
					   : (enum log_level)(LOG_LEVEL_ERROR + 1));
	signal(SIGPIPE, SIG_IGN);
	argv[0] = (char *)"lxcm"; /* getopt's messages name the program */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'h') {
			cli_main_help();
			return CLI_EXIT_OK;
		}
		if (c == 'V')
			return cmd_version.fn(&ctx, &cmd_version,
					      &(const struct cli_args){.name = "lxcm version"});
		if (cli_global_option(&ctx, c, optarg) != 0) {
			fprintf(stderr, "%sRun 'lxcm --help' for the options.\n", cli_global_usage);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%sRun 'lxcm --help' for the commands.\n", cli_global_usage);
		return CLI_EXIT_USAGE;
	}
	rc = cli_dispatch(&ctx, argc - optind, argv + optind);
	client_ctx_free(&ctx);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
		rc = CLI_EXIT_FAIL;
	return rc;
}
