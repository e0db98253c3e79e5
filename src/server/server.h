/*
 * server.h - the state of one lxcm-server process.
 *
 * One struct server lives for the whole process and is reachable from every
 * request as req->server_data. It is owned by main.c. Everything here is
 * touched only on the loop thread, except `store`, whose calls go through
 * store_run() on the store's worker threads.
 */
#ifndef LXCM_SERVER_H
#define LXCM_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "net/http.h"
#include "net/tunnel_h2.h"
#include "server/oidc_config.h"
#include "server/ratelimit.h"
#include "server/remote_write.h"
#include "store/store.h"

#define SERVER_DEFAULT_MANAGEMENT_ADDR "127.0.0.1:8443"
#define SERVER_DEFAULT_CONNECTOR_ADDR "127.0.0.1:9443"
#define SERVER_DEFAULT_HEARTBEAT_S 60
#define SERVER_DEFAULT_TOKEN_TTL_S (24 * 3600)
#define SERVER_STATUS_BODY_MAX (8 * 1024 * 1024) /* heartbeats carry metrics */
#define SERVER_MAX_TRUSTED_PROXIES 64
#define SERVER_MAX_PROXY_PROTOCOL_FROM 64

struct server_config {
	const char *data_dir;
	char management_host[256];
	int management_port;
	char connector_host[256];
	int connector_port;
	char connector_public[300];  /* host:port that goes into join tokens */
	char management_public[300]; /* https://host:port told to clusters */
	char replica[128];	     /* this replica's name (default: the host name) */
	uint64_t proxy_header_timeout_ms; /* 504 when the upstream sends no headers */
	uint64_t tunnel_dead_after_ms;	  /* a silent v2 tunnel is closed (0: default) */
	uint64_t proxy_idle_timeout_ms;	  /* a proxied response body stalled this long is cut */
	uint64_t proxy_fin_timeout_ms;	  /* a half-closed WebSocket quiet this long is cut */
	char db_url[4096];
	const char *db_password_file; /* NULL: none */
	char tls_cert[4096];
	char tls_key[4096];
	int tls_given; /* --tls-cert/--tls-key: use them, never generate */
	int heartbeat_interval_s;
	double join_rate;  /* join attempts per second per source address */
	double join_burst;
	struct http_limits limits;
	struct net_cidr trusted_proxies[SERVER_MAX_TRUSTED_PROXIES]; /* --trusted-proxy */
	size_t ntrusted_proxies;
	/* --proxy-protocol-from: sources that must send a PROXY protocol header */
	struct net_cidr proxy_protocol_from[SERVER_MAX_PROXY_PROTOCOL_FROM];
	size_t nproxy_protocol_from;
	unsigned store_threads; /* --store-threads: the store's worker threads */
	int64_t audit_retention_s; /* --audit-retention: rows older are pruned; 0 keeps all */
	char metrics_host[256]; /* --metrics-addr; empty: no metrics listener */
	int metrics_port;
	int metrics_per_cluster; /* --metrics-per-cluster */
	struct remote_write_config remote_write; /* --metrics-remote-write-*; url NULL: off */
	struct oidc_config oidc; /* --oidc-*, --session-* (oidc_config.h) */
};

struct enrolled;
struct telemetry;
struct principal_cache;
struct auth_lookup;
struct oidc;

struct server {
	uv_loop_t *loop;
	struct server_config cfg;
	struct store *store;
	SSL_CTX *mgmt_tls;
	SSL_CTX *conn_tls;
	char connector_fp[65];
	struct http_server *management;
	struct http_server *connector;
	struct http_server *metrics_listener; /* --metrics-addr, or NULL */
	struct telemetry *telemetry;	      /* the manager's metrics (telemetry.h) */
	struct remote_write *remote_write;    /* cluster metrics out, or NULL (remote_write.h) */
	struct ratelimit *join_limit;
	struct tunnels *tunnels;
	struct audit_log *audit;
	struct audit_retention *audit_retention; /* audit_retention.c */
	struct enrolled *enrolled; /* fingerprints of enrolled clusters (TLS sessions) */
	struct tunnel_h2_config tunnel_cfg;
	char replica[128];
	/* API tokens by hash, for a few seconds (principal.h), and the store
	 * lookups in flight (auth.c). */
	struct principal_cache *principals;
	struct auth_lookup *auth_lookups;
	size_t auth_nlookups;
	char admin_token_hash[65]; /* SHA-256 of the token in admin.token at start, or "" */
	struct oidc *oidc; /* people's logins and sessions (oidc.h), NULL without --oidc-issuer */
};

