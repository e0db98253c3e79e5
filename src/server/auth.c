/*
 * auth.c - who may use the management API.
 *
 * Operators present `Authorization: Bearer <API token>`. Only SHA-256
 * hashes of API tokens are stored; the hashes are loaded at start into
 * struct server, kept up to date by the store's change feed
 * (auth_on_change) and compared in constant time, so checking a request
 * needs no database round trip. `GET /1.0` and `GET /1.0/status` are public (the
 * first says whether the caller is trusted, like LXD).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "net/http_hdr.h"
#include "server/server.h"
#include "store/store_feed.h"

int auth_request_trusted(struct server *srv, const struct http_request *req)
{
	struct slice tok = http_hdr_bearer(http_request_header(req, LIT("Authorization")));
	char hash[65];
	size_t i;
	int ok = 0;

	if (tok.base == NULL)
		return 0;
	secret_sha256_hex(tok.base, tok.len, hash);
	/* Check every entry so timing does not tell which one matched. */
	for (i = 0; i < srv->napi_tokens; i++)
		ok |= secret_equal(hash, 64, srv->api_token_hashes[i], 64);
	return ok;
}

/*
 * A token created or revoked by any code path counts from the next request:
 * the feed delivers the change before the answer to the call that made it.
 * Idempotent, so a change already in the loaded set does no harm.
 */
void auth_on_change(const struct store_change *c, void *data)
{
	struct server *srv = data;
	size_t i, last;

	if (c->key == NULL || strlen(c->key) != 64)
		return;
	for (i = 0; i < srv->napi_tokens; i++)
		if (secret_equal(srv->api_token_hashes[i], 64, c->key, 64))
			break;
	if (c->kind == STORE_CHANGE_API_TOKEN_CREATED && i == srv->napi_tokens) {
		if (i == SERVER_MAX_API_TOKENS) {
			LOG_ERROR("more than %d API tokens: %s is not usable until a restart",
				  SERVER_MAX_API_TOKENS, c->name);
			return;
		}
		memcpy(srv->api_token_hashes[srv->napi_tokens++], c->key, 65);
	} else if (c->kind == STORE_CHANGE_API_TOKEN_REVOKED && i < srv->napi_tokens) {
		last = --srv->napi_tokens;
		memcpy(srv->api_token_hashes[i], srv->api_token_hashes[last], 65);
		secret_wipe(srv->api_token_hashes[last], 65);
	}
}

static int auth_is_public(const struct http_request *req)
{
	return slice_eq(req->method, LIT("GET")) &&
	       (slice_eq(req->path, LIT("/1.0")) || slice_eq(req->path, LIT("/1.0/status")));
}

int auth_management_pre_route(struct http_request *req)
{
	struct server *srv = req->server_data;

	if (auth_is_public(req) || auth_request_trusted(srv, req))
		return 0;
	if (http_request_header(req, LIT("Authorization")).base == NULL)
		http_respond_error(req, 401, "authentication required: send Authorization: Bearer <API token>");
	else
		http_respond_error(req, 403, "invalid API token");
	return -1;
}

/*
 * On first start (no API token in the store) makes the admin token, stores
 * its hash and writes it to DATA_DIR/admin.token (0600). Then loads every
 * token hash for request checks. Runs before the loop starts.
 */
int auth_bootstrap(struct server *srv)
{
	char token[80], secret[65], hash[65], path[4200];
	int64_t count = 0;
	int rc;

	rc = store_api_token_count(srv->store, &count);
	if (rc < 0)
		return rc;
	if (snprintf(path, sizeof(path), "%s/admin.token", srv->cfg.data_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (count == 0) {
		rc = secret_random_hex(32, secret, sizeof(secret));
		if (rc < 0)
			return rc;
		if (snprintf(token, sizeof(token), "lxcm_%s", secret) >= (int)sizeof(token))
			return -ENOSPC;
		secret_sha256_hex(token, strlen(token), hash);
		rc = fs_write_file(path, token, strlen(token), 0600);
		if (rc == 0)
			rc = store_api_token_create(srv->store, "admin", hash, time_now());
		secret_wipe(token, sizeof(token));
		secret_wipe(secret, sizeof(secret));
		if (rc < 0)
			return rc;
		LOG_INFO("created the admin API token in %s (mode 0600)", path);
	} else {
		LOG_INFO("admin API token: %s", path);
	}
	return store_api_token_hashes(srv->store, srv->api_token_hashes,
						 SERVER_MAX_API_TOKENS, &srv->napi_tokens);
}
