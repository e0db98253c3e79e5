/*
 * api.c - the management REST API (people): clusters and join tokens.
 *
 * Every handler that touches the store follows one shape: validate the
 * request on the loop, fill a struct api_job, run the store calls on the
 * thread pool (store_run), and answer in the done callback on the loop.
 * A request whose client left meanwhile is still finished there (the HTTP
 * layer then just frees it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/jointoken.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "server/oidc.h"
#include "server/principal.h"
#include "server/server.h"
#include "common/version.h"
#include "store/store_async.h"

struct api_job {
	struct http_request *req;
	struct server *srv;
	char name[64];
	int rc;
	struct store_cluster cluster;
	struct store_cluster *clusters;
	struct store_join_token token;
	struct store_join_token *tokens;
	struct store_api_token *api_tokens;
	char role[16]; /* of a new API token */
	size_t n;
	struct store_cluster_update upd;
	char *description;
	char *token_text; /* the encoded join token, answered once stored */
	int64_t count;
};

static struct api_job *api_job_new(struct http_request *req)
{
	struct api_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		http_respond_error(req, 500, "out of memory");
		return NULL;
	}
	j->req = req;
	j->srv = req->server_data;
	j->upd.disk_threshold = -1;
	j->upd.memory_threshold = -1;
	return j;
}

static void api_job_free(struct api_job *j)
{
	store_cluster_clear(&j->cluster);
	store_cluster_list_free(j->clusters, j->n);
	store_join_token_clear(&j->token);
	if (j->tokens)
		store_join_token_list_free(j->tokens, j->n);
	if (j->api_tokens)
		store_api_token_list_free(j->api_tokens, j->n);
	free(j->description);
	if (j->token_text) {
		secret_wipe(j->token_text, strlen(j->token_text));
		free(j->token_text);
	}
	free(j);
}

static void api_submit(struct api_job *j, store_work_fn work, store_done_fn done)
{
	int rc = store_run(j->srv->loop, j->srv->store, work, done, j);

	if (rc < 0) {
		http_respond_error(j->req, 503, "the server is busy, try again later");
		api_job_free(j);
	}
}

/* The {name} parameter, or a 404 answer when it cannot name anything. */
static struct api_job *api_job_with_name(struct http_request *req, const char *what)
{
	struct api_job *j = api_job_new(req);

	if (j == NULL)
		return NULL;
	if (http_request_param(req, 0, j->name, sizeof(j->name)) != 0 ||
	    !handler_valid_name(j->name)) {
		http_respond_error(req, 404, "%s not found", what);
		api_job_free(j);
		return NULL;
	}
	return j;
}

/* ---- GET /1.0 and /1.0/status ---- */

static void api_get_root(struct http_request *req)
{
	struct server *srv = req->server_data;
	int trusted = principal_of(req) != NULL; /* a public route: set only for a valid token */
	json_t *m = json_object();

	json_object_set_new(m, "api_extensions", json_array());
	json_object_set_new(m, "api_status", json_string("stable"));
	json_object_set_new(m, "api_version", json_string("1.0"));
	json_object_set_new(m, "auth", json_string(trusted ? "trusted" : "untrusted"));
	json_object_set_new(m, "auth_methods", json_pack("[s]", "bearer"));
	api_auth_describe(req, m); /* who the caller is (api_auth.c) */
	if (trusted) {
		json_object_set_new(
			m, "environment",
			json_pack("{s:s,s:s,s:s,s:s}", "server", "lxcm", "server_version",
				  lxcm_version(), "connector_address", srv->cfg.connector_public,
				  "connector_fingerprint", srv->connector_fp));
	}
	http_respond_json(req, 200, m);
}

static void api_status_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->rc = store_api_token_count(s, &j->count);
}

static void api_status_done(void *arg)
{
	struct api_job *j = arg;

	if (j->rc < 0)
		http_respond_error(j->req, 503, "the database is unavailable");
	else
		http_respond_json(j->req, 200, NULL);
	api_job_free(j);
}

static void api_get_status(struct http_request *req)
{
	struct api_job *j = api_job_new(req);

	if (j)
		api_submit(j, api_status_work, api_status_done);
}

/* ---- clusters ---- */

static void api_cluster_list_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->rc = store_cluster_list(s, &j->clusters, &j->n);
}

