/*
 * fuzz_router.c - request paths against the real route tables of both
 * listeners (api_routes, connector_routes in src/server) and a few extra
 * patterns, through router_match_path and router_match (src/net/router.c).
 *
 * Input: byte 0 picks the method (low 3 bits), the rest is the path as
 * sent. Invariants on a match: every capture lies inside the path, a
 * "{name}" capture is one non-empty segment, and putting the captures back
 * into the pattern gives the path again (a trailing "/{*}" may also match
 * the path without that slash, with an empty capture).
 */
#include <errno.h>

#include "fuzz.h"
#include "net/http.h"
#include "net/router.h"
#include "server/server.h"

static const char *const fuzz_methods[] = {"GET", "POST", "PUT", "PATCH",
					   "DELETE", "HEAD", "OPTIONS", "CONNECT"};

static const char *const fuzz_extra_patterns[] = {
	"/", "/{*}", "/a/{x}/{y}/{z}", "/a/{*}", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",
};

static int fuzz_inside(struct slice s, struct slice path)
{
	return s.len == 0 || (s.base >= path.base && s.base + s.len <= path.base + path.len);
}

/* Rebuilds the path from the pattern and the captures; 1 if it is path. */
static int fuzz_rebuild_equals(const char *pattern, const struct slice *params, size_t np,
			       struct slice path)
{
	char out[8192];
	size_t o = 0, k = 0;
	const char *p = pattern;

	while (*p) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			struct slice v;

			FUZZ_CHECK(close != NULL && k < np);
			v = params[k++];
			if (p[1] != '*')
				FUZZ_CHECK(v.len > 0 && memchr(v.base, '/', v.len) == NULL);
			if (o + v.len > sizeof(out))
				return 1; /* too long to check here */
			memcpy(out + o, v.base, v.len);
			o += v.len;
			p = close + 1;
		} else {
			if (o == sizeof(out))
				return 1;
			out[o++] = *p++;
		}
	}
	FUZZ_CHECK(k == np);
	if (o == path.len && memcmp(out, path.base, o) == 0)
		return 1;
	/* "/x/{*}" also matches "/x" with an empty capture. */
	return np && params[np - 1].len == 0 && o == path.len + 1 && out[o - 1] == '/' &&
	       memcmp(out, path.base, path.len) == 0;
}

static void fuzz_pattern(const char *pattern, struct slice path)
{
	struct slice params[HTTP_MAX_PARAMS];
	size_t np = 99, i;

	if (!router_match_path(pattern, path, params, HTTP_MAX_PARAMS, &np))
		return;
	FUZZ_CHECK(np <= HTTP_MAX_PARAMS);
	for (i = 0; i < np; i++)
		FUZZ_CHECK(fuzz_inside(params[i], path));
	FUZZ_CHECK(fuzz_rebuild_equals(pattern, params, np, path));
}

static void fuzz_table(const struct http_route *routes, size_t n, struct slice method,
		       struct slice path)
{
	struct http_request *req = calloc(1, sizeof(*req));
	size_t i;
	int rc;

	if (req == NULL)
		abort();
	for (i = 0; i < n; i++)
		fuzz_pattern(routes[i].pattern, path);
	req->method = method;
	req->path = path;
	rc = router_match(routes, n, req);
	FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EPERM);
	if (rc == 0) {
		FUZZ_CHECK(req->route >= routes && req->route < routes + n);
		FUZZ_CHECK(req->route->method == NULL ||
			   slice_eq(method, slice_cstr(req->route->method)));
		FUZZ_CHECK(req->nparams <= HTTP_MAX_PARAMS);
		for (i = 0; i < req->nparams; i++)
			FUZZ_CHECK(fuzz_inside(req->params[i], path));
	}
	free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slice method, path;
	char *copy;
	size_t i;

	if (size == 0)
		return 0;
	method = slice_cstr(fuzz_methods[data[0] & 7]);
	copy = malloc(size - 1 ? size - 1 : 1); /* exact size: reads past it are caught */
	if (copy == NULL)
		abort();
	memcpy(copy, data + 1, size - 1);
	path = slice_make(copy, size - 1);
	fuzz_table(api_routes, api_nroutes, method, path);
	fuzz_table(connector_routes, connector_nroutes, method, path);
	for (i = 0; i < sizeof(fuzz_extra_patterns) / sizeof(fuzz_extra_patterns[0]); i++)
		fuzz_pattern(fuzz_extra_patterns[i], path);
	free(copy);
	return 0;
}
