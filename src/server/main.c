/*
 * main.c - lxcm-server: options, data directory, certificates, store,
 * the two listeners, and clean shutdown on SIGINT/SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cert.h"
#include "common/config_file.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "net/tls.h"
#include "server/audit.h"
#include "server/enrolled.h"
#include "server/oidc.h"
#include "net/stream_pipe.h"
#include "server/server.h"
#include "server/tunnels.h"
#include "store/store_workers.h"
#include <unistd.h>
#include "common/version.h"

#define MAIN_STR_(x) #x
#define MAIN_STR(x) MAIN_STR_(x)

static void usage(FILE *f)
{
	fputs("Usage: lxcm-server --data-dir DIR [options]\n"
	      "\n"
	      "Runs the lxcm manager: the management listener (operators: REST API)\n"
	      "and the connector listener (clusters: join, heartbeats; mutual TLS).\n"
	      "\n"
	      "Options:\n"
	      "  --config FILE                   read flags from FILE (`key = value` lines; the\n"
	      "                                  command line wins)\n"
	      "  --data-dir DIR                  state: database, certificate, admin.token (required)\n"
	      "  --management-addr HOST:PORT     management listener (default " SERVER_DEFAULT_MANAGEMENT_ADDR ")\n"
	      "  --connector-addr HOST:PORT      connector listener (default " SERVER_DEFAULT_CONNECTOR_ADDR ")\n"
	      "  --connector-public-address H:P  address put in join tokens (default: --connector-addr)\n"
	      "  --management-public-url URL     manager URL told to clusters (default: https://--management-addr)\n"
	      "  --db URL                        sqlite:PATH (default sqlite:DIR/lxcm.db)\n"
	      "  --store-threads N               threads that run database work, 1.." MAIN_STR(STORE_THREADS_MAX) "\n"
	      "                                  (default " MAIN_STR(STORE_THREADS_DEFAULT) ")\n"
	      "  --tls-cert FILE --tls-key FILE  certificate for both listeners (default: generated in DIR)\n"
	      "  --heartbeat-interval SECONDS    interval suggested to clusters (default 60)\n"
	      "  --join-rate N --join-burst N    join attempts per second and burst per source address\n"
	      "                                  (default 0.2 and 10)\n"
	      "  --max-header-bytes N            request line + headers cap (default 65536)\n"
	      "  --max-json-body N               buffered JSON body cap (default 1048576)\n"
	      "  --header-timeout MS             time to send a request head (default 10000)\n"
	      "  --idle-timeout MS               keep-alive idle time (default 60000)\n"
	      "  --replica-name NAME             this replica's name (default: host name)\n"
	      "  --max-handshakes-per-ip N       TLS handshakes in progress per source address\n"
	      "                                  (default 64; more are closed at once)\n"
	      "  --proxy-header-timeout MS       504 when a cluster sends no response headers\n"
	      "                                  in time (default 60000)\n"
	      "  --proxy-idle-timeout MS         cut a proxied response whose body made no\n"
	      "                                  progress this long (default 300000)\n"
	      "  --proxy-fin-timeout MS          cut a proxied WebSocket one side of which has\n"
	      "                                  ended, once quiet this long (default 30000)\n"
	      "  --tunnel-dead-after MS          close a v2 tunnel silent this long; PINGs\n"
	      "                                  every third of it (default 45000)\n"
	      "  --trusted-proxy CIDR[,CIDR...]  believe X-Forwarded-For from these sources\n"
	      "                                  (repeatable; default: none, never believed)\n"
	      "  --proxy-protocol-from CIDR[,CIDR...]\n"
	      "                                  connections from these sources (L4 load\n"
	      "                                  balancers) must start with a PROXY protocol\n"
	      "                                  v1 or v2 header, whose address becomes the\n"
	      "                                  client's; on both listeners. A header from any\n"
	      "                                  other source is refused (repeatable; default:\n"
	      "                                  none, no header is read)\n"
	      "  --oidc-issuer URL               log people in with this OpenID provider (https://;\n"
	      "                                  http:// only on loopback, for development)\n"
	      "  --oidc-client-id ID             lxcm's client id at the provider\n"
	      "  --oidc-client-secret-file FILE  the client secret (mode 0600); without it a\n"
	      "                                  public client with PKCE\n"
	      "  --oidc-scopes \"S S\"             scopes asked for (default\n"
	      "                                  \"" OIDC_DEFAULT_SCOPES "\")\n"
	      "  --oidc-groups-claim NAME        claim with the user's groups (default groups)\n"
	      "  --oidc-role-map admin=G[,G],operator=G,viewer=G\n"
	      "                                  groups to roles: a user gets the highest role any\n"
	      "                                  of their groups maps to (repeatable)\n"
	      "  --oidc-ca-file FILE             trust this CA for the provider (default: the\n"
	      "                                  system's)\n"
	      "  --session-idle DURATION         end a session unused this long (default 12h)\n"
	      "  --session-max DURATION          end every session this long after login\n"
	      "                                  (default 7d); durations: 90s, 15m, 12h, 7d\n"
	      "  --log-level debug|info|warn|error\n"
	      "  --version, --help\n",
	      f);
}

/* Splits "host:port" or "[v6]:port". */
static int parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon;
	long long p;
	size_t hl;
	char *end;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - s - 1);
		s++;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostlen)
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	errno = 0;
	p = strtoll(colon + 1, &end, 10);
	if (errno || *end || p < 0 || p > 65535 || end == colon + 1)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

