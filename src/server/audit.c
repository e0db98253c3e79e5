/* audit.c - audit rows of proxied requests (see audit.h). */
#include "server/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "server/server.h"
#include "store/store_async.h"

struct audit_job {
	struct store_audit a;
	char actor[AUDIT_ACTOR_MAX], cluster[64], method[16], path[512];
	int rc;
};

void audit_actor(const struct http_request *req, char out[AUDIT_ACTOR_MAX])
{
	struct slice h = http_request_header(req, LIT("Authorization"));
	char hash[65];

	if (h.len <= 7 || h.len > 512 || strncasecmp(h.base, "Bearer ", 7) != 0) {
		snprintf(out, AUDIT_ACTOR_MAX, "anonymous");
		return;
	}
	secret_sha256_hex(h.base + 7, h.len - 7, hash);
	snprintf(out, AUDIT_ACTOR_MAX, "token:%.12s", hash);
}

static void audit_work(struct store *s, void *arg)
{
	struct audit_job *j = arg;

	j->rc = s->ops->audit_append(s, &j->a);
}

static void audit_done(void *arg)
{
	struct audit_job *j = arg;

	if (j->rc < 0)
		LOG_WARN("audit row for %s %s on %s lost (%d)", j->method, j->path, j->cluster,
			 j->rc);
	free(j);
}

void audit_record(struct server *srv, const struct audit_entry *e)
{
	struct audit_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		LOG_WARN("audit row for %s %s lost: out of memory", e->method, e->path);
		return;
	}
	snprintf(j->actor, sizeof(j->actor), "%s", e->actor);
	snprintf(j->cluster, sizeof(j->cluster), "%s", e->cluster ? e->cluster : "");
	snprintf(j->method, sizeof(j->method), "%s", e->method ? e->method : "");
	snprintf(j->path, sizeof(j->path), "%.*s", (int)sizeof(j->path) - 1,
		 e->path ? e->path : "");
	j->a.at = time_now();
	j->a.actor = j->actor;
	j->a.cluster = j->cluster;
	j->a.method = j->method;
	j->a.path = j->path;
	j->a.status = e->status;
	j->a.bytes_in = (int64_t)e->bytes_in;
	j->a.bytes_out = (int64_t)e->bytes_out;
	j->a.duration_ms = (int64_t)(uv_now(srv->loop) - e->start_ms);
	if (store_run(srv->loop, srv->store, audit_work, audit_done, j) < 0) {
		LOG_WARN("audit row for %s %s lost: the server is busy", e->method, e->path);
		free(j);
	}
}
