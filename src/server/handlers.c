/* handlers.c - small helpers shared by the management and connector handlers. */
#include <errno.h>
#include <string.h>

#include "common/json_util.h"
#include "common/log.h"
#include "server/server.h"

json_t *handler_parse_body(struct http_request *req)
{
	char err[160];
	json_t *obj = NULL;

	if (req->body.len == 0) {
		http_respond_error(req, 400, "request body is empty, expected a JSON object");
		return NULL;
	}
	if (json_parse_object(req->body.data, req->body.len, &obj, err, sizeof(err)) != 0) {
		http_respond_error(req, 400, "%s", err);
		return NULL;
	}
	return obj;
}

void handler_store_error(struct http_request *req, int rc, const char *what)
{
	switch (rc) {
	case -ENOENT:
		http_respond_error(req, 404, "%s not found", what);
		break;
	case -EEXIST:
		http_respond_error(req, 409, "%s already exists", what);
		break;
	case -EACCES:
		http_respond_error(req, 403, "forbidden");
		break;
	case -EINVAL:
		http_respond_error(req, 400, "invalid %s", what);
		break;
	default:
		LOG_ERROR("store failure on %s: %d", what, rc);
		http_respond_error(req, 503, "the database is unavailable, try again later");
		break;
	}
}

int handler_valid_name(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > 63 || name[0] == '.' || name[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}