static void api_cluster_list_done(void *arg)
{
	struct api_job *j = arg;
	json_t *arr;
	size_t i;

	if (j->rc < 0) {
		handler_store_error(j->req, j->rc, "clusters");
	} else {
		arr = json_array();
		for (i = 0; i < j->n; i++)
			json_array_append_new(arr, cluster_to_json_live(j->srv, &j->clusters[i]));
		http_respond_json(j->req, 200, arr);
	}
	api_job_free(j);
}

static void api_cluster_list(struct http_request *req)
{
	struct api_job *j = api_job_new(req);

	if (j)
		api_submit(j, api_cluster_list_work, api_cluster_list_done);
}

static void api_cluster_get_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->rc = store_cluster_get(s, j->name, &j->cluster);
}

static void api_cluster_get_done(void *arg)
{
	struct api_job *j = arg;

	if (j->rc < 0)
		handler_store_error(j->req, j->rc, "cluster");
	else
		http_respond_json(j->req, 200, cluster_to_json_live(j->srv, &j->cluster));
	api_job_free(j);
}

static void api_cluster_get(struct http_request *req)
{
	struct api_job *j = api_job_with_name(req, "cluster");

	if (j)
		api_submit(j, api_cluster_get_work, api_cluster_get_done);
}

static void api_cluster_patch_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->upd.description = j->description;
	j->rc = store_cluster_update(s, j->name, &j->upd);
}

static void api_empty_done(void *arg)
{
	struct api_job *j = arg;

	if (j->rc < 0)
		handler_store_error(j->req, j->rc, "cluster");
	else
		http_respond_json(j->req, 200, json_object());
	api_job_free(j);
}

/* Reads an optional threshold: -1 when absent, -2 when invalid. */
static int api_threshold(json_t *body, const char *key)
{
	json_t *v = json_object_get(body, key);

	if (v == NULL)
		return -1;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100)
		return -2;
	return (int)json_integer_value(v);
}

static void api_cluster_patch(struct http_request *req)
{
	struct api_job *j = api_job_with_name(req, "cluster");
	json_t *body, *desc;

	if (j == NULL)
		return;
	body = handler_parse_body(req);
	if (body == NULL) {
		api_job_free(j);
		return;
	}
	desc = json_object_get(body, "description");
	j->upd.disk_threshold = api_threshold(body, "disk_threshold");
	j->upd.memory_threshold = api_threshold(body, "memory_threshold");
	if (desc && !json_is_string(desc)) {
		http_respond_error(req, 400, "description must be a string");
	} else if (desc && json_string_length(desc) > 4096) {
		http_respond_error(req, 400, "description is longer than 4096 bytes");
	} else if (j->upd.disk_threshold == -2 || j->upd.memory_threshold == -2) {
		http_respond_error(req, 400, "thresholds must be integers from 0 to 100");
	} else {
		if (desc)
			j->description = strdup(json_string_value(desc));
		json_decref(body);
		api_submit(j, api_cluster_patch_work, api_empty_done);
		return;
	}
	json_decref(body);
	api_job_free(j);
}

static void api_cluster_delete_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->rc = store_cluster_delete(s, j->name);
}

static void api_cluster_delete_done(void *arg)
{
	struct api_job *j = arg;

	/* The enrolled set and the tunnels heard of it from the change feed (changes.c). */
	if (j->rc == 0)
		LOG_INFO("cluster %s removed by an operator", j->name);
	api_empty_done(j);
}

static void api_cluster_delete(struct http_request *req)
{
	struct api_job *j = api_job_with_name(req, "cluster");

	if (j)
		api_submit(j, api_cluster_delete_work, api_cluster_delete_done);
}

/* ---- join tokens ---- */

static void api_token_create_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->rc = store_join_token_create(s, &j->token);
}

static void api_token_create_done(void *arg)
{
	struct api_job *j = arg;

	if (j->rc == -EEXIST) {
		http_respond_error(j->req, 409,
				   "%s is already a cluster or already has a join token", j->name);
	} else if (j->rc < 0) {
		handler_store_error(j->req, j->rc, "join token");
	} else {
		LOG_INFO("join token created for cluster %s", j->name);
		http_respond_json(j->req, 200, json_pack("{s:s}", "token", j->token_text));
	}
	api_job_free(j);
}

