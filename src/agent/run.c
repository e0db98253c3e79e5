/*
 * run.c - `lxcm-agent run --data-dir DIR`: the long-running agent.
 *
 * Loads DIR/agent.json, sets up struct agent and runs the loop until a
 * signal (or, with --once, the first heartbeat) stops it. The loop is run
 * once more after the stop so every handle is closed before exit.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/forward.h"
#include "common/config_file.h"
#include "common/log.h"
#include "common/slice.h"

static void run_usage(FILE *out)
{
	fputs("usage: lxcm-agent run --data-dir DIR [options]\n"
	      "\n"
	      "Runs the agent of a joined cluster (see `lxcm-agent join`): sends a status\n"
	      "heartbeat gathered from the local LXD to the manager at once, then at the\n"
	      "interval the manager asks for (60 s when it does not say), retrying with\n"
	      "backoff on failures; and keeps the reverse tunnel to the manager open,\n"
	      "serving the requests it carries from the local LXD. Stops on SIGINT or\n"
	      "SIGTERM.\n"
	      "\n"
	      "options:\n"
	      "  --config FILE        read options from FILE (`key = value` lines; the\n"
	      "                       command line wins)\n"
	      "  --data-dir DIR       the directory `join` filled (required)\n"
	      "  --interval SECONDS   heartbeat interval, 1..86400 (overrides the manager)\n"
	      "  --once               send one heartbeat and exit: 0 if it was accepted, else 1\n"
	      "  --allow-path PREFIX  forward tunnelled requests under PREFIX (repeatable; the\n"
	      "                       default list is /1.0 and /ui; giving one replaces it)\n"
	      "  --tunnel-transport auto|direct|websocket\n"
	      "                       how the tunnel reaches the manager: HTTP/2 directly\n"
	      "                       over TLS (ALPN lxcm-tunnel.v2), or inside a WebSocket\n"
	      "                       (passes HTTP/1.1 proxies); auto (the default) tries\n"
	      "                       direct and falls back to websocket when refused\n"
	      "  --debug              log debug messages\n"
	      "  --log-format FORMAT  text (default) or json: one JSON object per line\n"
	      "  -h, --help           this help\n",
	      out);
}

/* The --config file; dir and the allowed paths point into it: it lives with the process. */
static struct config_file run_config_file;

/* What run_parse fills. */
struct run_parse_out {
	struct agent *ag;
	const char *dir;
};

static int run_opt(void *state, int val, const char *arg)
{
	struct run_parse_out *p = state;
	long long v;

	switch (val) {
	case 'd':
		p->dir = arg;
		break;
	case 'i':
		if (slice_to_int64(slice_cstr(arg), 1, 86400, &v) < 0)
			return cmd_usage_error("run", "%s--interval takes 1 to 86400 seconds",
					       config_file_where(&run_config_file, arg));
		p->ag->interval_s = (unsigned)v;
		break;
	case 'o':
		p->ag->once = 1;
		break;
	case 'T':
		if ((p->ag->tunnel_transport = tunnel_client_transport_parse(arg)) < 0)
			return cmd_usage_error("run",
					       "%s--tunnel-transport takes auto, direct or websocket",
					       config_file_where(&run_config_file, arg));
		break;
	case 'C': /* read by config_file_merge */
		break;
	case 'L': {
		enum log_format fmt;

		if (log_format_parse(arg, &fmt) < 0)
			return cmd_usage_error("run", "%s--log-format takes text or json",
					       config_file_where(&run_config_file, arg));
		log_set_format(fmt);
		break;
	}
	case 'a':
		if (forward_allow_add(p->ag, arg) < 0)
			return cmd_usage_error("run",
					       "%s--allow-path takes an absolute path "
					       "prefix without '.' segments, at most %d",
					       config_file_where(&run_config_file, arg), AGENT_MAX_ALLOW);
		break;
	default:
		log_set_level(LOG_LEVEL_DEBUG);
		break;
	}
	return 0;
}

static int run_parse(int argc, char **argv, struct agent *ag, const char **dir, int *done)
{
	static const struct option longopts[] = {
	    {"data-dir", required_argument, NULL, 'd'}, {"interval", required_argument, NULL, 'i'},
	    {"once", no_argument, NULL, 'o'},		{"debug", no_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'h'},		{"allow-path", required_argument, NULL, 'a'},
	    {"tunnel-transport", required_argument, NULL, 'T'},
	    {CONFIG_FILE_OPTION, required_argument, NULL, 'C'}, {"log-format", required_argument, NULL, 'L'},
	    {NULL, 0, NULL, 0},
	};
	struct run_parse_out p = {ag, NULL};
	int rc;

	if (config_file_merge(&run_config_file, argc, argv, ":h", longopts) < 0)
		return cmd_usage_error("run", "%s", run_config_file.err);
	argc = run_config_file.argc;
	argv = run_config_file.argv;
	rc = cmd_parse(&cmd_run, argc, argv, longopts, run_opt, &p, done);

	if (rc != 0 || *done)
		return rc;
	*dir = p.dir;
	if (optind != argc)
		return cmd_usage_error("run", "unexpected argument");
	if (*dir == NULL || (*dir)[0] == '\0')
		return cmd_usage_error("run", "--data-dir is required");
	return 0;
}

static int run_main(int argc, char **argv)
{
	struct agent ag;
	const char *dir = NULL;
	char err[512];
	uv_loop_t loop;
	int rc, done;

	memset(&ag, 0, sizeof(ag));
	rc = run_parse(argc, argv, &ag, &dir, &done);
	if (rc != 0 || done)
		return rc;
	if (state_load(dir, &ag.cfg, err, sizeof(err)) < 0) {
		LOG_ERROR("cannot load the agent state: %s (has this agent joined? see "
			  "`lxcm-agent join --help`)",
			  err);
		return 1;
	}
	if (uv_loop_init(&loop) != 0) {
		LOG_ERROR("cannot create the event loop");
		state_clear(&ag.cfg);
		return 1;
	}
	LOG_INFO("lxcm-agent %s: cluster \"%s\", manager %s (+%zu more), LXD at %s", AGENT_VERSION,
		 ag.cfg.cluster_name, ag.cfg.addresses[0], ag.cfg.naddresses - 1, ag.cfg.up.url);
	if (agent_init(&ag, &loop) < 0 || agent_start(&ag) < 0)
		agent_stop(&ag, 1);
	uv_run(&loop, UV_RUN_DEFAULT);
	rc = ag.exit_code;
	if (uv_loop_close(&loop) != 0)
		LOG_WARN("handles left open at exit");
	agent_free(&ag);
	return rc;
}

const struct agent_cmd cmd_run = {
    .name = "run",
    .summary = "run the agent: heartbeats and the reverse tunnel to the manager",
    .main = run_main,
    .usage = run_usage,
};
