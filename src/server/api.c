/*
 * api.c - the management REST API (people): clusters and join tokens.
 *
 * Every handler that touches the store is one row of struct api_op: what
 * it checks on the loop (the {name} parameter, a JSON body read by
 * prepare), the store calls it runs on the store's workers (work), and how
 * it answers in the done callback on the loop (fail for the failures it
 * names itself, handler_store_error for the rest, answer for success).
 * api_start and api_done are the one shape they all share. A request whose
 * client left meanwhile is still finished there (the HTTP layer then just
 * frees it).
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
#include "server/telemetry.h"
#include "common/version.h"
#include "store/store_async.h"

struct api_job;

/* One store-backed endpoint; see the comment at the top. */
struct api_op {
	const char *what; /* names the object in error answers: "cluster" */
	unsigned flags;	  /* API_NAMED, API_BODY */
	/* Reads the body into the job: 0, or -1 when it answered (400, 500). */
	int (*prepare)(struct api_job *j, json_t *body);
	/* The store calls, on a store worker: 0 or a negative errno. */
	int (*work)(struct store *s, struct api_job *j);
	/* 1 when it answered the failure in j->rc itself; NULL: none. */
	int (*fail)(struct api_job *j);
	/* The metadata of the 200 answer; NULL: an empty object. */
	json_t *(*answer)(struct api_job *j);
	/* For a list (answer api_list): its element i of j->n. */
	json_t *(*item)(struct api_job *j, size_t i);
};

#define API_NAMED 1u /* the route's {name}: 404 when it cannot name anything */
#define API_BODY 2u  /* a JSON body, handed to prepare */

struct api_job {
	const struct api_op *op;
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

static struct api_job *api_job_new(struct http_request *req, const struct api_op *op)
{
	struct api_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		http_respond_error(req, 500, "out of memory");
		return NULL;
	}
	j->op = op;
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

/* On a store worker. */
static void api_work(struct store *s, void *arg)
{
	struct api_job *j = arg;

	j->rc = j->op->work(s, j);
}

/* Back on the loop: the answer. */
static void api_done(void *arg)
{
	struct api_job *j = arg;
	const struct api_op *op = j->op;

	if (j->rc < 0) {
		if (op->fail == NULL || !op->fail(j))
			handler_store_error(j->req, j->rc, op->what);
	} else {
		http_respond_json(j->req, 200, op->answer ? op->answer(j) : json_object());
	}
	api_job_free(j);
}

/* Reads the {name} parameter (API_NAMED) and the body (API_BODY): 0, or -1 when answered. */
static int api_read(struct api_job *j)
{
	json_t *body;
	int rc = 0;

	if ((j->op->flags & API_NAMED) &&
	    (http_request_param(j->req, 0, j->name, sizeof(j->name)) != 0 ||
	     !handler_valid_name(j->name))) {
		http_respond_error(j->req, 404, "%s not found", j->op->what);
		return -1;
	}
	if (!(j->op->flags & API_BODY))
		return 0;
	body = handler_parse_body(j->req);
	if (body == NULL)
		return -1;
	rc = j->op->prepare(j, body);
	json_decref(body);
	return rc;
}

/* The one shape of a store-backed handler: read, run op's work, answer. */
static void api_start(struct http_request *req, const struct api_op *op)
{
	struct api_job *j = api_job_new(req, op);

	if (j == NULL)
		return;
	if (api_read(j) != 0) {
		api_job_free(j);
		return;
	}
	if (store_run(j->srv->loop, j->srv->store, api_work, api_done, j) < 0) {
		http_respond_error(req, 503, "the server is busy, try again later");
		api_job_free(j);
	}
}

/* The answer of a list: op->item for each of the j->n rows the work read. */
static json_t *api_list(struct api_job *j)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < j->n; i++)
		json_array_append_new(arr, j->op->item(j, i));
	return arr;
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

static int api_status_work(struct store *s, struct api_job *j)
{
	return store_api_token_count(s, &j->count);
}

static int api_status_fail(struct api_job *j)
{
	http_respond_error(j->req, 503, "the database is unavailable");
	return 1;
}

static json_t *api_status_answer(struct api_job *j)
{
	(void)j;
	return NULL;
}

/* ---- clusters ---- */

static int api_cluster_list_work(struct store *s, struct api_job *j)
{
	return store_cluster_list(s, &j->clusters, &j->n);
}

static json_t *api_cluster_item(struct api_job *j, size_t i)
{
	return cluster_to_json_live(j->srv, &j->clusters[i]);
}

static int api_cluster_get_work(struct store *s, struct api_job *j)
{
	return store_cluster_get(s, j->name, &j->cluster);
}

