/*
 * agent.h - the lxcm-agent process: the state its modules share.
 *
 * One struct agent per process: the event loop, the configuration saved by
 * `join` (agent.json), the TLS context for the manager's connector (our
 * client certificate, the manager judged by the pinned fingerprint) and the
 * settings for reaching the local LXD (the upstream). Modules hang off it:
 * the heartbeat (heartbeat.c) and the reverse tunnel (tunnel_client.c). Each module has
 * start/stop functions that agent_run and agent_stop call in turn.
 */
#ifndef LXCM_AGENT_H
#define LXCM_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "net/http_client.h"

#include "common/version.h"
#define AGENT_VERSION LXCM_VERSION

/* File names inside the data directory. */
#define AGENT_STATE_FILE "agent.json"
#define AGENT_CERT_FILE "agent.crt"
#define AGENT_KEY_FILE "agent.key"

/* Largest agent.json we read; it holds a few short strings. */
#define AGENT_STATE_MAX (64 * 1024)
/* Longest path we build (data directory plus a file name). */
#define AGENT_PATH_MAX 4096
/* Longest "host" of a "host:port" (a DNS name is at most 253). */
#define AGENT_HOST_MAX 256

/*
 * The keep-alive pool to LXD: idle connections kept, and for how long. It
 * should cover the requests in flight at busy times: past it, each request
 * that finishes closes a connection that the next one opens again (with 50
 * concurrent requests and 16 kept, 2 in 3 requests still connected anew).
 * An idle unix-socket connection costs a descriptor and a few KiB here and
 * in LXD.
 */
#define AGENT_LXD_POOL_MAX_IDLE 64
#define AGENT_LXD_POOL_IDLE_MS 30000

/* --tunnel-transport (tunnel_client.c): direct first, then WebSocket; or only one. */
#define AGENT_TRANSPORT_AUTO 0
#define AGENT_TRANSPORT_DIRECT 1
#define AGENT_TRANSPORT_WEBSOCKET 2

/* Most --allow-path prefixes. */
#define AGENT_MAX_ALLOW 16

/* Default LXD unix sockets: the snap's first, then Debian's. */
#define UPSTREAM_SNAP_SOCKET "/var/snap/lxd/common/lxd/unix.socket"
#define UPSTREAM_DEB_SOCKET "/var/lib/lxd/unix.socket"

/* How the agent reaches its local LXD: a unix socket or HTTPS. */
struct upstream {
	char *url;	 /* normalised: "unix:///path" or "https://host:port" */
	char *unix_path; /* set for a unix socket */
	char *host;	 /* set for https */
	int port;
	char *ca_file;	   /* https: verify LXD against this CA ... */
	char *fingerprint; /* ... or pin its certificate (lowercase hex) */
	char *cert_file;   /* https: our client certificate for LXD, optional */
	char *key_file;
};

/* What `join` saves and `run` loads (see state.c for the file format). */
struct agent_config {
	char *data_dir;
	char *cluster_name;
	char **addresses; /* the manager's connector, "host:port" */
	size_t naddresses;
	char fingerprint[65]; /* the connector's certificate, lowercase hex */
	int64_t joined_at;    /* Unix seconds */
	struct upstream up;
};

struct heartbeat;
struct tunnel_client;

struct agent {
	uv_loop_t *loop;
	struct agent_config cfg;
	char cert_path[AGENT_PATH_MAX];
	char key_path[AGENT_PATH_MAX];
	SSL_CTX *mgr_tls; /* client ctx with our certificate; peers are pinned */
	SSL_CTX *lxd_tls; /* NULL when LXD is on a unix socket */
	/* Keep-alive connections to LXD (forward.c, lxd_collect.c); NULL once stopping. */
	struct http_pool *lxd_pool;
	uv_signal_t sig_int;
	uv_signal_t sig_term;
	int sig_ready; /* the two signal handles are initialised */
	struct heartbeat *hb;
	struct tunnel_client *tc; /* the reverse tunnel (tunnel_client.c) */
	/* Path prefixes tunnelled requests may use (forward.c); none: the defaults. */
	const char *allow[AGENT_MAX_ALLOW];
	size_t nallow;
	unsigned interval_s; /* --interval; 0: the manager decides */
	int tunnel_transport; /* --tunnel-transport: AGENT_TRANSPORT_* */
	int once;	     /* --once: one heartbeat, then exit */
	int exit_code;
	int stopping;
};

/* ---- main.c: subcommands ---- */

struct agent_cmd {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv); /* exit status: 0, 1 failure, 2 usage */
	void (*usage)(FILE *out);
};

