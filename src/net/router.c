/* router.c - path patterns with captures. */
#include "net/router.h"

#include <errno.h>
#include <string.h>

#include "net/http.h"

/* Splits off the next segment of s; *more says whether a '/' followed it. */
static struct slice router_next_segment(struct slice *s, int *more)
{
	struct slice seg = *s;
	const char *slash = s->len ? memchr(s->base, '/', s->len) : NULL;

	*more = slash != NULL;
	if (slash) {
		seg.len = (size_t)(slash - s->base);
		s->base = slash + 1;
		s->len -= seg.len + 1;
	} else {
		s->base += s->len;
		s->len = 0;
	}
	return seg;
}

static int router_capture(struct slice v, struct slice *params, size_t max, size_t *n)
{
	if (*n >= max)
		return 0;
	params[(*n)++] = v;
	return 1;
}

int router_match_path(const char *pattern, struct slice path, struct slice *params,
		      size_t max_params, size_t *nparams)
{
	struct slice pat = slice_cstr(pattern);
	int pat_more, path_more;

	*nparams = 0;
	if (path.len == 0 || path.base[0] != '/' || pat.len == 0 || pat.base[0] != '/')
		return 0;
	path.base++, path.len--;
	pat.base++, pat.len--;
	for (;;) {
		struct slice p = router_next_segment(&pat, &pat_more);
		struct slice seg;

		if (slice_eq(p, LIT("{*}")))
			return router_capture(path, params, max_params, nparams);
		seg = router_next_segment(&path, &path_more);
		if (p.len >= 2 && p.base[0] == '{' && p.base[p.len - 1] == '}') {
			if (seg.len == 0 || !router_capture(seg, params, max_params, nparams))
				return 0;
		} else if (!slice_eq(p, seg)) {
			return 0;
		}
		if (!pat_more && !path_more)
			return 1;
		if (pat_more && !path_more)
			return slice_eq(pat, LIT("{*}")) &&
			       router_capture(path, params, max_params, nparams);
		if (!pat_more)
			return 0;
	}
}

int router_match(const struct http_route *routes, size_t n, struct http_request *req)
{
	struct slice params[HTTP_MAX_PARAMS];
	size_t i, np;
	int path_matched = 0;

	for (i = 0; i < n; i++) {
		if (!router_match_path(routes[i].pattern, req->path, params, HTTP_MAX_PARAMS, &np))
			continue;
		path_matched = 1;
		if (routes[i].method && !slice_eq(req->method, slice_cstr(routes[i].method)))
			continue;
		req->route = &routes[i];
		memcpy(req->params, params, np * sizeof(params[0]));
		req->nparams = np;
		return 0;
	}
	return path_matched ? -EPERM : -ENOENT;
}
