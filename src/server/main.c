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
#include "common/duration.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "net/tls.h"
#include "server/audit.h"
#include "server/audit_retention.h"
#include "server/enrolled.h"
#include "server/metrics_listener.h"
#include "server/telemetry.h"
#include "server/oidc.h"
#include "net/stream_pipe.h"
#include "server/server.h"
#include "server/tunnels.h"
#include "store/store_workers.h"
#include <unistd.h>
#include "common/secret.h"
#include "common/version.h"

#define MAIN_STR_(x) #x
#define MAIN_STR(x) MAIN_STR_(x)

static void usage(FILE *f)
{
	fputs("Usage: lxcm-server --data-dir DIR [options]\n"
	      "       lxcm-server migrate-db ...  (copy a store into an empty one: migrate-db --help)\n"
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
	      "  --db URL                        sqlite:PATH (default sqlite:DIR/lxcm.db), or\n"
	      "                                  postgres://[USER@]HOST[:PORT]/DB[?PARAMS] (libpq)\n"
	      "  --db-password-file FILE         PostgreSQL password, read from FILE (mode 0600;\n"
	      "                                  never put it in --db, which shows in ps)\n"
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
	      "  --audit-retention DURATION      prune audit rows older than this: 90s, 15m, 12h,\n"
	      "                                  7d, 2w or 1d12h (default 90d; 0 keeps all)\n"
	      "  --log-format text|json          log lines as text (default) or JSON objects\n"
	      "  --metrics-addr HOST:PORT        plain-HTTP listener with GET /metrics, /healthz and\n"
	      "                                  /readyz (default: none)\n"
	      "  --metrics-per-cluster           label proxied-request counts with the cluster\n"
	      "                                  (one series per cluster; default: off)\n"
	      "  --metrics-remote-write-url URL  send the clusters' LXD metrics (from heartbeats) to\n"
	      "                                  this Prometheus remote-write endpoint (default: off)\n"
	      "  --metrics-remote-write-bearer-file FILE\n"
	      "                                  send its first line as a bearer token\n"
	      "  --metrics-remote-write-basic-auth-file FILE\n"
	      "                                  send its first line, user:password, as basic auth\n"
	      "  --metrics-remote-write-ca FILE  CAs for an https URL (default: the system's)\n"
	      "  --metrics-remote-write-queue N  batches (heartbeats) kept while the receiver is\n"
	      "                                  slow or down; the oldest go first (default 1000)\n"
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
	OPT_DB_PASSWORD_FILE,
	OPT_AUDIT_RETENTION,
	OPT_LOG_FORMAT,
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
	OPT_METRICS_ADDR,
	OPT_METRICS_PER_CLUSTER,
	OPT_RW_URL,
	OPT_RW_BEARER,
	OPT_RW_BASIC,
	OPT_RW_CA,
	OPT_RW_QUEUE,
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
	{"db-password-file", required_argument, NULL, OPT_DB_PASSWORD_FILE},
	{"audit-retention", required_argument, NULL, OPT_AUDIT_RETENTION},
	{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
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
	{"metrics-addr", required_argument, NULL, OPT_METRICS_ADDR},
	{"metrics-per-cluster", no_argument, NULL, OPT_METRICS_PER_CLUSTER},
	{"metrics-remote-write-url", required_argument, NULL, OPT_RW_URL},
	{"metrics-remote-write-bearer-file", required_argument, NULL, OPT_RW_BEARER},
	{"metrics-remote-write-basic-auth-file", required_argument, NULL, OPT_RW_BASIC},
	{"metrics-remote-write-ca", required_argument, NULL, OPT_RW_CA},
	{"metrics-remote-write-queue", required_argument, NULL, OPT_RW_QUEUE},
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

static int parse_log_format(const char *s)
{
	enum log_format f;

	if (log_format_parse(s, &f) != 0)
		return -EINVAL;
	log_set_format(f);
	return 0;
}

/* A duration (90d, 12h, ...), or 0 to keep every row. */
static int parse_retention(const char *s, int64_t *out)
{
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	return duration_parse(slice_cstr(s), out);
}

/* The long name of option val (the table's order need not follow the enum's). */
static const char *main_opt_name(int val)
{
	for (const struct option *o = long_opts; o->name != NULL; o++)
		if (o->val == val)
			return o->name;
	return "";
}

/* The --config file; cfg's strings point into it, so it lives as long as the process. */
static struct config_file server_config_file;

/*
 * Opens the store, with the password file's content when one is given. The
 * URL is not logged: a PostgreSQL URL may carry a password.
 */
static int server_open_store(struct server *srv)
{
	char *password = NULL;
	int rc;

	if (srv->cfg.db_password_file != NULL) {
		rc = secret_read_file(srv->cfg.db_password_file, &password);
		if (rc < 0) {
			LOG_ERROR("cannot use --db-password-file %s: %s", srv->cfg.db_password_file,
				  rc == -EPERM ? "others may read it (chmod 600)" : strerror(-rc));
			return rc;
		}
	}
	rc = store_open_password(srv->cfg.db_url, password, &srv->store);
	secret_free_text(password);
	if (rc < 0)
		LOG_ERROR("cannot open the store (--db): %s", strerror(-rc));
	return rc;
}

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
	cfg->audit_retention_s = AUDIT_RETENTION_DEFAULT_S;
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
		case OPT_DB_PASSWORD_FILE: cfg->db_password_file = optarg; break;
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
		case OPT_AUDIT_RETENTION: rc = parse_retention(optarg, &cfg->audit_retention_s); break;
		case OPT_LOG_FORMAT: rc = parse_log_format(optarg); break;
		case OPT_OIDC_ISSUER:
		case OPT_OIDC_CLIENT_ID:
		case OPT_OIDC_SECRET_FILE:
		case OPT_OIDC_SCOPES:
		case OPT_OIDC_GROUPS_CLAIM:
		case OPT_OIDC_ROLE_MAP:
		case OPT_OIDC_CA_FILE:
		case OPT_SESSION_IDLE:
		case OPT_SESSION_MAX:
			rc = oidc_config_set(&cfg->oidc, main_opt_name(opt), optarg);
			break;
		case OPT_CONFIG: break; /* read by config_file_merge */
		case OPT_METRICS_ADDR:
			rc = parse_hostport(optarg, cfg->metrics_host, sizeof(cfg->metrics_host),
					    &cfg->metrics_port);
			break;
		case OPT_METRICS_PER_CLUSTER: cfg->metrics_per_cluster = 1; break;
		case OPT_RW_URL: cfg->remote_write.url = optarg; break;
		case OPT_RW_BEARER: cfg->remote_write.bearer_file = optarg; break;
		case OPT_RW_BASIC: cfg->remote_write.basic_auth_file = optarg; break;
		case OPT_RW_CA: cfg->remote_write.ca_file = optarg; break;
		case OPT_RW_QUEUE:
			rc = parse_num(optarg, 1, 1000000, &n);
			cfg->remote_write.queue_max = (size_t)n;
			break;
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
	m.on_finished = telemetry_request_finished;
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
	metrics_listener_stop(srv);
	remote_write_stop(srv->remote_write);
	tunnels_close_all(srv->tunnels);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_timer_init(srv->loop, &stop_timer);
	uv_timer_start(&stop_timer, on_stop_timeout, 5000, 0);
	uv_unref((uv_handle_t *)&stop_timer);
}

int main(int argc, char **argv)
{
	/* Static: it lives as long as the process, and what it holds stays
	 * reachable when a failed start returns early (no false leak). */
	static struct server srv;
	int rc;

	memset(&srv, 0, sizeof(srv));
	signal(SIGPIPE, SIG_IGN);
	umask(077); /* the database holds secret hashes and the audit log */
	log_set_prefix("lxcm-server");
	if (argc > 1 && strcmp(argv[1], "migrate-db") == 0)
		return migrate_db_main(argc - 1, argv + 1);
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
	if (server_open_store(&srv) < 0)
		return 1;
	if (store_workers_set_threads(srv.store, srv.cfg.store_threads) < 0)
		return 1;
	srv.telemetry = telemetry_new(&srv, srv.cfg.metrics_per_cluster);
	if (srv.telemetry == NULL)
		return 1;
	store_set_observer(srv.store, telemetry_store_observe, srv.telemetry);
	if (srv.cfg.remote_write.url &&
	    (srv.remote_write = remote_write_new(&srv, &srv.cfg.remote_write)) == NULL)
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
	/* Agents that offer ALPN lxcm-tunnel.v2 get the direct tunnel transport. */
	if (tls_server_set_alpn_handover(srv.conn_tls, TUNNEL_ALPN, connector_direct_accept,
					 &srv) < 0) {
		LOG_ERROR("cannot set up ALPN on the connector");
		return 1;
	}
	tunnel_h2_config_defaults(&srv.tunnel_cfg);
	srv.tunnels = tunnels_new(&srv);
	srv.audit = audit_log_new(&srv);
	if (srv.tunnels == NULL || srv.audit == NULL || oidc_start(&srv) < 0 ||
	    changes_listen(&srv) < 0 || server_listen(&srv) < 0 || server_fill_public(&srv) < 0 ||
	    metrics_listener_start(&srv) < 0)
		return 1;
	srv.audit_retention = audit_retention_start(&srv);
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
	audit_retention_free(srv.audit_retention);
	changes_stop(&srv);
	oidc_close(&srv);
	tunnels_free(srv.tunnels);
	remote_write_free(srv.remote_write);
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
	telemetry_free(srv.telemetry); /* after the store: its last operations are observed */
	ratelimit_free(srv.join_limit);
	SSL_CTX_free(srv.mgmt_tls);
	SSL_CTX_free(srv.conn_tls);
	LOG_INFO("stopped");
	return 0;
}
