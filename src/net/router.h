/*
 * router.h - matches a request path against a table of route patterns.
 *
 * Patterns are "/"-separated segments: literals, "{name}" (one non-empty
 * segment) and a final "{*}" (the rest of the path, possibly empty, without
 * its leading slash). Captures go to req->params in order.
 */
#ifndef LXCM_ROUTER_H
#define LXCM_ROUTER_H

#include <stddef.h>

#include "common/slice.h"

struct http_route;
struct http_request;

/*
 * Sets req->route and req->params. Returns 0, -ENOENT when no pattern
 * matches the path, or -EPERM when one matches but not for this method.
 */
int router_match(const struct http_route *routes, size_t n, struct http_request *req);
/* The matching core, exposed for tests: 1 on match, 0 otherwise. */
int router_match_path(const char *pattern, struct slice path, struct slice *params,
		      size_t max_params, size_t *nparams);

#endif
