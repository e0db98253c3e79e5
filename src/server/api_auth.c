/*
 * api_auth.c - who the caller is (GET /1.0), people's sessions
 * (GET /1.0/auth/sessions, DELETE /1.0/auth/sessions/{id}) and the people
 * seen (GET /1.0/auth/identities, admin). See docs/security.md, "Sessions".
 *
 * Sessions: a person sees and revokes their own; an admin (a session or an
 * API token with the admin role) sees everyone's (?user= narrows them to
 * one email or subject) and revokes any.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timefmt.h"
#include "server/oidc.h"
#include "server/server.h"
#include "store/store_async.h"
#include "store/store_session.h"

#define API_AUTH_USER_MAX 256 /* the ?user= filter */

static json_t *api_auth_time(int64_t t)
{
	char text[TIME_RFC3339_LEN];

	return time_format_rfc3339(t, text, sizeof(text)) == 0 ? json_string(text) : json_null();
}

static json_t *api_auth_groups(const char *text)
{
	json_t *g = text ? json_loads(text, 0, NULL) : NULL;

	if (!json_is_array(g)) {
		json_decref(g);
		g = json_array();
	}
	return g;
}

void api_auth_describe(struct http_request *req, json_t *m)
{
	const struct principal *p = principal_of(req);
	int session = p != NULL && p->kind == PRINCIPAL_USER_SESSION;

	json_object_set_new(m, "auth_methods",
			    ((struct server *)req->server_data)->oidc
				? json_pack("[s,s]", "bearer", "oidc")
				: json_pack("[s]", "bearer"));
	if (p == NULL || p->kind == PRINCIPAL_CLUSTER_CERT)
		return;
	json_object_set_new(m, "auth_user_name", json_string(session ? p->user : p->name));
	json_object_set_new(m, "auth_user_method", json_string(session ? "oidc" : "token"));
	json_object_set_new(m, "role", json_string(principal_role_name(p->role)));
	if (!session)
		return;
	json_object_set_new(m, "groups", api_auth_groups(p->groups));
	json_object_set_new(m, "expires_at", api_auth_time(p->expires_at));
	json_object_set_new(m, "session_id", json_string(p->session_id));
}

/* ---- jobs ---- */

struct api_auth_job {
	struct http_request *req;
	char issuer[OIDC_URL_MAX]; /* "" for everyone's */
	char subject[PRINCIPAL_SUBJECT_MAX];
	char user[API_AUTH_USER_MAX]; /* ?user= */
	char id[STORE_SESSION_ID_LEN + 1];
	struct store_session *sessions;
	struct store_identity *ids;
	size_t n;
	int rc;
};

/* A job for req; with own set, narrowed to the caller's own sessions unless an admin. */
static struct api_auth_job *api_auth_job_new(struct http_request *req, int own)
{
	struct server *srv = req->server_data;
	const struct principal *p = principal_of(req);
	struct api_auth_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		http_respond_error(req, 500, "out of memory");
		return NULL;
	}
	j->req = req;
	if (own && p != NULL && p->role < PRINCIPAL_ROLE_ADMIN) {
		if (p->kind != PRINCIPAL_USER_SESSION) {
			http_respond_error(req, 403, "only people (OIDC sessions) and admins have "
						     "sessions to manage");
			free(j);
			return NULL;
		}
		snprintf(j->issuer, sizeof(j->issuer), "%s", srv->cfg.oidc.issuer);
		snprintf(j->subject, sizeof(j->subject), "%s", p->subject);
	}
	return j;
}

static void api_auth_job_free(struct api_auth_job *j)
{
	store_session_list_free(j->sessions, j->sessions ? j->n : 0);
	store_identity_list_free(j->ids, j->ids ? j->n : 0);
	free(j);
}

static void api_auth_submit(struct api_auth_job *j, store_work_fn work, store_done_fn done)
{
	struct server *srv = j->req->server_data;

	if (store_run(srv->loop, srv->store, work, done, j) < 0) {
		http_respond_error(j->req, 503, "the server is busy, try again later");
		api_auth_job_free(j);
	}
}

/* ---- GET /1.0/auth/sessions ---- */

static void api_auth_sessions_work(struct store *s, void *arg)
{
	struct api_auth_job *j = arg;

	j->rc = store_session_list(s, j->issuer[0] ? j->issuer : NULL, j->subject, &j->sessions,
				   &j->n);
}

