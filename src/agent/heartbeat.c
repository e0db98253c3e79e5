/*
 * heartbeat.c - the status heartbeat: gather from LXD, POST the body to
 * /1.0/remote-cluster/status on the manager, wait, again.
 *
 * One cycle at a time: the timer fires, lxd_collect gathers a snapshot,
 * agent_status_build turns it into the body, and the body goes to the saved
 * manager addresses in order until one answers. Success schedules the next
 * cycle after --interval, else the manager's next_update_in_seconds, else
 * HB_DEFAULT_INTERVAL_S. Any failure logs one line saying which side failed
 * and retries after a jittered exponential backoff.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "agent/agent.h"
#include "agent/lxd_collect.h"
#include "agent/status.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/slice.h"

#define HB_DEFAULT_INTERVAL_S 60
#define HB_MAX_INTERVAL_S 86400
#define HB_BACKOFF_BASE_MS 1000
#define HB_BACKOFF_CAP_MS 60000
#define HB_BACKOFF_FLOOR_MS 100 /* full jitter may draw 0: no hot loop */
/* The manager refuses status bodies past 8 MiB (SERVER_STATUS_BODY_MAX). */
#define HB_BODY_MAX (8 * 1024 * 1024)
#define HB_RESPONSE_MAX (64 * 1024)

struct heartbeat {
	struct agent *ag;
	uv_timer_t timer;
	struct lxd_collect *collect; /* while gathering */
	struct http_fetch *post;	     /* while posting */
	char *body;		     /* the JSON being posted (json_dumps) */
	size_t body_len;
	size_t addr;	     /* the manager address being tried */
	char addr_errs[512]; /* why earlier addresses failed, this cycle */
	unsigned failures;   /* consecutive, for the backoff */
	unsigned next_s;     /* the manager's next_update_in_seconds, 0 unknown */
	size_t ninstances;
	int no_metrics; /* the manager refused a body as too large */
};

static void hb_on_timer(uv_timer_t *t);
static void hb_post(struct heartbeat *hb);

static void hb_on_timer_closed(uv_handle_t *h)
{
	struct heartbeat *hb = h->data;

	free(hb->body);
	free(hb);
}

static void hb_drop_body(struct heartbeat *hb)
{
	free(hb->body);
	hb->body = NULL;
	hb->body_len = 0;
}

/* ---- the end of a cycle ---- */

/* Full jitter: uniform in [0, min(cap, base * 2^(failures-1))]. */
static uint64_t hb_backoff_ms(unsigned failures)
{
	uint64_t ceiling = HB_BACKOFF_BASE_MS;
	uint32_t r;

	while (failures-- > 1 && ceiling < HB_BACKOFF_CAP_MS)
		ceiling *= 2;
	if (ceiling > HB_BACKOFF_CAP_MS)
		ceiling = HB_BACKOFF_CAP_MS;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)rand();
	ceiling = ceiling * r / UINT32_MAX;
	return ceiling < HB_BACKOFF_FLOOR_MS ? HB_BACKOFF_FLOOR_MS : ceiling;
}

/* A seconds value of Retry-After (the HTTP-date form is ignored). */
static uint64_t hb_retry_after_ms(const char *v)
{
	long long s;

	if (v == NULL || slice_to_int64(slice_cstr(v), 0, HB_MAX_INTERVAL_S, &s) < 0)
		return 0;
	return (uint64_t)s * 1000;
}

