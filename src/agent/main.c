/*
 * main.c - lxcm-agent: the program beside each LXD cluster.
 *
 * One subcommand per file, each exporting one struct agent_cmd (tmux's
 * cmd-*.c). Exit status: 0 success, 1 failure, 2 usage error.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "common/log.h"

static const struct agent_cmd *const main_cmds[] = {&cmd_join, &cmd_run};

#define MAIN_NCMDS (sizeof(main_cmds) / sizeof(main_cmds[0]))

int cmd_usage_error(const char *name, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fprintf(stderr, "lxcm-agent %s: ", name);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "Try 'lxcm-agent %s --help'.\n", name);
	return 2;
}

int cmd_getopt_error(const char *name, int ch, char **argv)
{
	const char *opt = optind > 0 ? argv[optind - 1] : "?";

	if (ch == ':')
		return cmd_usage_error(name, "option '%s' needs a value", opt);
	return cmd_usage_error(name, "unknown option '%s'", opt);
}

int cmd_parse(const struct agent_cmd *cmd, int argc, char **argv, const struct option *longopts,
	      int (*on_opt)(void *state, int val, const char *arg), void *state, int *done)
{
	int ch, rc;

	*done = 0;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (ch == 'h') {
			cmd->usage(stdout);
			*done = 1;
			return 0;
		}
		if (ch == '?' || ch == ':')
			return cmd_getopt_error(cmd->name, ch, argv);
		rc = on_opt(state, ch, optarg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void main_usage(FILE *out)
{
	size_t i;

	fputs("usage: lxcm-agent COMMAND [options]\n"
	      "       lxcm-agent --help | --version\n"
	      "\n"
	      "The lxcm agent: joins an LXD cluster to an lxcm manager and reports its\n"
	      "status there.\n"
	      "\n"
	      "commands:\n",
	      out);
	for (i = 0; i < MAIN_NCMDS; i++)
		fprintf(out, "  %-6s %s\n", main_cmds[i]->name, main_cmds[i]->summary);
	fputs("\nRun 'lxcm-agent COMMAND --help' for a command's options.\n", out);
}

int main(int argc, char **argv)
{
	size_t i;

	/* A peer closing mid-write must be an error code, not a dead agent. */
	signal(SIGPIPE, SIG_IGN);
	log_set_prefix("lxcm-agent");
	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("lxcm-agent %s\n", AGENT_VERSION);
		return 0;
	}
	for (i = 0; i < MAIN_NCMDS; i++)
		if (strcmp(argv[1], main_cmds[i]->name) == 0)
			return main_cmds[i]->main(argc - 1, argv + 1);
	fprintf(stderr,
		"lxcm-agent: unknown command or option '%s'\n"
		"Try 'lxcm-agent --help'.\n",
		argv[1]);
	return 2;
}