extern const struct agent_cmd cmd_join;
extern const struct agent_cmd cmd_run;

/*
 * Prints "lxcm-agent NAME: <message>" (when fmt is not NULL) and the hint to
 * run NAME --help, on stderr. Returns 2, the usage-error exit status.
 */
int cmd_usage_error(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * For getopt_long with opterr = 0 and an optstring starting with ':':
 * reports the option that made it return ch ('?' or ':'). Returns 2.
 */
int cmd_getopt_error(const char *name, int ch, char **argv);
/*
 * Parses a subcommand's options with getopt_long (longopts must not use
 * 'h', '?' or ':'): --help prints cmd->usage on stdout and sets *done, a
 * bad option is a usage error, and every other option goes to
 * on_opt(state, val, optarg), which returns 0 or an exit status. Returns 0
 * (optind is then the first positional argument) or the exit status.
 */
struct option;
int cmd_parse(const struct agent_cmd *cmd, int argc, char **argv, const struct option *longopts,
	      int (*on_opt)(void *state, int val, const char *arg), void *state, int *done);

/* ---- agent.c: process lifecycle ---- */

/*
 * Formats a human-readable reason into err (errlen > 0). A reason cut short
 * by the buffer ends in "..." rather than being lost.
 */
void agent_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * A short description of an error code from the network layer: uv/errno
 * codes, CONN_EPIN, CONN_ETLS, timeouts, -E2BIG for an oversized response.
 */
const char *agent_strerror(int err);
/* Sets up ag (loop, TLS contexts, signals) from a loaded config; 0 or -1 (logged). */
int agent_init(struct agent *ag, uv_loop_t *loop);
/* Starts every module. */
int agent_start(struct agent *ag);
/* Stops every module and closes the agent's handles; idempotent. */
void agent_stop(struct agent *ag, int exit_code);
/* Frees what agent_init made, after the loop has run dry. */
void agent_free(struct agent *ag);
/*
 * Fills opts for a request to manager address i (0 <= i < naddresses):
 * TLS with our certificate, pinned to the saved fingerprint. host points
 * into hostbuf. 0, or -EINVAL if the saved address does not parse.
 */
int agent_manager_opts(const struct agent *ag, size_t i, struct http_client_opts *opts,
		       char *hostbuf, size_t hostlen);

/* ---- hostport.c ---- */

/*
 * Splits "host:port" or "[v6]:port" (port 1..65535, required) into host (a
 * NUL-terminated copy, without brackets) and *port. 0 or -EINVAL.
 */
int hostport_split(const char *s, char *host, size_t hostlen, int *port);

/* ---- upstream.c: the local LXD ---- */

/* The default upstream URL: the snap socket if it exists, else Debian's. */
const char *upstream_default_url(void);
/*
 * Parses "unix:///path", "/path" or "https://host[:port]" (port 8443 by
 * default) into u->url / unix_path / host / port. Other fields untouched.
 * 0, or -EINVAL / -ENOMEM with a reason in err.
 */
int upstream_parse(const char *url, struct upstream *u, char *err, size_t errlen);
/*
 * Checks that the HTTPS settings are consistent (no TLS options on a unix
 * socket; a CA or a fingerprint for HTTPS) and returns the client context,
 * or NULL for a unix socket. *ok is 0 on error, with the reason in err.
 */
SSL_CTX *upstream_tls_new(const struct upstream *u, int *ok, char *err, size_t errlen);
/* Fills opts for a request to LXD. */
void upstream_opts(const struct upstream *u, SSL_CTX *tls, struct http_client_opts *opts);
void upstream_clear(struct upstream *u);

/* ---- state.c: agent.json ---- */

/* Joins dir and name into out; 0 or -ENAMETOOLONG. */
int state_path(const char *dir, const char *name, char *out, size_t outlen);
/* Writes DIR/agent.json (0600, atomically). 0 or a negative errno code. */
int state_save(const struct agent_config *cfg);
/*
 * Reads and checks DIR/agent.json into cfg (cfg->data_dir set to a copy of
 * dir). 0, or a negative code with a reason in err; cfg is then cleared.
 */
int state_load(const char *dir, struct agent_config *cfg, char *err, size_t errlen);
void state_clear(struct agent_config *cfg);

/* ---- heartbeat.c ---- */

/* Starts the heartbeat: the first one at once. 0 or -ENOMEM. */
int heartbeat_start(struct agent *ag);
/* Cancels what is in flight; the module frees itself once its timer is closed. */
void heartbeat_stop(struct agent *ag);

#endif
