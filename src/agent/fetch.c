/* fetch.c - buffered, cancellable HTTP requests on http_client. */
#include "agent/fetch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/slice.h"

struct fetch {
	struct http_client *cl;
	struct buf body;
	struct http_fetch_result res;
	fetch_cb cb;
	void *arg;
};

static void fetch_free(struct fetch *f)
{
	http_fetch_result_clear(&f->res);
	buf_free(&f->body);
	free(f);
}

/* Delivers the result once, then frees the fetch. */
static void fetch_finish(struct fetch *f, int err)
{
	f->cl = NULL;
	f->res.err = err;
	if (err == 0)
		f->res.body = buf_steal(&f->body, &f->res.body_len);
	f->cb(f, &f->res, f->arg);
	fetch_free(f);
}

static struct slice fetch_header(const struct http_response_head *h, struct slice name)
{
	size_t i;

	for (i = 0; i < h->nheaders; i++)
		if (slice_eq_nocase(h->headers[i].name, name))
			return h->headers[i].value;
	return SLICE_NULL;
}

static void fetch_on_head(struct http_client *cl, const struct http_response_head *h)
{
	struct fetch *f = http_client_data(cl);
	struct slice v;
	int n;

	f->res.status = h->status;
	v = fetch_header(h, LIT("Retry-After"));
	if (v.base)
		f->res.retry_after = slice_dup(v);
	if (h->peer_fp) {
		n = snprintf(f->res.peer_fp, sizeof(f->res.peer_fp), "%s", h->peer_fp);
		if (n < 0 || (size_t)n >= sizeof(f->res.peer_fp))
			f->res.peer_fp[0] = '\0';
	}
}

static void fetch_on_body(struct http_client *cl, const char *data, size_t len)
{
	struct fetch *f = http_client_data(cl);

	if (buf_append(&f->body, data, len) == 0)
		return;
	/* Past the cap (or out of memory): give up on this response. */
	http_client_cancel(cl);
	fetch_finish(f, -E2BIG);
}

static void fetch_on_done(struct http_client *cl, int err)
{
	fetch_finish(http_client_data(cl), err);
}

static const struct http_client_callbacks fetch_cbs = {
    .on_head = fetch_on_head,
    .on_body = fetch_on_body,
    .on_done = fetch_on_done,
};

struct fetch *fetch_start(uv_loop_t *loop, const struct http_client_opts *opts, const char *method,
			  const char *target, const struct http_header *hdrs, size_t n,
			  const void *body, size_t body_len, size_t max_response, fetch_cb cb,
			  void *arg)
{
	struct fetch *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	buf_init(&f->body, max_response);
	f->cb = cb;
	f->arg = arg;
	f->cl = http_client_request(loop, opts, method, target, hdrs, n, (int64_t)body_len,
				    &fetch_cbs, f);
	if (f->cl == NULL) {
		fetch_free(f);
		return NULL;
	}
	/* Before the connection is up the bytes are only queued: this cannot fail. */
	if (body_len && http_client_write(f->cl, body, body_len) < 0) {
		http_client_cancel(f->cl);
		fetch_free(f);
		return NULL;
	}
	return f;
}

void fetch_cancel(struct fetch *f)
{
	if (f == NULL)
		return;
	http_client_cancel(f->cl);
	fetch_free(f);
}
