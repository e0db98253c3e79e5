/*
 * cmd_proxy.c - `lxcm proxy NAME [--listen ADDR] [--quiet]`: a local
 * port-forward (TCP or unix socket) to cluster NAME's LXD API through the manager's tunnel
 * (portfwd.c does the forwarding).
 *
 * Before listening it asks the manager for the cluster once: that settles
 * the server's certificate (trust on first use, as every command does),
 * checks the token, and fails early on an unknown cluster.
 */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cli/fwdhead.h"
#include "cli/portfwd.h"
#include "cli/util.h"
#include "common/secret.h"
#include "net/http_client.h"

enum { PROXY_LISTEN, PROXY_QUIET };

static const struct option proxy_options[] = {
    {"listen", required_argument, NULL, CLI_OPT_OWN + PROXY_LISTEN},
    {"quiet", no_argument, NULL, CLI_OPT_OWN + PROXY_QUIET},
    {NULL, 0, NULL, 0},
};

/* The running proxy, for the signal handlers. */
struct proxy_loop {
	uv_signal_t sigint, sigterm;
	struct portfwd *pf;
};

/*
 * The first SIGINT or SIGTERM stops the proxy: requests in flight are cut
 * and the loop ends once every handle is closed. Closing the signal
 * watchers restores the default action, so a second Ctrl-C kills at once.
 */
static void proxy_on_signal(uv_signal_t *s, int signum)
{
	struct proxy_loop *pl = s->data;

	(void)signum;
	portfwd_stop(pl->pf);
	uv_close((uv_handle_t *)&pl->sigint, NULL);
	uv_close((uv_handle_t *)&pl->sigterm, NULL);
}

/* Says so when the cluster has no live tunnel now (requests would get 503). */
static void proxy_note_tunnel(json_t *cluster, const char *name)
{
	json_t *reg = json_object_get(cluster, "tunnel_registered");
	char safe[256];

	if (!json_is_false(reg))
		return;
	util_sanitize(name, safe, sizeof(safe));
	fprintf(stderr,
		"Note: cluster %s has no live tunnel right now; requests get 503 until its "
		"agent connects.\n",
		safe);
}

/*
 * Checks the cluster exists (and so the server, its certificate and the
 * token) and builds the tunnel prefix. 0 or an exit code, already printed.
 */