static json_t *api_cluster_get_answer(struct api_job *j)
{
	return cluster_to_json_live(j->srv, &j->cluster);
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

static int api_cluster_patch_prepare(struct api_job *j, json_t *body)
{
	json_t *desc = json_object_get(body, "description");

	j->upd.disk_threshold = api_threshold(body, "disk_threshold");
	j->upd.memory_threshold = api_threshold(body, "memory_threshold");
	if (desc && !json_is_string(desc)) {
		http_respond_error(j->req, 400, "description must be a string");
	} else if (desc && json_string_length(desc) > 4096) {
		http_respond_error(j->req, 400, "description is longer than 4096 bytes");
	} else if (j->upd.disk_threshold == -2 || j->upd.memory_threshold == -2) {
		http_respond_error(j->req, 400, "thresholds must be integers from 0 to 100");
	} else {
		if (desc)
			j->description = strdup(json_string_value(desc));
		return 0;
	}
	return -1;
}

static int api_cluster_patch_work(struct store *s, struct api_job *j)
{
	j->upd.description = j->description;
	return store_cluster_update(s, j->name, &j->upd);
}

static int api_cluster_delete_work(struct store *s, struct api_job *j)
{
	return store_cluster_delete(s, j->name);
}

static json_t *api_cluster_delete_answer(struct api_job *j)
{
	/* The enrolled set and the tunnels heard of it from the change feed (changes.c). */
	LOG_INFO("cluster %s removed by an operator", j->name);
	return json_object();
}

/* ---- join tokens ---- */

static int api_token_create_work(struct store *s, struct api_job *j)
{
	return store_join_token_create(s, &j->token);
}

static int api_token_create_fail(struct api_job *j)
{
	if (j->rc != -EEXIST)
		return 0;
	http_respond_error(j->req, 409, "%s is already a cluster or already has a join token",
			   j->name);
	return 1;
}

static json_t *api_token_create_answer(struct api_job *j)
{
	LOG_INFO("join token created for cluster %s", j->name);
	return json_pack("{s:s}", "token", j->token_text);
}

/* Builds the MicroCloud-format token and the row that stores its hash. */
static int api_token_encode(struct api_job *j, int64_t expires_at)
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

static int api_token_create_prepare(struct api_job *j, json_t *body)
{
	json_t *name = json_object_get(body, "cluster_name");
	json_t *desc = json_object_get(body, "description");
	json_t *expiry = json_object_get(body, "expiry");
	int64_t expires_at = time_now() + SERVER_DEFAULT_TOKEN_TTL_S;
	const char *err = NULL;

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
		if (api_token_encode(j, expires_at) < 0)
			err = "could not create the token";
	}
	if (err == NULL)
		return 0;
	http_respond_error(j->req, 400, "%s", err);
	return -1;
}

static int api_token_list_work(struct store *s, struct api_job *j)
{
	return store_join_token_list(s, &j->tokens, &j->n);
}

static json_t *api_time(int64_t t)
{
	char buf[64];

	if (time_format_rfc3339(t, buf, sizeof(buf)) != 0)
		return json_null();
	return json_string(buf);
}

static json_t *api_token_item(struct api_job *j, size_t i)
{
	struct store_join_token *t = &j->tokens[i];
	json_t *o = json_object();

	json_object_set_new(o, "cluster_name", json_string(t->cluster_name));
	json_object_set_new(o, "description", json_string(t->description ? t->description : ""));
	json_object_set_new(o, "expiry", api_time(t->expires_at));
	json_object_set_new(o, "created_at", api_time(t->created_at));
	return o;
}

static int api_token_delete_work(struct store *s, struct api_job *j)
{
	return store_join_token_delete(s, j->name);
}

/* ---- API tokens (operators) ---- */

/*
 * The token cache auth.c keeps follows the store's change feed
 * (changes.c): a token made or revoked here counts from the next request,
 * without a poke from these handlers.
 */

static int api_apitoken_list_work(struct store *s, struct api_job *j)
{
	return store_api_token_list(s, &j->api_tokens, &j->n);
}

static json_t *api_apitoken_item(struct api_job *j, size_t i)
{
	const struct store_api_token *t = &j->api_tokens[i];
	char actor[32];

	snprintf(actor, sizeof(actor), "token:%s", t->hash_prefix);
	return json_pack("{s:s,s:o,s:s,s:s}", "name", t->name, "created_at",
			 api_time(t->created_at), "audit_actor", actor, "role", t->role);
}

static int api_apitoken_create_work(struct store *s, struct api_job *j)
{
	return store_api_token_create_role(s, j->name, j->token.secret_hash, j->role, time_now());
}

