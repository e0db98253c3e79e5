/* fzserver.c - an lxcm-server for fuzz targets (see fzserver.h). */
#include "fzserver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "fuzz.h"
#include "fznet.h"
#include "server/principal.h"
#include "server/ratelimit.h"
#include "server/tunnels.h"

static struct server fzs;
static char fzs_dir[] = "/tmp/lxcm-fuzz-srv-XXXXXX";
static char fzs_token_hash[65];

static int fzs_connector_pre_route(struct http_request *req)
{
	if (http_request_header(req, LIT("X-Fuzz-Cert")).base != NULL)
		req->peer_fp = FZSERVER_ENROLLED_FP;
	return connector_pre_route(req);
}

static void fzs_store_token(const char *name, const char *secret)
{
	struct store_join_token t = {0};
	char hash[65];

	secret_sha256_hex(secret, strlen(secret), hash);
	t.cluster_name = (char *)name;
	t.description = (char *)"fuzz";
	t.secret_hash = hash;
	t.expires_at = time_now() + 100 * 365 * 86400LL;
	t.created_at = time_now();
	(void)store_join_token_create(fzs.store, &t);
}

void fzserver_enroll(const char *name, const char *fingerprint)
{
	static const char pem[] = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
	static const char secret[] = "enrolled-secret";
	struct store_cluster c = {0};
	char hash[65];
	int rc;

	/* A token an input made for this name would have another secret. */
	(void)store_join_token_delete(fzs.store, name);
	fzs_store_token(name, secret);
	secret_sha256_hex(secret, sizeof(secret) - 1, hash);
	c.name = (char *)name;
	c.description = (char *)"";
	c.certificate = (char *)pem;
	c.fingerprint = (char *)fingerprint;
	rc = store_cluster_join(fzs.store, &c, hash, time_now());
	/* -ENOENT: no token could be made because the cluster is there. */
	FUZZ_CHECK(rc == 0 || rc == -EEXIST || rc == -ENOENT);
	(void)store_join_token_delete(fzs.store, name);
}

/*
 * Stores the fuzz API token as "fuzz-admin" (role admin) and makes the
 * server's token cache forget what it knew, as a revoke does.
 */
static void fzs_install_token(void)
{
	struct store *st = fzs.store;
	struct store_api_token_info info;

	if (store_api_token_create_role(st, "fuzz-admin", fzs_token_hash, "admin", time_now()) ==
	    -EEXIST) {
		(void)store_api_token_delete(st, "fuzz-admin");
		(void)store_api_token_create_role(st, "fuzz-admin", fzs_token_hash, "admin",
						  time_now());
	}
	FUZZ_CHECK(store_api_token_lookup(st, fzs_token_hash, &info) == 0);
	principal_cache_flush(fzs.principals);
}

void fzserver_rearm_auth(void)
{
	struct store_api_token_info info;

	if (store_api_token_lookup(fzs.store, fzs_token_hash, &info) == 0 &&
	    strcmp(info.name, "fuzz-admin") == 0 && strcmp(info.role, "admin") == 0)
		return;
	fzs_install_token();
}

void fzserver_rearm_join(void)
{
	(void)store_cluster_delete(fzs.store, "joinme");
	(void)store_join_token_delete(fzs.store, "joinme");
	fzs_store_token("joinme", FZSERVER_JOIN_SECRET);
}

static int fzs_listen(const struct http_route *routes, size_t n,
		      int (*pre)(struct http_request *), const char *name, struct http_server **out)
{
	struct http_server_config c = {0};

	c.host = FZNET_HOST;
	c.routes = routes;
	c.nroutes = n;
	c.data = &fzs;
	c.name = name;
	c.pre_route = pre;
	c.limits.header_timeout_ms = 1000;
	c.limits.idle_timeout_ms = 1000;
	c.limits.body_timeout_ms = 1000;
	return http_server_start(fzs.loop, &c, out);
}

/* The database lives in a temporary directory for one fuzzing run. */
static void fzs_cleanup(void)
{
	static const char *const files[] = {"lxcm.db", "lxcm.db-wal", "lxcm.db-shm"};
	char path[sizeof(fzs_dir) + 32];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", fzs_dir, files[i]) < (int)sizeof(path))
			(void)unlink(path);
	}
	(void)rmdir(fzs_dir);
}

struct server *fzserver_start(void)
{
	struct server_config *cfg = &fzs.cfg;
	char url[128];

	if (fzs.loop)
		return &fzs;
	log_set_level(LOG_LEVEL_ERROR);
	FUZZ_CHECK(mkdtemp(fzs_dir) != NULL);
	atexit(fzs_cleanup);
	fzs.loop = fznet_loop();
	cfg->data_dir = fzs_dir;
	cfg->heartbeat_interval_s = 60;
	cfg->proxy_header_timeout_ms = 3000;
	cfg->proxy_fin_timeout_ms = 1000; /* a quiet half-closed pipe settles in time; a slow reader on loopback (TCP persist stalls) is not cut */
	FUZZ_CHECK(snprintf(cfg->connector_public, sizeof(cfg->connector_public), "%s",
			    "127.0.0.1:9443") < (int)sizeof(cfg->connector_public));
	FUZZ_CHECK(snprintf(cfg->management_public, sizeof(cfg->management_public), "%s",
			    "https://127.0.0.1:8443") < (int)sizeof(cfg->management_public));
	FUZZ_CHECK(snprintf(fzs.replica, sizeof(fzs.replica), "fuzz") < (int)sizeof(fzs.replica));
	/* The connector's own fingerprint, which goes into join tokens. */
	FUZZ_CHECK(snprintf(fzs.connector_fp, sizeof(fzs.connector_fp), "%s",
			    "b6ff19aabfc89b8364d5f5bd736d58f4ed1077f0bfbed6da6597e58daf28ecfe") ==
		   64);
	FUZZ_CHECK(snprintf(url, sizeof(url), "sqlite:%s/lxcm.db", fzs_dir) < (int)sizeof(url));
	FUZZ_CHECK(store_open(url, &fzs.store) == 0);
	secret_sha256_hex(FZSERVER_API_TOKEN, strlen(FZSERVER_API_TOKEN), fzs_token_hash);
	fzs.principals = principal_cache_new(PRINCIPAL_CACHE_TTL_MS);
	FUZZ_CHECK(fzs.principals != NULL);
	fzs_install_token();
	fzs.join_limit = ratelimit_new(1e9, 1e9);
	tunnel_h2_config_defaults(&fzs.tunnel_cfg);
	fzs.tunnels = tunnels_new(&fzs);
	FUZZ_CHECK(fzs.join_limit != NULL && fzs.tunnels != NULL);
	/* The API token hashes and the tunnels follow the store, as in lxcm-server. */
	FUZZ_CHECK(changes_listen(&fzs) == 0);
	FUZZ_CHECK(fzs_listen(api_routes, api_nroutes, auth_management_pre_route, "management",
			      &fzs.management) == 0);
	FUZZ_CHECK(fzs_listen(connector_routes, connector_nroutes, fzs_connector_pre_route,
			      "connector", &fzs.connector) == 0);
	fzserver_enroll("enrolled", FZSERVER_ENROLLED_FP);
	return &fzs;
}