/* Logs why this cycle failed (one line) and retries after the backoff. */
static void hb_failed(struct heartbeat *hb, uint64_t min_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void hb_failed(struct heartbeat *hb, uint64_t min_ms, const char *fmt, ...)
{
	char msg[1024];
	uint64_t ms;
	va_list ap;
	int n;

	hb_drop_body(hb);
	hb->failures++;
	ms = hb_backoff_ms(hb->failures);
	if (ms < min_ms)
		ms = min_ms;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
	if (hb->ag->once) {
		LOG_ERROR("heartbeat failed: %s", msg);
		agent_stop(hb->ag, 1);
		return;
	}
	LOG_WARN("heartbeat failed: %s; retrying in %.1f s", msg, (double)ms / 1000.0);
	uv_timer_start(&hb->timer, hb_on_timer, ms, 0);
}

static void hb_succeeded(struct heartbeat *hb, const char *addr)
{
	unsigned s = hb->ag->interval_s ? hb->ag->interval_s
					: (hb->next_s ? hb->next_s : HB_DEFAULT_INTERVAL_S);

	hb_drop_body(hb);
	hb->failures = 0;
	LOG_INFO("heartbeat sent to %s: %zu instances, next in %u s", addr, hb->ninstances, s);
	if (hb->ag->once) {
		agent_stop(hb->ag, 0);
		return;
	}
	uv_timer_start(&hb->timer, hb_on_timer, (uint64_t)s * 1000, 0);
}

/* ---- posting to the manager ---- */

/* Reads next_update_in_seconds from a 200 answer; a missing or odd value is ignored. */
static void hb_read_answer(struct heartbeat *hb, struct http_fetch_result *res)
{
	json_t *root = NULL, *v;
	double d;

	if (json_parse_object(res->body, res->body_len, &root, NULL, 0) < 0)
		return;
	v = json_object_get(json_object_get(root, "metadata"), "next_update_in_seconds");
	if (json_is_number(v)) {
		d = json_number_value(v);
		if (d >= 1 && d <= HB_MAX_INTERVAL_S)
			hb->next_s = (unsigned)d;
	}
	json_decref(root);
}

/* LXD-style envelope "error" of an error answer, or a generic text. */
static void hb_answer_error(struct http_fetch_result *res, char *out, size_t outlen)
{
	json_t *root = NULL;
	const char *msg = NULL;

	if (json_parse_object(res->body, res->body_len, &root, NULL, 0) == 0 &&
	    json_get_string(root, "error", &msg) == 0 && msg[0] != '\0')
		agent_errf(out, outlen, "%s", msg);
	else
		agent_errf(out, outlen, "%s", "no error message");
	json_decref(root);
}

static void hb_on_answer(struct heartbeat *hb, struct http_fetch_result *res)
{
	const char *addr = hb->ag->cfg.addresses[hb->addr];
	char why[512];

	if (res->status == 200) {
		hb_read_answer(hb, res);
		hb_succeeded(hb, addr);
		return;
	}
	hb_answer_error(res, why, sizeof(why));
	if (res->status == 403) {
		hb_failed(hb, 0,
			  "manager %s said 403 (%s): this cluster is not enrolled "
			  "(removed from the manager?)",
			  addr, why);
		return;
	}
	if (res->status == 413 && !hb->no_metrics) {
		hb->no_metrics = 1;
		hb_failed(hb, 0,
			  "manager %s refused the %zu-byte heartbeat as too large (%s); "
			  "sending it without metrics from now on",
			  addr, hb->body_len, why);
		return;
	}
	hb_failed(hb, hb_retry_after_ms(res->retry_after), "manager %s answered %d: %s", addr,
		  res->status, why);
}

/* Notes why one address failed, to report all of them if none answers. */
static void hb_addr_failed(struct heartbeat *hb, const char *why)
{
	size_t used = strlen(hb->addr_errs);

	agent_errf(hb->addr_errs + used, sizeof(hb->addr_errs) - used, "%s%s: %s", used ? "; " : "",
		   hb->ag->cfg.addresses[hb->addr], why);
	hb->addr++;
}

static void hb_on_posted(struct http_fetch_result *res, void *arg)
{
	struct heartbeat *hb = arg;

	hb->post = NULL;
	if (res->err == 0) {
		hb_on_answer(hb, res);
		return;
	}
	hb_addr_failed(hb, res->err == CONN_EPIN ? "the manager's certificate does not match the "
						   "pinned fingerprint"
						 : agent_strerror(res->err));
	hb_post(hb);
}

/* Posts hb->body to the next address that can be tried. */
static void hb_post(struct heartbeat *hb)
{
	static const struct http_header hdrs[] = {
	    {LIT("Content-Type"), LIT("application/json")},
	    {LIT("User-Agent"), LIT("lxcm-agent/" AGENT_VERSION)},
	};
	struct agent *ag = hb->ag;
	struct http_client_opts opts;
	char host[AGENT_HOST_MAX];

	while (hb->addr < ag->cfg.naddresses) {
		if (agent_manager_opts(ag, hb->addr, &opts, host, sizeof(host)) < 0) {
			hb_addr_failed(hb, "bad address");
			continue;
		}
		hb->post = http_fetch_start(ag->loop, &opts, "POST", "/1.0/remote-cluster/status",
					    hdrs, sizeof(hdrs) / sizeof(hdrs[0]), hb->body,
					    hb->body_len, HB_RESPONSE_MAX, hb_on_posted, hb);
		if (hb->post)
			return;
		hb_addr_failed(hb, "cannot start the request");
	}
	hb_failed(hb, 0, "manager unreachable (%s)", hb->addr_errs);
}

/* ---- gathering from LXD ---- */

/* Serialises the body, without metrics when it would be too big with them. */
static int hb_make_body(struct heartbeat *hb, struct lxd_snapshot *s)
{
	json_t *body;

	for (;;) {
		body = agent_status_build(s);
		hb->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
		json_decref(body);
		if (hb->body == NULL)
			return -ENOMEM;
		hb->body_len = strlen(hb->body);
		if (hb->body_len <= HB_BODY_MAX)
			return 0;
		hb_drop_body(hb);
		if (s->metrics == NULL)
			return -E2BIG;
		LOG_WARN("heartbeat of %zu bytes with metrics is too large; leaving the "
			 "metrics out",
			 hb->body_len);
		s->metrics = NULL;
		s->metrics_len = 0;
	}
}

static void hb_on_collected(int err, const char *errmsg, const struct lxd_snapshot *snap, void *arg)
{
	struct heartbeat *hb = arg;
	struct lxd_snapshot s;
	int rc;

	hb->collect = NULL;
	if (err) {
		hb_failed(hb, 0, "%s %s: %s",
			  err == -EPROTO   ? "LXD refused a request at"
			  : err == -ENOMEM ? "out of memory asking LXD at"
					   : "LXD unreachable at",
			  hb->ag->cfg.up.url, errmsg);
		return;
	}
	s = *snap;
	if (getloadavg(s.load, 3) != 3)
		s.load[0] = s.load[1] = s.load[2] = 0;
	if (hb->no_metrics) {
		s.metrics = NULL;
		s.metrics_len = 0;
	}
	hb->ninstances = json_array_size(s.instances);
	rc = hb_make_body(hb, &s);
	if (rc < 0) {
		hb_failed(hb, 0, "cannot build the status body: %s",
			  rc == -E2BIG ? "too large" : "out of memory");
		return;
	}
	hb->addr = 0;
	hb->addr_errs[0] = '\0';
	hb_post(hb);
}

static void hb_on_timer(uv_timer_t *t)
{
	struct heartbeat *hb = t->data;
	char err[512];

	hb->collect = lxd_collect_start(hb->ag, hb_on_collected, hb, err, sizeof(err));
	if (hb->collect == NULL)
		hb_failed(hb, 0, "LXD unreachable at %s: %s", hb->ag->cfg.up.url, err);
}

int heartbeat_start(struct agent *ag)
{
	struct heartbeat *hb = calloc(1, sizeof(*hb));

	if (hb == NULL)
		return -ENOMEM;
	hb->ag = ag;
	uv_timer_init(ag->loop, &hb->timer);
	hb->timer.data = hb;
	ag->hb = hb;
	uv_timer_start(&hb->timer, hb_on_timer, 0, 0);
	return 0;
}

void heartbeat_stop(struct agent *ag)
{
	struct heartbeat *hb = ag->hb;

	if (hb == NULL)
		return;
	ag->hb = NULL;
	lxd_collect_cancel(hb->collect);
	http_fetch_cancel(hb->post);
	hb->collect = NULL;
	hb->post = NULL;
	uv_timer_stop(&hb->timer);
	uv_close((uv_handle_t *)&hb->timer, hb_on_timer_closed);
}