static int proxy_preflight(struct cli_ctx *ctx, const char *clusters, const char *name,
			   char *prefix, size_t len)
{
	char path[1200];
	json_t *cluster = NULL;
	int rc, n;

	rc = client_path(path, sizeof(path), clusters, name);
	if (rc != 0)
		return rc;
	rc = client_request(ctx, "GET", path, NULL, &cluster);
	if (rc != 0)
		return rc;
	proxy_note_tunnel(cluster, name);
	json_decref(cluster);
	n = snprintf(prefix, len, "%s/tunnel", path);
	if (n < 0 || (size_t)n >= len) {
		fputs("Error: the cluster name is too long\n", stderr);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* --listen unix:PATH: 1 and cfg->listen_unix set, 0 when not one, or an exit code. */
static int proxy_parse_unix(const char *listen, struct portfwd_config *cfg)
{
	int rc = listen ? fwdhead_listen_unix(listen, &cfg->listen_unix) : 0;

	if (rc == -ENAMETOOLONG)
		fprintf(stderr, "lxcm proxy: --listen %s: a unix socket path has at most %d bytes\n",
			listen, FWDHEAD_MAX_UNIX_PATH);
	else if (rc < 0)
		fprintf(stderr, "lxcm proxy: --listen unix:PATH needs a PATH\n");
	return rc < 0 ? CLI_EXIT_USAGE : rc;
}

/* Fills the listen address of cfg (host, a buffer of 64, for TCP); 0 or an exit code. */
static int proxy_parse_listen(const char *listen, struct portfwd_config *cfg, char host[64])
{
	int rc = proxy_parse_unix(listen, cfg);

	if (rc != 0)
		return rc == 1 ? 0 : rc;
	cfg->listen_host = host;
	rc = fwdhead_parse_listen(listen ? listen : "127.0.0.1:0", host, &cfg->listen_port);
	if (rc == -EPERM)
		fprintf(stderr,
			"lxcm proxy: --listen %s: only a loopback address (127.0.0.1, ::1, "
			"localhost) is allowed:\nthe proxy sends your API token with every "
			"request it forwards\n",
			listen);
	else if (rc < 0)
		fprintf(stderr,
			"lxcm proxy: invalid --listen '%s': expected PORT, 127.0.0.1:PORT, "
			"[::1]:PORT or unix:PATH\n",
			listen);
	return rc < 0 ? CLI_EXIT_USAGE : 0;
}

static void proxy_print_start(const struct portfwd_config *cfg, int port, const char *name)
{
	char safe[256], where[FWDHEAD_MAX_UNIX_PATH + 8];
	int v6;

	util_sanitize(name, safe, sizeof(safe));
	if (cfg->listen_unix != NULL) {
		util_sanitize(cfg->listen_unix, where, sizeof(where));
		printf("Forwarding unix:%s -> cluster %s via %s\n", where, safe, cfg->server_url);
		fflush(stdout);
		return;
	}
	v6 = strchr(cfg->listen_host, ':') != NULL;
	printf("Forwarding http://%s%s%s:%d -> cluster %s via %s\n", v6 ? "[" : "",
	       cfg->listen_host, v6 ? "]" : "", port, safe, cfg->server_url);
	fflush(stdout);
}

static void proxy_listen_error(const struct portfwd_config *cfg, int rc)
{
	if (cfg->listen_unix == NULL)
		fprintf(stderr, "Error: cannot listen on %s:%d: %s\n", cfg->listen_host,
			cfg->listen_port, uv_strerror(rc));
	else if (rc == -EEXIST)
		fprintf(stderr, "Error: %s exists and is not a socket; not replacing it\n",
			cfg->listen_unix);
	else if (rc == -EADDRINUSE)
		fprintf(stderr, "Error: another process listens on %s\n", cfg->listen_unix);
	else
		fprintf(stderr, "Error: cannot listen on unix:%s: %s\n", cfg->listen_unix,
			uv_strerror(rc));
}

/* Runs the loop until a signal; 0 or CLI_EXIT_FAIL. */
static int proxy_serve(struct portfwd_config *cfg, const char *name)
{
	struct proxy_loop pl = {0};
	uv_loop_t loop;
	int rc;

	if (uv_loop_init(&loop) != 0) {
		fputs("Error: cannot start the event loop\n", stderr);
		return CLI_EXIT_FAIL;
	}
	rc = portfwd_start(&loop, cfg, &pl.pf);
	if (rc < 0) {
		proxy_listen_error(cfg, rc);
		uv_run(&loop, UV_RUN_DEFAULT); /* let the failed listener close */
		uv_loop_close(&loop);
		return CLI_EXIT_FAIL;
	}
	uv_signal_init(&loop, &pl.sigint);
	uv_signal_init(&loop, &pl.sigterm);
	pl.sigint.data = pl.sigterm.data = &pl;
	uv_signal_start(&pl.sigint, proxy_on_signal, SIGINT);
	uv_signal_start(&pl.sigterm, proxy_on_signal, SIGTERM);
	proxy_print_start(cfg, portfwd_port(pl.pf), name);
	uv_run(&loop, UV_RUN_DEFAULT);
	portfwd_free(pl.pf);
	if (uv_loop_close(&loop) != 0)
		fputs("lxcm proxy: warning: handles left open at exit\n", stderr);
	return CLI_EXIT_OK;
}

static int proxy_run(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a)
{
	struct portfwd_config cfg;
	char host[64], prefix[1300];
	char *auth = NULL;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	rc = proxy_parse_listen(a->opt[PROXY_LISTEN], &cfg, host);
	if (rc == 0)
		rc = proxy_preflight(ctx, cmd->path, a->pos[0], prefix, sizeof(prefix));
	if (rc != 0)
		return rc;
	if (client_conn_opts(ctx, &cfg.upstream) != 0 || client_bearer(ctx, &auth) != 0) {
		fputs("Error: out of memory\n", stderr);
		return CLI_EXIT_FAIL;
	}
	cfg.server_url = client_server_url(ctx);
	cfg.server_key = client_server_key(ctx);
	cfg.prefix = prefix;
	cfg.auth = auth;
	cfg.quiet = a->opt[PROXY_QUIET] != NULL;
	rc = proxy_serve(&cfg, a->pos[0]);
	if (auth != NULL) {
		secret_wipe(auth, strlen(auth));
		free(auth);
	}
	return rc;
}

const struct cli_command cmd_proxy = {
    .name = "proxy",
    .args = "NAME [--listen ADDR] [--quiet]",
    .summary = "Forward a local port to the LXD API of cluster NAME",
    .help = "Listens on plain HTTP on a loopback address or a unix socket and sends\n"
	    "every request it receives (any method, path, query, headers and body, and\n"
	    "WebSocket upgrades such as /1.0/events or exec and console sessions)\n"
	    "through the manager's tunnel to the LXD API of cluster NAME, with your API\n"
	    "token. Bodies stream both ways, so large image transfers use little\n"
	    "memory. So, with the port it prints:\n"
	    "\n"
	    "  curl http://127.0.0.1:PORT/1.0/instances\n"
	    "\n"
	    "or, with a unix socket, LXD's own client:\n"
	    "\n"
	    "  lxcm proxy NAME --listen unix:$HOME/NAME.socket &\n"
	    "  lxc remote add NAME unix://$HOME/NAME.socket\n"
	    "  lxc list NAME:\n"
	    "\n"
	    "Each request is logged on stderr: method, path, status, bytes, time.\n"
	    "Runs until interrupted (Ctrl-C, SIGTERM).\n"
	    "\n"
	    "Anything that can connect to the proxy acts with your token, so only\n"
	    "loopback addresses are allowed, and on TCP requests a web page in a local\n"
	    "browser could make are refused: a Host header other than the listen\n"
	    "address or localhost, and an Origin header other than the proxy's own\n"
	    "(403). A unix socket is created with mode 0600 (only you can connect;\n"
	    "browsers cannot reach it, so Host and Origin are not checked there) and\n"
	    "removed at exit; a stale socket left at PATH is replaced, anything else\n"
	    "there is an error.\n"
	    "\n"
	    "Options:\n"
	    "  --listen ADDR  PORT, 127.0.0.1:PORT, [::1]:PORT or unix:PATH (default:\n"
	    "                 127.0.0.1 and a free port)\n"
	    "  --quiet        do not log each request\n",
    .nargs = 1,
    .options = proxy_options,
    .fn = proxy_run,
    .path = "/1.0/remote-cluster",
};
