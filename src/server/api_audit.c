/*
 * api_audit.c - GET /1.0/audit: the audit log, newest first, a page at a
 * time (filters and cursor: audit_query.h).
 *
 * Admins and operators read every row; a viewer reads only the rows of
 * its own principal (its stable id, principal.h), whatever it asks for.
 * The answer's metadata is {"entries": [...], "next": CURSOR or null}:
 * next is set when the page is full, and gives the rows after its last.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"
#include "server/audit_query.h"
#include "server/principal.h"
#include "server/server.h"
#include "store/store_async.h"

struct api_audit_job {
	struct http_request *req;
	struct audit_query q;
	char owner[PRINCIPAL_ID_MAX];
	struct store_audit_row *rows;
	size_t n;
	int rc;
};

static void api_audit_work(struct store *s, void *arg)
{
	struct api_audit_job *j = arg;

	j->rc = store_audit_query(s, &j->q.f, &j->rows, &j->n);
}

/* A text column: JSON null for a NULL (rows written before migration 006). */
static json_t *api_audit_str(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *api_audit_row_json(const struct store_audit_row *r)
{
	char when[TIME_RFC3339_LEN];
	json_t *o = json_object();

	if (time_format_rfc3339(r->at, when, sizeof(when)) != 0)
		when[0] = '\0';
	json_object_set_new(o, "timestamp", json_string(when));
	json_object_set_new(o, "request_id", api_audit_str(r->request_id));
	json_object_set_new(o, "actor", api_audit_str(r->actor));
	json_object_set_new(o, "actor_name", api_audit_str(r->actor_name));
	json_object_set_new(o, "client", api_audit_str(r->client));
	json_object_set_new(o, "cluster", api_audit_str(r->cluster));
	json_object_set_new(o, "method", api_audit_str(r->method));
	json_object_set_new(o, "path", api_audit_str(r->path));
	json_object_set_new(o, "status", json_integer(r->status));
	json_object_set_new(o, "bytes_in", json_integer(r->bytes_in));
	json_object_set_new(o, "bytes_out", json_integer(r->bytes_out));
	json_object_set_new(o, "duration_ms", json_integer(r->duration_ms));
	return o;
}

static void api_audit_done(void *arg)
{
	struct api_audit_job *j = arg;
	char next[AUDIT_CURSOR_LEN + 1];
	json_t *md, *entries;

	if (j->rc < 0) {
		handler_store_error(j->req, j->rc, "audit log");
	} else {
		entries = json_array();
		for (size_t i = 0; i < j->n; i++)
			json_array_append_new(entries, api_audit_row_json(&j->rows[i]));
		md = json_object();
		json_object_set_new(md, "entries", entries);
		if (j->n > 0 && j->n == j->q.f.limit) {
			audit_query_cursor_encode(j->rows[j->n - 1].at, j->rows[j->n - 1].id, next);
			json_object_set_new(md, "next", json_string(next));
		} else {
			json_object_set_new(md, "next", json_null());
		}
		http_respond_json(j->req, 200, md);
	}
	store_audit_rows_free(j->rows, j->n);
	free(j);
}

void api_audit_get(struct http_request *req)
{
	struct server *srv = req->server_data;
	const struct principal *who = principal_of(req);
	struct api_audit_job *j = calloc(1, sizeof(*j));
	const char *why = NULL;

	if (j == NULL) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	j->req = req;
	if (audit_query_parse(req->query, &j->q, &why) != 0) {
		http_respond_error(req, 400, "%s", why);
		free(j);
		return;
	}
	/* The route admits viewers and above; below operator, one's own rows only. */
	if (who == NULL || who->role < PRINCIPAL_ROLE_OPERATOR) {
		snprintf(j->owner, sizeof(j->owner), "%s", who ? who->id : "anonymous");
		j->q.f.owner = j->owner;
	}
	if (store_run(srv->loop, srv->store, api_audit_work, api_audit_done, j) < 0) {
		http_respond_error(req, 503, "the server is busy, try again later");
		free(j);
	}
}