static int api_apitoken_create_fail(struct api_job *j)
{
	if (j->rc != -EEXIST)
		return 0;
	http_respond_error(j->req, 409, "an API token named %s already exists", j->name);
	return 1;
}

static json_t *api_apitoken_create_answer(struct api_job *j)
{
	LOG_INFO("API token %s created (role %s) by %s", j->name, j->role,
		 principal_of(j->req) ? principal_of(j->req)->name : "?");
	/* The only time the secret is shown. */
	return json_pack("{s:s,s:s}", "name", j->name, "token", j->token_text);
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

/* A new secret, "lxcm_" and 64 hex digits, and the hash the store keeps: 0 or -1. */
static int api_apitoken_secret(struct api_job *j)
{
	char secret[65], hash[65];

	j->token_text = malloc(80);
	if (j->token_text == NULL || secret_random_hex(32, secret, sizeof(secret)) != 0 ||
	    snprintf(j->token_text, 80, "lxcm_%s", secret) >= 80)
		return -1;
	secret_wipe(secret, sizeof(secret));
	secret_sha256_hex(j->token_text, strlen(j->token_text), hash);
	j->token.secret_hash = strdup(hash);
	return 0;
}

static int api_apitoken_create_prepare(struct api_job *j, json_t *body)
{
	json_t *name = json_object_get(body, "name");

	if (!json_is_string(name) || json_string_length(name) >= sizeof(j->name) ||
	    !handler_valid_name(json_string_value(name))) {
		http_respond_error(j->req, 400,
				   "name must be 1 to 63 letters, digits, '.', '_' or '-'");
		return -1;
	}
	memcpy(j->name, json_string_value(name), json_string_length(name) + 1);
	if (api_apitoken_role(body, j->role, sizeof(j->role)) != 0) {
		http_respond_error(j->req, 400, "role must be admin, operator or viewer");
		return -1;
	}
	if (api_apitoken_secret(j) != 0) {
		http_respond_error(j->req, 500, "could not make a token");
		return -1;
	}
	return 0;
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

static int api_apitoken_delete_work(struct store *s, struct api_job *j)
{
	int in_file = api_admin_file_holds(s, j->srv->cfg.data_dir, j->name);
	int rc = store_api_token_delete(s, j->name);

	/* A revoked admin token is not left lying around in admin.token. */
	if (rc == 0 && in_file) {
		char path[4200];

		if (snprintf(path, sizeof(path), "%s/admin.token", j->srv->cfg.data_dir) <
			(int)sizeof(path) &&
		    unlink(path) == 0)
			j->count = 1;
	}
	return rc;
}

static int api_apitoken_delete_fail(struct api_job *j)
{
	if (j->rc != -EBUSY)
		return 0;
	http_respond_error(j->req, 409,
			   "%s is the last API token with the admin role; create another "
			   "admin token first",
			   j->name);
	return 1;
}

static json_t *api_apitoken_delete_answer(struct api_job *j)
{
	LOG_INFO("API token %s revoked%s", j->name,
		 j->count == 1 ? "; removed admin.token, which held it" : "");
	return json_object();
}

/* ---- the table ---- */

/* A row of api_ops and the index of its route in api_routes. */
enum {
	API_STATUS,
	API_CLUSTER_LIST,
	API_CLUSTER_GET,
	API_CLUSTER_PATCH,
	API_CLUSTER_DELETE,
	API_TOKEN_CREATE,
	API_TOKEN_LIST,
	API_TOKEN_DELETE,
	API_APITOKEN_LIST,
	API_APITOKEN_CREATE,
	API_APITOKEN_DELETE,
	API_NSTORE, /* the routes from here on have handlers of their own */
	API_ROOT = API_NSTORE,
	API_OIDC_LOGIN,
	API_OIDC_CALLBACK,
	API_OIDC_LOGOUT,
	API_SESSIONS,
	API_SESSION_DELETE,
	API_IDENTITIES,
	API_METRICS,
	API_AUDIT,
	API_TUNNEL,
};

/* what, flags, prepare, work, fail, answer, item */
static const struct api_op api_ops[] = {
	[API_STATUS] = {"status", 0, NULL, api_status_work, api_status_fail, api_status_answer,
			NULL},
	[API_CLUSTER_LIST] = {"clusters", 0, NULL, api_cluster_list_work, NULL, api_list,
			      api_cluster_item},
	[API_CLUSTER_GET] = {"cluster", API_NAMED, NULL, api_cluster_get_work, NULL,
			     api_cluster_get_answer, NULL},
	[API_CLUSTER_PATCH] = {"cluster", API_NAMED | API_BODY, api_cluster_patch_prepare,
			       api_cluster_patch_work, NULL, NULL, NULL},
	[API_CLUSTER_DELETE] = {"cluster", API_NAMED, NULL, api_cluster_delete_work, NULL,
				api_cluster_delete_answer, NULL},
	[API_TOKEN_CREATE] = {"join token", API_BODY, api_token_create_prepare,
			      api_token_create_work, api_token_create_fail,
			      api_token_create_answer, NULL},
	[API_TOKEN_LIST] = {"join tokens", 0, NULL, api_token_list_work, NULL, api_list,
			    api_token_item},
	[API_TOKEN_DELETE] = {"join token", API_NAMED, NULL, api_token_delete_work, NULL, NULL,
			      NULL},
	[API_APITOKEN_LIST] = {"API tokens", 0, NULL, api_apitoken_list_work, NULL, api_list,
			       api_apitoken_item},
	[API_APITOKEN_CREATE] = {"API token", API_BODY, api_apitoken_create_prepare,
				 api_apitoken_create_work, api_apitoken_create_fail,
				 api_apitoken_create_answer, NULL},
	[API_APITOKEN_DELETE] = {"API token", API_NAMED, NULL, api_apitoken_delete_work,
				 api_apitoken_delete_fail, api_apitoken_delete_answer, NULL},
};

/*
 * The handler of every row above: the route's index in api_routes (the
 * same enum) picks its row.
 */
static void api_handle(struct http_request *req)
{
	api_start(req, &api_ops[req->route - api_routes]);
}

/* Each route's access level (principal.h): reading needs a viewer, changing the manager an admin. */
const struct http_route api_routes[] = {
	[API_APITOKEN_LIST] = {"GET", "/1.0/auth/tokens", api_handle, ROUTE_VIEWER, 0},
	[API_APITOKEN_CREATE] = {"POST", "/1.0/auth/tokens", api_handle, ROUTE_ADMIN, 0},
	[API_APITOKEN_DELETE] = {"DELETE", "/1.0/auth/tokens/{name}", api_handle, ROUTE_ADMIN, 0},
	[API_ROOT] = {"GET", "/1.0", api_get_root, ROUTE_PUBLIC, 0},
	[API_STATUS] = {"GET", "/1.0/status", api_handle, ROUTE_PUBLIC, 0},
	[API_CLUSTER_LIST] = {"GET", "/1.0/remote-cluster", api_handle, ROUTE_VIEWER, 0},
	[API_CLUSTER_GET] = {"GET", "/1.0/remote-cluster/{name}", api_handle, ROUTE_VIEWER, 0},
	[API_CLUSTER_PATCH] = {"PATCH", "/1.0/remote-cluster/{name}", api_handle, ROUTE_ADMIN, 0},
	[API_CLUSTER_DELETE] = {"DELETE", "/1.0/remote-cluster/{name}", api_handle, ROUTE_ADMIN,
				0},
	[API_TOKEN_CREATE] = {"POST", "/1.0/remote-cluster-join-token", api_handle, ROUTE_ADMIN,
			      0},
	[API_TOKEN_LIST] = {"GET", "/1.0/remote-cluster-join-token", api_handle, ROUTE_VIEWER, 0},
	[API_TOKEN_DELETE] = {"DELETE", "/1.0/remote-cluster-join-token/{name}", api_handle,
			      ROUTE_ADMIN, 0},
	[API_OIDC_LOGIN] = {"GET", "/oidc/login", oidc_login, ROUTE_PUBLIC, 0},
	[API_OIDC_CALLBACK] = {"GET", "/oidc/callback", oidc_callback, ROUTE_PUBLIC, 0},
	[API_OIDC_LOGOUT] = {"POST", "/oidc/logout", oidc_logout, ROUTE_PUBLIC, 0},
	[API_SESSIONS] = {"GET", "/1.0/auth/sessions", api_auth_sessions, ROUTE_VIEWER, 0},
	[API_SESSION_DELETE] = {"DELETE", "/1.0/auth/sessions/{id}", api_auth_session_delete,
				ROUTE_VIEWER, 0},
	[API_IDENTITIES] = {"GET", "/1.0/auth/identities", api_auth_identities, ROUTE_ADMIN, 0},
	[API_METRICS] = {"GET", "/1.0/metrics", telemetry_respond, ROUTE_OPERATOR, 0},
	[API_AUDIT] = {"GET", "/1.0/audit", api_audit_get, ROUTE_VIEWER, 0},
	[API_TUNNEL] = {NULL, "/1.0/remote-cluster/{name}/tunnel/{*}", proxy_handle,
			HTTP_ROUTE_STREAM_BODY | HTTP_ROUTE_UPGRADE | ROUTE_TUNNEL, 0},
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