/* Builds the MicroCloud-format token and the row that stores its hash. */
static int api_token_prepare(struct api_job *j, int64_t expires_at)
{
	struct join_token t = {0};
	char secret[65], hash[65];
	char *addr = j->srv->cfg.connector_public;
	int rc;

	rc = secret_random_hex(32, secret, sizeof(secret));
	if (rc < 0)
		return rc;
	secret_sha256_hex(secret, 64, hash);
	t.server_name = j->name;
	t.fingerprint = j->srv->connector_fp;
	t.addresses = &addr;
	t.naddresses = 1;
	t.secret = secret;
	t.expires_at = expires_at;
	rc = join_token_encode(&t, &j->token_text);
	secret_wipe(secret, sizeof(secret));
	if (rc < 0)
		return rc;
	j->token.cluster_name = strdup(j->name);
	j->token.description = strdup(j->description ? j->description : "");
	j->token.secret_hash = strdup(hash);
	j->token.expires_at = expires_at;
	j->token.created_at = time_now();
	if (!j->token.cluster_name || !j->token.description || !j->token.secret_hash)
		return -ENOMEM;
	return 0;
}

static void api_token_create(struct http_request *req)
{
	struct api_job *j = api_job_new(req);
	json_t *body, *name, *desc, *expiry;
	int64_t expires_at = time_now() + SERVER_DEFAULT_TOKEN_TTL_S;
	const char *err = NULL;

	if (j == NULL)
		return;
	body = handler_parse_body(req);
	if (body == NULL) {
		api_job_free(j);
		return;
	}
	name = json_object_get(body, "cluster_name");
	desc = json_object_get(body, "description");
	expiry = json_object_get(body, "expiry");
	if (!json_is_string(name) || json_string_length(name) == 0)
		err = "cluster_name is required";
	else if (json_string_length(name) >= sizeof(j->name) ||
		 !handler_valid_name(json_string_value(name)))
		err = "cluster_name must be 1 to 63 letters, digits, '.', '_' or '-'";
	else if (desc && !json_is_null(desc) && !json_is_string(desc))
		err = "description must be a string";
	else if (json_is_string(desc) && json_string_length(desc) > 4096)
		err = "description is longer than 4096 bytes";
	else if (expiry && !json_is_null(expiry) &&
		 (!json_is_string(expiry) ||
		  time_parse_rfc3339(json_string_value(expiry), json_string_length(expiry),
				     &expires_at) != 0))
		err = "expiry must be an RFC 3339 time";
	else if (expires_at <= time_now())
		err = "expiry is in the past";
	if (err == NULL) {
		memcpy(j->name, json_string_value(name), json_string_length(name) + 1);
		if (json_is_string(desc))
			j->description = strdup(json_string_value(desc));
		if (api_token_prepare(j, expires_at) < 0)
			err = "could not create the token";
	}
	json_decref(body);
	if (err) {
		http_respond_error(req, 400, "%s", err);
		api_job_free(j);
		return;
	}
	api_submit(j, api_token_create_work, api_token_create_done);
}

static void api_token_list_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->rc = store_join_token_list(s, &j->tokens, &j->n);
}

static json_t *api_time(int64_t t)
{
	char buf[64];

	if (time_format_rfc3339(t, buf, sizeof(buf)) != 0)
		return json_null();
	return json_string(buf);
}

static void api_token_list_done(void *arg)
{
	struct api_job *j = arg;
	json_t *arr;
	size_t i;

	if (j->rc < 0) {
		handler_store_error(j->req, j->rc, "join tokens");
	} else {
		arr = json_array();
		for (i = 0; i < j->n; i++) {
			struct store_join_token *t = &j->tokens[i];
			json_t *o = json_object();

			json_object_set_new(o, "cluster_name", json_string(t->cluster_name));
			json_object_set_new(o, "description",
					    json_string(t->description ? t->description : ""));
			json_object_set_new(o, "expiry", api_time(t->expires_at));
			json_object_set_new(o, "created_at", api_time(t->created_at));
			json_array_append_new(arr, o);
		}
		http_respond_json(j->req, 200, arr);
	}
	api_job_free(j);
}

static void api_token_list(struct http_request *req)
{
	struct api_job *j = api_job_new(req);

	if (j)
		api_submit(j, api_token_list_work, api_token_list_done);
}

static void api_token_delete_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->rc = store_join_token_delete(s, j->name);
}

static void api_token_delete_done(void *arg)
{
	struct api_job *j = arg;

	if (j->rc < 0)
		handler_store_error(j->req, j->rc, "join token");
	else
		http_respond_json(j->req, 200, json_object());
	api_job_free(j);
}