/* Route tables (api.c, connector.c). */
extern const struct http_route api_routes[];
extern const size_t api_nroutes;
extern const struct http_route connector_routes[];
extern const size_t connector_nroutes;

/*
 * Management authentication (auth.c): pre_route hook of the management
 * listener. Sets the request's principal and checks the route's access
 * (principal.h); may decide later (HTTP_PRE_ROUTE_PENDING).
 */
int auth_management_pre_route(struct http_request *req);
/*
 * Sets the principal known (kind PRINCIPAL_NONE: no such token) on req and
 * checks the route's access: 0 to go on, -1 when it answered (auth.c; the
 * session step, auth_session.c, shares it).
 */
int auth__decide(struct http_request *req, const struct principal *known);
/* Adds req to a growing array of requests waiting for one lookup. 0 or -ENOMEM. */
int auth__wait(struct http_request ***waiters, size_t *n, size_t *cap,
	       struct http_request *req);
/*
 * The element of a linked list (next and a 64-hex-digit hash at the given
 * offsets) whose hash is hash, or NULL: compared in constant time with
 * every element, so the time tells nothing about the others' hashes.
 */
void *auth__find(void *head, size_t next_off, size_t hash_off, const char *hash);
/* Creates the admin token on first start and the token cache. */
int auth_bootstrap(struct server *srv);
/* Frees the token cache (after the loop has run dry). */
void auth_free(struct server *srv);
/* The SHA-256 (hex) of the token in DATA_DIR/admin.token. 0 or -ENOENT. Any thread. */
int auth_admin_file_hash(const char *data_dir, char hash[65]);
/*
 * Change feed subscriber (data: the server): an API token created or
 * revoked by any code path is forgotten by the token cache at once.
 */
struct store_change;
void auth_on_change(const struct store_change *c, void *data);

/* The caches that follow the store's change feed (changes.c); on the loop. */
int changes_listen(struct server *srv);
/* `lxcm-server migrate-db ...` (migrate_db.c): argv[0] is "migrate-db". Exit code. */
int migrate_db_main(int argc, char **argv);
void changes_stop(struct server *srv);

/* Connector pre_route: a client certificate is required except for join and status. */
int connector_pre_route(struct http_request *req);
/*
 * connector_direct.c: takes a connector connection whose TLS handshake
 * selected ALPN lxcm-tunnel.v2 (tls_alpn_handover_fn; arg: the server).
 */
void connector_direct_accept(struct conn *c, void *arg);

/* Cluster object rendering (cluster_json.c); adds the live tunnel if any. */
json_t *cluster_to_json(const struct store_cluster *c);
json_t *cluster_to_json_live(struct server *srv, const struct store_cluster *c);

/* The tunnel proxy route handler (proxy.c). */
void proxy_handle(struct http_request *req);
/* GET /1.0/audit (api_audit.c). */
void api_audit_get(struct http_request *req);

/* Common handler helpers (handlers.c). */
/* Parses the buffered body as a JSON object, answering 400 itself on failure. */
json_t *handler_parse_body(struct http_request *req);
/* Maps a store error to an HTTP answer; finishes the request. */
void handler_store_error(struct http_request *req, int rc, const char *what);
/* A name as lxcm accepts it for clusters: 1..63 of [A-Za-z0-9._-], not starting with '.' or '-'. */
int handler_valid_name(const char *name);

#endif