static int parse_num(const char *s, long long min, long long max, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return (errno || *end || end == s || *out < min || *out > max) ? -EINVAL : 0;
}

static int copy_opt(char *dst, size_t len, const char *src)
{
	return snprintf(dst, len, "%s", src) >= (int)len ? -ENAMETOOLONG : 0;
}

enum {
	OPT_DATA_DIR = 256,
	OPT_MGMT_ADDR,
	OPT_CONN_ADDR,
	OPT_CONN_PUBLIC,
	OPT_MGMT_PUBLIC,
	OPT_DB,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_HEARTBEAT,
	OPT_JOIN_RATE,
	OPT_JOIN_BURST,
	OPT_MAX_HEADER,
	OPT_MAX_JSON,
	OPT_HEADER_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_LOG_LEVEL,
	OPT_REPLICA,
	OPT_MAX_HANDSHAKES,
	OPT_PROXY_HEADER_TIMEOUT,
	OPT_TRUSTED_PROXY,
	OPT_TUNNEL_DEAD,
	OPT_PROXY_IDLE,
	OPT_PROXY_FIN,
	OPT_PROXY_PROTOCOL_FROM,
	OPT_STORE_THREADS,
	OPT_OIDC_ISSUER,
	OPT_OIDC_CLIENT_ID,
	OPT_OIDC_SECRET_FILE,
	OPT_OIDC_SCOPES,
	OPT_OIDC_GROUPS_CLAIM,
	OPT_OIDC_ROLE_MAP,
	OPT_OIDC_CA_FILE,
	OPT_SESSION_IDLE,
	OPT_SESSION_MAX,
	OPT_CONFIG,
	OPT_VERSION,
	OPT_HELP,
};