static json_t *api_auth_session_json(const struct store_session *x, const char *mine)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:o,s:o,s:o,s:o,s:s,s:s,s:b}", "id", x->id,
			 "subject", x->subject ? x->subject : "", "name", x->name ? x->name : "",
			 "email", x->email ? x->email : "", "groups", api_auth_groups(x->groups),
			 "role", x->role, "created_at", api_auth_time(x->created_at), "last_seen",
			 api_auth_time(x->last_seen), "idle_expires_at",
			 api_auth_time(x->idle_expires_at), "expires_at",
			 api_auth_time(x->expires_at), "user_agent",
			 x->user_agent ? x->user_agent : "", "address", x->address ? x->address : "",
			 "current", mine != NULL && strcmp(mine, x->id) == 0);
}

static int api_auth_user_match(const struct store_session *x, const char *user)
{
	return user[0] == '\0' || (x->email && strcmp(x->email, user) == 0) ||
	       (x->subject && strcmp(x->subject, user) == 0);
}

static void api_auth_sessions_done(void *arg)
{
	struct api_auth_job *j = arg;
	const struct principal *p = principal_of(j->req);
	const char *mine = p && p->kind == PRINCIPAL_USER_SESSION ? p->session_id : NULL;
	json_t *list = json_array();

	if (j->rc < 0) {
		json_decref(list);
		http_respond_error(j->req, 503, "the database is unavailable");
		api_auth_job_free(j);
		return;
	}
	for (size_t i = 0; i < j->n; i++)
		if (api_auth_user_match(&j->sessions[i], j->user))
			json_array_append_new(list, api_auth_session_json(&j->sessions[i], mine));
	http_respond_json(j->req, 200, list);
	api_auth_job_free(j);
}

void api_auth_sessions(struct http_request *req)
{
	struct api_auth_job *j = api_auth_job_new(req, 1);

	if (j == NULL)
		return;
	if (oidc_query_get(req->query, "user", j->user, sizeof(j->user)) == -EINVAL) {
		http_respond_error(req, 400, "bad user parameter");
		api_auth_job_free(j);
		return;
	}
	api_auth_submit(j, api_auth_sessions_work, api_auth_sessions_done);
}

/* ---- DELETE /1.0/auth/sessions/{id} ---- */

static void api_auth_revoke_work(struct store *s, void *arg)
{
	struct api_auth_job *j = arg;

	j->rc = store_session_revoke(s, j->id, j->issuer[0] ? j->issuer : NULL, j->subject);
}

static void api_auth_revoke_done(void *arg)
{
	struct api_auth_job *j = arg;
	const struct principal *p = principal_of(j->req);

	if (j->rc == -ENOENT) {
		http_respond_error(j->req, 404, "session not found");
	} else if (j->rc < 0) {
		http_respond_error(j->req, 503, "the database is unavailable");
	} else {
		LOG_INFO("session %s revoked by %s", j->id, p ? p->name : "?");
		http_respond_json(j->req, 200, NULL);
	}
	api_auth_job_free(j);
}

void api_auth_session_delete(struct http_request *req)
{
	struct api_auth_job *j = api_auth_job_new(req, 1);

	if (j == NULL)
		return;
	if (http_request_param(req, 0, j->id, sizeof(j->id)) != 0 ||
	    strlen(j->id) != STORE_SESSION_ID_LEN) {
		http_respond_error(req, 404, "session not found");
		api_auth_job_free(j);
		return;
	}
	api_auth_submit(j, api_auth_revoke_work, api_auth_revoke_done);
}

/* ---- GET /1.0/auth/identities ---- */

static void api_auth_identities_work(struct store *s, void *arg)
{
	struct api_auth_job *j = arg;

	j->rc = store_identity_list(s, &j->ids, &j->n);
}

static void api_auth_identities_done(void *arg)
{
	struct api_auth_job *j = arg;
	json_t *list = json_array();

	if (j->rc < 0) {
		json_decref(list);
		http_respond_error(j->req, 503, "the database is unavailable");
		api_auth_job_free(j);
		return;
	}
	for (size_t i = 0; i < j->n; i++) {
		const struct store_identity *x = &j->ids[i];

		json_array_append_new(
		    list, json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:o,s:o,s:I}", "issuer", x->issuer,
				    "subject", x->subject, "name", x->name ? x->name : "", "email",
				    x->email ? x->email : "", "groups", api_auth_groups(x->groups),
				    "role", x->role, "first_seen", api_auth_time(x->first_seen),
				    "last_seen", api_auth_time(x->last_seen), "sessions",
				    (json_int_t)x->sessions));
	}
	http_respond_json(j->req, 200, list);
	api_auth_job_free(j);
}

void api_auth_identities(struct http_request *req)
{
	struct api_auth_job *j = api_auth_job_new(req, 0);

	if (j != NULL)
		api_auth_submit(j, api_auth_identities_work, api_auth_identities_done);
}