static void api_token_delete(struct http_request *req)
{
	struct api_job *j = api_job_with_name(req, "join token");

	if (j)
		api_submit(j, api_token_delete_work, api_token_delete_done);
}

/* ---- API tokens (operators) ---- */

/*
 * The token cache auth.c keeps follows the store's change feed
 * (changes.c): a token made or revoked here counts from the next request,
 * without a poke from these handlers.
 */

static void api_apitoken_list_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->rc = store_api_token_list(s, &j->api_tokens, &j->n);
}

static void api_apitoken_list_done(void *arg)
{
	struct api_job *j = arg;
	json_t *arr;
	size_t i;

	if (j->rc < 0) {
		handler_store_error(j->req, j->rc, "API tokens");
	} else {
		arr = json_array();
		for (i = 0; i < j->n; i++) {
			char actor[32];

			snprintf(actor, sizeof(actor), "token:%s", j->api_tokens[i].hash_prefix);
			json_array_append_new(arr, json_pack("{s:s,s:o,s:s,s:s}", "name",
							     j->api_tokens[i].name, "created_at",
							     api_time(j->api_tokens[i].created_at),
							     "audit_actor", actor, "role",
							     j->api_tokens[i].role));
		}
		http_respond_json(j->req, 200, arr);
	}
	api_job_free(j);
}

static void api_apitoken_list(struct http_request *req)
{
	struct api_job *j = api_job_new(req);

	if (j)
		api_submit(j, api_apitoken_list_work, api_apitoken_list_done);
}

static void api_apitoken_create_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->rc = store_api_token_create_role(s, j->name, j->token.secret_hash, j->role,
					     time_now());
}

static void api_apitoken_create_done(void *arg)
{
	struct api_job *j = arg;

	if (j->rc == -EEXIST) {
		http_respond_error(j->req, 409, "an API token named %s already exists", j->name);
	} else if (j->rc < 0) {
		handler_store_error(j->req, j->rc, "API token");
	} else {
		LOG_INFO("API token %s created (role %s) by %s", j->name, j->role,
			 principal_of(j->req) ? principal_of(j->req)->name : "?");
		/* The only time the secret is shown. */
		http_respond_json(j->req, 200,
				  json_pack("{s:s,s:s}", "name", j->name, "token", j->token_text));
	}
	api_job_free(j);
}

/* The "role" of a new token: absent or null means admin (as before roles). 0 or -EINVAL. */
static int api_apitoken_role(json_t *body, char *out, size_t outlen)
{
	json_t *v = json_object_get(body, "role");
	struct slice role = json_is_string(v) ? slice_make(json_string_value(v),
							    json_string_length(v))
					      : LIT("admin");

	if (v != NULL && !json_is_null(v) && !json_is_string(v))
		return -EINVAL;
	if (principal_role_parse(role) == PRINCIPAL_ROLE_NONE || role.len >= outlen)
		return -EINVAL;
	memcpy(out, role.base, role.len);
	out[role.len] = '\0';
	return 0;
}

static void api_apitoken_create(struct http_request *req)
{
	struct api_job *j = api_job_new(req);
	char secret[65], hash[65];
	json_t *body, *name;

	if (j == NULL)
		return;
	body = handler_parse_body(req);
	if (body == NULL) {
		api_job_free(j);
		return;
	}
	name = json_object_get(body, "name");
	if (!json_is_string(name) || json_string_length(name) >= sizeof(j->name) ||
	    !handler_valid_name(json_string_value(name))) {
		json_decref(body);
		http_respond_error(req, 400, "name must be 1 to 63 letters, digits, '.', '_' or '-'");
		api_job_free(j);
		return;
	}
	memcpy(j->name, json_string_value(name), json_string_length(name) + 1);
	if (api_apitoken_role(body, j->role, sizeof(j->role)) != 0) {
		json_decref(body);
		http_respond_error(req, 400, "role must be admin, operator or viewer");
		api_job_free(j);
		return;
	}
	json_decref(body);
	j->token_text = malloc(80);
	if (j->token_text == NULL || secret_random_hex(32, secret, sizeof(secret)) != 0 ||
	    snprintf(j->token_text, 80, "lxcm_%s", secret) >= 80) {
		http_respond_error(req, 500, "could not make a token");
		api_job_free(j);
		return;
	}
	secret_wipe(secret, sizeof(secret));
	secret_sha256_hex(j->token_text, strlen(j->token_text), hash);
	j->token.secret_hash = strdup(hash);
	api_submit(j, api_apitoken_create_work, api_apitoken_create_done);
}