static const struct option long_opts[] = {
	{"data-dir", required_argument, NULL, OPT_DATA_DIR},
	{"management-addr", required_argument, NULL, OPT_MGMT_ADDR},
	{"connector-addr", required_argument, NULL, OPT_CONN_ADDR},
	{"connector-public-address", required_argument, NULL, OPT_CONN_PUBLIC},
	{"management-public-url", required_argument, NULL, OPT_MGMT_PUBLIC},
	{"db", required_argument, NULL, OPT_DB},
	{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	{"tls-key", required_argument, NULL, OPT_TLS_KEY},
	{"heartbeat-interval", required_argument, NULL, OPT_HEARTBEAT},
	{"join-rate", required_argument, NULL, OPT_JOIN_RATE},
	{"join-burst", required_argument, NULL, OPT_JOIN_BURST},
	{"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER},
	{"max-json-body", required_argument, NULL, OPT_MAX_JSON},
	{"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
	{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"replica-name", required_argument, NULL, OPT_REPLICA},
	{"max-handshakes-per-ip", required_argument, NULL, OPT_MAX_HANDSHAKES},
	{"proxy-header-timeout", required_argument, NULL, OPT_PROXY_HEADER_TIMEOUT},
	{"trusted-proxy", required_argument, NULL, OPT_TRUSTED_PROXY},
	{"tunnel-dead-after", required_argument, NULL, OPT_TUNNEL_DEAD},
	{"proxy-idle-timeout", required_argument, NULL, OPT_PROXY_IDLE},
	{"proxy-fin-timeout", required_argument, NULL, OPT_PROXY_FIN},
	{"proxy-protocol-from", required_argument, NULL, OPT_PROXY_PROTOCOL_FROM},
	{"store-threads", required_argument, NULL, OPT_STORE_THREADS},
	{"oidc-issuer", required_argument, NULL, OPT_OIDC_ISSUER},
	{"oidc-client-id", required_argument, NULL, OPT_OIDC_CLIENT_ID},
	{"oidc-client-secret-file", required_argument, NULL, OPT_OIDC_SECRET_FILE},
	{"oidc-scopes", required_argument, NULL, OPT_OIDC_SCOPES},
	{"oidc-groups-claim", required_argument, NULL, OPT_OIDC_GROUPS_CLAIM},
	{"oidc-role-map", required_argument, NULL, OPT_OIDC_ROLE_MAP},
	{"oidc-ca-file", required_argument, NULL, OPT_OIDC_CA_FILE},
	{"session-idle", required_argument, NULL, OPT_SESSION_IDLE},
	{"session-max", required_argument, NULL, OPT_SESSION_MAX},
	{CONFIG_FILE_OPTION, required_argument, NULL, OPT_CONFIG},
	{"version", no_argument, NULL, OPT_VERSION},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static int parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return (errno || *end || end == s || *out <= 0 || *out > 1e6) ? -EINVAL : 0;
}

static int parse_log_level(const char *s)
{
	if (strcmp(s, "debug") == 0)
		log_set_level(LOG_LEVEL_DEBUG);
	else if (strcmp(s, "info") == 0)
		log_set_level(LOG_LEVEL_INFO);
	else if (strcmp(s, "warn") == 0)
		log_set_level(LOG_LEVEL_WARN);
	else if (strcmp(s, "error") == 0)
		log_set_level(LOG_LEVEL_ERROR);
	else
		return -EINVAL;
	return 0;
}

/* The --config file; cfg's strings point into it, so it lives as long as the process. */
static struct config_file server_config_file;

/* Returns 0 to run, 1 to exit 0 (help, version), -1 for a usage error. */
static int parse_args(int argc, char **argv, struct server_config *cfg)
{
	const char *mgmt = SERVER_DEFAULT_MANAGEMENT_ADDR, *conn = SERVER_DEFAULT_CONNECTOR_ADDR;
	char err[512];
	long long n;
	int opt, rc = 0;

	cfg->heartbeat_interval_s = SERVER_DEFAULT_HEARTBEAT_S;
	cfg->proxy_header_timeout_ms = 60000;
	cfg->proxy_idle_timeout_ms = 300000;
	cfg->proxy_fin_timeout_ms = STREAM_PIPE_DEFAULT_FIN_TIMEOUT_MS;
	cfg->join_rate = 0.2;
	cfg->join_burst = 10;
	cfg->store_threads = STORE_THREADS_DEFAULT;
	oidc_config_defaults(&cfg->oidc);
	if (config_file_merge(&server_config_file, argc, argv, "h", long_opts) < 0) {
		fprintf(stderr, "lxcm-server: %s\n", server_config_file.err);
		return -1;
	}
	argc = server_config_file.argc;
	argv = server_config_file.argv;
	while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_DATA_DIR: cfg->data_dir = optarg; break;
		case OPT_MGMT_ADDR: mgmt = optarg; break;
		case OPT_CONN_ADDR: conn = optarg; break;
		case OPT_CONN_PUBLIC: rc = copy_opt(cfg->connector_public, sizeof(cfg->connector_public), optarg); break;
		case OPT_MGMT_PUBLIC: rc = copy_opt(cfg->management_public, sizeof(cfg->management_public), optarg); break;
		case OPT_DB: rc = copy_opt(cfg->db_url, sizeof(cfg->db_url), optarg); break;
		case OPT_TLS_CERT: rc = copy_opt(cfg->tls_cert, sizeof(cfg->tls_cert), optarg); break;
		case OPT_TLS_KEY: rc = copy_opt(cfg->tls_key, sizeof(cfg->tls_key), optarg); break;
		case OPT_HEARTBEAT:
			rc = parse_num(optarg, 1, 86400, &n);
			cfg->heartbeat_interval_s = (int)n;
			break;
		case OPT_JOIN_RATE: rc = parse_double(optarg, &cfg->join_rate); break;
		case OPT_JOIN_BURST: rc = parse_double(optarg, &cfg->join_burst); break;
		case OPT_MAX_HEADER:
			rc = parse_num(optarg, 1024, 16 << 20, &n);
			cfg->limits.max_header_bytes = (size_t)n;
			break;
		case OPT_MAX_JSON:
			rc = parse_num(optarg, 1024, 1 << 30, &n);
			cfg->limits.max_json_body = (size_t)n;
			break;
		case OPT_HEADER_TIMEOUT:
			rc = parse_num(optarg, 100, 3600000, &n);
			cfg->limits.header_timeout_ms = (uint64_t)n;
			break;
		case OPT_IDLE_TIMEOUT:
			rc = parse_num(optarg, 100, 86400000, &n);
			cfg->limits.idle_timeout_ms = (uint64_t)n;
			break;
		case OPT_LOG_LEVEL: rc = parse_log_level(optarg); break;
		case OPT_REPLICA: rc = copy_opt(cfg->replica, sizeof(cfg->replica), optarg); break;
		case OPT_MAX_HANDSHAKES:
			rc = parse_num(optarg, 1, 100000, &n);
			cfg->limits.max_handshakes_per_ip = (size_t)n;
			break;
		case OPT_PROXY_HEADER_TIMEOUT:
			rc = parse_num(optarg, 100, 3600000, &n);
			cfg->proxy_header_timeout_ms = (uint64_t)n;
			break;
		case OPT_TRUSTED_PROXY:
			rc = net_cidr_list_parse(optarg, cfg->trusted_proxies,
						 SERVER_MAX_TRUSTED_PROXIES,
						 &cfg->ntrusted_proxies);
			break;
		case OPT_PROXY_PROTOCOL_FROM:
			rc = net_cidr_list_parse(optarg, cfg->proxy_protocol_from,
						 SERVER_MAX_PROXY_PROTOCOL_FROM,
						 &cfg->nproxy_protocol_from);
			break;
		case OPT_PROXY_IDLE:
			rc = parse_num(optarg, 100, 86400000, &n);
			cfg->proxy_idle_timeout_ms = (uint64_t)n;
			break;
		case OPT_PROXY_FIN:
			rc = parse_num(optarg, 100, 86400000, &n);
			cfg->proxy_fin_timeout_ms = (uint64_t)n;
			break;
		case OPT_TUNNEL_DEAD:
			rc = parse_num(optarg, 900, 3600000, &n);
			cfg->tunnel_dead_after_ms = (uint64_t)n;
			break;
		case OPT_STORE_THREADS:
			rc = parse_num(optarg, 1, STORE_THREADS_MAX, &n);
			cfg->store_threads = (unsigned)n;
			break;
		case OPT_OIDC_ISSUER:
		case OPT_OIDC_CLIENT_ID:
		case OPT_OIDC_SECRET_FILE:
		case OPT_OIDC_SCOPES:
		case OPT_OIDC_GROUPS_CLAIM:
		case OPT_OIDC_ROLE_MAP:
		case OPT_OIDC_CA_FILE:
		case OPT_SESSION_IDLE:
		case OPT_SESSION_MAX:
			rc = oidc_config_set(&cfg->oidc, long_opts[opt - OPT_DATA_DIR].name, optarg);
			break;
		case OPT_CONFIG: break; /* read by config_file_merge */
		case OPT_VERSION: printf("lxcm-server %s\n", lxcm_version()); return 1;
		case 'h':
		case OPT_HELP: usage(stdout); return 1;
		default: usage(stderr); return -1;
		}
		if (rc < 0) {
			fprintf(stderr, "lxcm-server: %sinvalid value for --%s: %s\n",
				config_file_where(&server_config_file, optarg),
				long_opts[opt - OPT_DATA_DIR].name, optarg);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lxcm-server: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	if (cfg->data_dir == NULL) {
		fputs("lxcm-server: --data-dir is required\n", stderr);
		usage(stderr);
		return -1;
	}
	if (parse_hostport(mgmt, cfg->management_host, sizeof(cfg->management_host),
			   &cfg->management_port) < 0) {
		fprintf(stderr, "lxcm-server: %sinvalid --management-addr %s\n",
			config_file_where(&server_config_file, mgmt), mgmt);
		return -1;
	}
	if (parse_hostport(conn, cfg->connector_host, sizeof(cfg->connector_host),
			   &cfg->connector_port) < 0) {
		fprintf(stderr, "lxcm-server: %sinvalid --connector-addr %s\n",
			config_file_where(&server_config_file, conn), conn);
		return -1;
	}
	if ((cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0')) {
		fputs("lxcm-server: --tls-cert and --tls-key go together\n", stderr);
		return -1;
	}
	cfg->tls_given = cfg->tls_cert[0] != '\0';
	if (oidc_config_finish(&cfg->oidc, err, sizeof(err)) < 0) {
		fprintf(stderr, "lxcm-server: %s\n", err);
		return -1;
	}
	return 0;
}

/* Fills defaults that depend on the data dir and the bound ports. */
static int fill_defaults(struct server_config *cfg)
{
	int rc = 0;

	if (cfg->db_url[0] == '\0')
		rc = copy_opt(cfg->db_url, sizeof(cfg->db_url), cfg->data_dir) ||
		     snprintf(cfg->db_url, sizeof(cfg->db_url), "sqlite:%s/lxcm.db",
			      cfg->data_dir) >= (int)sizeof(cfg->db_url);
	if (rc == 0 && cfg->tls_cert[0] == '\0')
		rc = snprintf(cfg->tls_cert, sizeof(cfg->tls_cert), "%s/server.crt",
			      cfg->data_dir) >= (int)sizeof(cfg->tls_cert) ||
		     snprintf(cfg->tls_key, sizeof(cfg->tls_key), "%s/server.key",
			      cfg->data_dir) >= (int)sizeof(cfg->tls_key);
	return rc ? -ENAMETOOLONG : 0;
}

/* "host:port", with brackets around an IPv6 host. */
static int format_hostport(char *out, size_t len, const char *prefix, const char *host, int port)
{
	int v6 = strchr(host, ':') != NULL;

	return snprintf(out, len, "%s%s%s%s:%d", prefix, v6 ? "[" : "", host, v6 ? "]" : "",
			port) >= (int)len
		       ? -ENAMETOOLONG
		       : 0;
}

static int server_fill_public(struct server *srv)
{
	struct server_config *cfg = &srv->cfg;

	if (cfg->connector_public[0] == '\0' &&
	    format_hostport(cfg->connector_public, sizeof(cfg->connector_public), "",
			    cfg->connector_host, http_server_port(srv->connector)) < 0)
		return -ENAMETOOLONG;
	if (cfg->management_public[0] == '\0' &&
	    format_hostport(cfg->management_public, sizeof(cfg->management_public), "https://",
			    cfg->management_host, http_server_port(srv->management)) < 0)
		return -ENAMETOOLONG;
	if (strcmp(cfg->connector_host, "0.0.0.0") == 0 || strcmp(cfg->connector_host, "::") == 0)
		LOG_WARN("the connector listens on all addresses; set --connector-public-address "
			 "so join tokens carry an address clusters can reach");
	return 0;
}

static int server_setup_tls(struct server *srv)
{
	char err[512];
	int rc;

	if (srv->cfg.tls_given) {
		if (access(srv->cfg.tls_cert, R_OK) != 0 || access(srv->cfg.tls_key, R_OK) != 0) {
			LOG_ERROR("cannot read --tls-cert %s or --tls-key %s", srv->cfg.tls_cert,
				  srv->cfg.tls_key);
			return -ENOENT;
		}
		rc = 0;
	} else {
		rc = cert_ensure_files(srv->cfg.tls_cert, srv->cfg.tls_key, "lxcm-server");
	}
	if (rc < 0) {
		LOG_ERROR("cannot create the TLS certificate %s: %s", srv->cfg.tls_cert,
			  strerror(-rc));
		return rc;
	}
	rc = cert_load_fingerprint_file(srv->cfg.tls_cert, srv->connector_fp);
	if (rc < 0) {
		LOG_ERROR("cannot read the TLS certificate %s", srv->cfg.tls_cert);
		return rc;
	}
	srv->mgmt_tls = tls_server_ctx_new(srv->cfg.tls_cert, srv->cfg.tls_key, 0, err, sizeof(err));
	srv->conn_tls = tls_server_ctx_new(srv->cfg.tls_cert, srv->cfg.tls_key, 1, err, sizeof(err));
	if (srv->mgmt_tls == NULL || srv->conn_tls == NULL) {
		LOG_ERROR("TLS setup failed: %s", err);
		return -EINVAL;
	}
	return 0;
}

static int server_listen(struct server *srv)
{
	struct http_server_config m = {0}, c = {0};
	int rc;

	m.host = srv->cfg.management_host;
	m.port = srv->cfg.management_port;
	m.tls = srv->mgmt_tls;
	m.routes = api_routes;
	m.nroutes = api_nroutes;
	m.limits = srv->cfg.limits;
	m.trusted_proxies = srv->cfg.trusted_proxies;
	m.ntrusted_proxies = srv->cfg.ntrusted_proxies;
	m.proxy_protocol_from = srv->cfg.proxy_protocol_from;
	m.nproxy_protocol_from = srv->cfg.nproxy_protocol_from;
	m.data = srv;
	m.name = "management";
	m.pre_route = auth_management_pre_route;
	c = m;
	c.host = srv->cfg.connector_host;
	c.port = srv->cfg.connector_port;
	c.tls = srv->conn_tls;
	c.routes = connector_routes;
	c.nroutes = connector_nroutes;
	c.name = "connector";
	c.pre_route = connector_pre_route;
	rc = http_server_start(srv->loop, &m, &srv->management);
	if (rc < 0) {
		LOG_ERROR("cannot listen on %s:%d (management): %s", m.host, m.port, uv_strerror(rc));
		return rc;
	}
	rc = http_server_start(srv->loop, &c, &srv->connector);
	if (rc < 0) {
		LOG_ERROR("cannot listen on %s:%d (connector): %s", c.host, c.port, uv_strerror(rc));
		return rc;
	}
	return 0;
}

static uv_signal_t sig_int, sig_term;
static uv_timer_t stop_timer;

static void on_stop_timeout(uv_timer_t *t)
{
	LOG_WARN("shutdown took too long; stopping the loop");
	uv_stop(t->loop);
}

/*
 * Stops accepting, closes every connection and lets queued database work
 * finish; the loop then ends by itself. A fallback timer, unreferenced so
 * it never keeps the loop alive, stops it after 5 s.
 */
static void on_signal(uv_signal_t *sig, int signum)
{
	struct server *srv = sig->data;

	LOG_INFO("signal %d: shutting down", signum);
	http_server_stop(srv->management);
	http_server_stop(srv->connector);
	srv->management = srv->connector = NULL;
	tunnels_close_all(srv->tunnels);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_timer_init(srv->loop, &stop_timer);
	uv_timer_start(&stop_timer, on_stop_timeout, 5000, 0);
	uv_unref((uv_handle_t *)&stop_timer);
}

int main(int argc, char **argv)
{
	struct server srv;
	int rc;

	memset(&srv, 0, sizeof(srv));
	signal(SIGPIPE, SIG_IGN);
	umask(077); /* the database holds secret hashes and the audit log */
	log_set_prefix("lxcm-server");
	rc = parse_args(argc, argv, &srv.cfg);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (fill_defaults(&srv.cfg) < 0 || fs_mkdir_p(srv.cfg.data_dir, 0700) < 0) {
		LOG_ERROR("cannot use data directory %s", srv.cfg.data_dir);
		return 1;
	}
	srv.loop = uv_default_loop();
	srv.join_limit = ratelimit_new(srv.cfg.join_rate, srv.cfg.join_burst);
	if (srv.join_limit == NULL || server_setup_tls(&srv) < 0)
		return 1;
	rc = store_open(srv.cfg.db_url, &srv.store);
	if (rc < 0) {
		LOG_ERROR("cannot open the store %s", srv.cfg.db_url);
		return 1;
	}
	if (store_workers_set_threads(srv.store, srv.cfg.store_threads) < 0)
		return 1;
	rc = auth_bootstrap(&srv);
	if (rc < 0) {
		LOG_ERROR("cannot set up the admin token: %s", strerror(-rc));
		return 1;
	}
	if (gethostname(srv.replica, sizeof(srv.replica) - 1) != 0)
		snprintf(srv.replica, sizeof(srv.replica), "lxcm");
	if (srv.cfg.replica[0])
		snprintf(srv.replica, sizeof(srv.replica), "%s", srv.cfg.replica);
	/* This replica holds no tunnel yet, whatever a crash left in the store. */
	store_tunnel_clear_replica(srv.store, srv.replica);
	/* TLS sessions are kept for enrolled clusters only (enrolled.h). */
	srv.enrolled = enrolled_new();
	if (srv.enrolled == NULL || enrolled_load(srv.enrolled, srv.store) < 0) {
		LOG_ERROR("cannot read the enrolled clusters from the store");
		return 1;
	}
	tls_server_set_session_filter(srv.conn_tls, enrolled_session_filter, srv.enrolled);
	tunnel_h2_config_defaults(&srv.tunnel_cfg);
	srv.tunnels = tunnels_new(&srv);
	srv.audit = audit_log_new(&srv);
	if (srv.tunnels == NULL || srv.audit == NULL || oidc_start(&srv) < 0 ||
	    changes_listen(&srv) < 0 ||
	    server_listen(&srv) < 0 || server_fill_public(&srv) < 0)
		return 1;
	uv_signal_init(srv.loop, &sig_int);
	uv_signal_init(srv.loop, &sig_term);
	sig_int.data = sig_term.data = &srv;
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	LOG_INFO("lxcm-server %s: management on https://%s:%d, connector on %s:%d "
		 "(public %s, certificate %s)",
		 lxcm_version(), srv.cfg.management_host, http_server_port(srv.management),
		 srv.cfg.connector_host, http_server_port(srv.connector), srv.cfg.connector_public,
		 srv.connector_fp);
	uv_run(srv.loop, UV_RUN_DEFAULT);
	if (stop_timer.loop && !uv_is_closing((uv_handle_t *)&stop_timer))
		uv_close((uv_handle_t *)&stop_timer, NULL);
	/*
	 * Store work still in flight (the fallback stopped the loop) runs to
	 * its end and is answered now, while what its callbacks touch exists.
	 */
	store_workers_stop(srv.store);
	changes_stop(&srv);
	oidc_close(&srv);
	tunnels_free(srv.tunnels);
	tls_server_set_session_filter(srv.conn_tls, NULL, NULL);
	enrolled_free(srv.enrolled);
	auth_free(&srv);
	audit_flush_sync(srv.audit);
	audit_log_free(srv.audit);
	uv_run(srv.loop, UV_RUN_NOWAIT);
	oidc_stop(&srv);
	if (uv_loop_close(srv.loop) != 0)
		LOG_WARN("some handles were still open at exit");
	store_close(srv.store);
	ratelimit_free(srv.join_limit);
	SSL_CTX_free(srv.mgmt_tls);
	SSL_CTX_free(srv.conn_tls);
	LOG_INFO("stopped");
	return 0;
}