/* 1 when DATA_DIR/admin.token holds the secret of the API token called name. */
static int api_admin_file_holds(struct store *s, const char *dir, const char *name)
{
	char hash[65], *owner = NULL;
	int found, same;

	if (auth_admin_file_hash(dir, hash) != 0)
		return 0;
	found = store_api_token_check(s, hash, &owner) == 0;
	same = found && owner && strcmp(owner, name) == 0; /* compares names */
	free(owner);
	return same;
}

static void api_apitoken_delete_work(struct store *s, void *arg)
{
	struct api_job *j = arg;
	int in_file = api_admin_file_holds(s, j->srv->cfg.data_dir, j->name);

	j->rc = store_api_token_delete(s, j->name);
	/* A revoked admin token is not left lying around in admin.token. */
	if (j->rc == 0 && in_file) {
		char path[4200];

		if (snprintf(path, sizeof(path), "%s/admin.token", j->srv->cfg.data_dir) <
			(int)sizeof(path) &&
		    unlink(path) == 0)
			j->count = 1;
	}
}

static void api_apitoken_delete_done(void *arg)
{
	struct api_job *j = arg;

	if (j->rc == -EBUSY) {
		http_respond_error(j->req, 409,
				   "%s is the last API token with the admin role; create another "
				   "admin token first",
				   j->name);
	} else if (j->rc < 0) {
		handler_store_error(j->req, j->rc, "API token");
	} else {
		LOG_INFO("API token %s revoked%s", j->name,
			 j->count == 1 ? "; removed admin.token, which held it" : "");
		http_respond_json(j->req, 200, json_object());
	}
	api_job_free(j);
}

static void api_apitoken_delete(struct http_request *req)
{
	struct api_job *j = api_job_with_name(req, "API token");

	if (j)
		api_submit(j, api_apitoken_delete_work, api_apitoken_delete_done);
}

/* Each route's access level (principal.h): reading needs a viewer, changing the manager an admin. */
const struct http_route api_routes[] = {
	{"GET", "/1.0/auth/tokens", api_apitoken_list, ROUTE_VIEWER, 0},
	{"POST", "/1.0/auth/tokens", api_apitoken_create, ROUTE_ADMIN, 0},
	{"DELETE", "/1.0/auth/tokens/{name}", api_apitoken_delete, ROUTE_ADMIN, 0},
	{"GET", "/1.0", api_get_root, ROUTE_PUBLIC, 0},
	{"GET", "/oidc/login", oidc_login, ROUTE_PUBLIC, 0},
	{"GET", "/oidc/callback", oidc_callback, ROUTE_PUBLIC, 0},
	{"POST", "/oidc/logout", oidc_logout, ROUTE_PUBLIC, 0},
	{"GET", "/1.0/auth/sessions", api_auth_sessions, ROUTE_VIEWER, 0},
	{"DELETE", "/1.0/auth/sessions/{id}", api_auth_session_delete, ROUTE_VIEWER, 0},
	{"GET", "/1.0/auth/identities", api_auth_identities, ROUTE_ADMIN, 0},
	{"GET", "/1.0/status", api_get_status, ROUTE_PUBLIC, 0},
	{"GET", "/1.0/remote-cluster", api_cluster_list, ROUTE_VIEWER, 0},
	{"GET", "/1.0/remote-cluster/{name}", api_cluster_get, ROUTE_VIEWER, 0},
	{"PATCH", "/1.0/remote-cluster/{name}", api_cluster_patch, ROUTE_ADMIN, 0},
	{"DELETE", "/1.0/remote-cluster/{name}", api_cluster_delete, ROUTE_ADMIN, 0},
	{"POST", "/1.0/remote-cluster-join-token", api_token_create, ROUTE_ADMIN, 0},
	{"GET", "/1.0/remote-cluster-join-token", api_token_list, ROUTE_VIEWER, 0},
	{"DELETE", "/1.0/remote-cluster-join-token/{name}", api_token_delete, ROUTE_ADMIN, 0},
	{NULL, "/1.0/remote-cluster/{name}/tunnel/{*}", proxy_handle,
	 HTTP_ROUTE_STREAM_BODY | HTTP_ROUTE_UPGRADE | ROUTE_TUNNEL, 0},
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
