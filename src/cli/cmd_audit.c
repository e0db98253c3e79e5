/*
 * cmd_audit.c - `lxcm audit`: the audit log of proxied requests, newest
 * first, read through GET /1.0/audit page by page (its cursor) until
 * --limit rows or the end.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/output.h"
#include "cli/util.h"
#include "common/slice.h"
#include "common/timefmt.h"

enum { AUDIT_CLUSTER, AUDIT_USER, AUDIT_STATUS, AUDIT_SINCE, AUDIT_UNTIL, AUDIT_LIMIT };

#define AUDIT_CLI_DEFAULT 100
#define AUDIT_CLI_MAX 100000
#define AUDIT_CLI_PAGE 1000 /* the server's largest page */

static const struct option audit_options[] = {
    {"cluster", required_argument, NULL, CLI_OPT_OWN + AUDIT_CLUSTER},
    {"user", required_argument, NULL, CLI_OPT_OWN + AUDIT_USER},
    {"status", required_argument, NULL, CLI_OPT_OWN + AUDIT_STATUS},
    {"since", required_argument, NULL, CLI_OPT_OWN + AUDIT_SINCE},
    {"until", required_argument, NULL, CLI_OPT_OWN + AUDIT_UNTIL},
    {"limit", required_argument, NULL, CLI_OPT_OWN + AUDIT_LIMIT},
    {NULL, 0, NULL, 0},
};

/* Appends "&key=<value percent-encoded>" to q (the first without '&'). 0 or -1. */
static int audit_param(char *q, size_t len, const char *key, const char *value)
{
	char enc[1024];
	size_t used = strlen(q);
	int n;

	if (value == NULL)
		return 0;
	if (util_urlencode(value, enc, sizeof(enc)) != 0)
		return -1;
	n = snprintf(q + used, len - used, "%s%s=%s", used ? "&" : "", key, enc);
	return n < 0 || (size_t)n >= len - used ? -1 : 0;
}

/* --since/--until: an RFC 3339 time, or a duration that long ago. */
static int audit_time(const char *s, char out[TIME_RFC3339_LEN])
{
	int64_t t, d;

	if (time_parse_rfc3339(s, strlen(s), &t) != 0) {
		if (util_parse_duration(s, &d) != 0)
			return -EINVAL;
		t = time_now() - d;
	}
	return time_format_rfc3339(t, out, TIME_RFC3339_LEN);
}

/* The filters as a query string (without cursor and limit); CLI_EXIT_USAGE after saying why. */
static int audit_filters(const struct cli_args *a, char *q, size_t len)
{
	char since[TIME_RFC3339_LEN], until[TIME_RFC3339_LEN];
	const char *s = a->opt[AUDIT_SINCE], *u = a->opt[AUDIT_UNTIL];

	q[0] = '\0';
	if ((s && audit_time(s, since) != 0) || (u && audit_time(u, until) != 0)) {
		fprintf(stderr, "%s: --since and --until take an RFC 3339 time "
				"(2030-01-31T12:00:00Z) or a duration ago (30m, 2h, 7d)\n",
			a->name);
		return CLI_EXIT_USAGE;
	}
	if (audit_param(q, len, "cluster", a->opt[AUDIT_CLUSTER]) ||
	    audit_param(q, len, "actor", a->opt[AUDIT_USER]) ||
	    audit_param(q, len, "status", a->opt[AUDIT_STATUS]) ||
	    audit_param(q, len, "since", s ? since : NULL) ||
	    audit_param(q, len, "until", u ? until : NULL)) {
		fprintf(stderr, "%s: a filter value is empty or too long\n", a->name);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* ACTOR: the principal's name when the row has one, else its stable id. */
static const char *audit_cell_actor(json_t *e, const char *key, int64_t now, char *buf,
				    size_t len)
{
	const char *who = util_json_str(e, "actor_name");

	(void)key;
	(void)now;
	(void)buf;
	(void)len;
	return who && who[0] ? who : util_json_str(e, "actor");
}

/* The integer field key and a unit: "200", "12ms". */
static const char *audit_cell_u64(json_t *e, const char *key, const char *unit, char *buf,
				  size_t len)
{
	uint64_t v = 0;

	util_json_u64(e, key, &v);
	snprintf(buf, len, "%llu%s", (unsigned long long)v, unit);
	return buf;
}

static const char *audit_cell_status(json_t *e, const char *key, int64_t now, char *buf,
				     size_t len)
{
	(void)now;
	return audit_cell_u64(e, key, "", buf, len);
}

static const char *audit_cell_duration(json_t *e, const char *key, int64_t now, char *buf,
				       size_t len)
{
	(void)now;
	return audit_cell_u64(e, key, "ms", buf, len);
}

static const char *audit_cell_bytes(json_t *e, const char *key, int64_t now, char *buf,
				    size_t len)
{
	char in[16], out[16];
	uint64_t bi = 0, bo = 0;

	(void)key;
	(void)now;
	util_json_u64(e, "bytes_in", &bi);
	util_json_u64(e, "bytes_out", &bo);
	util_human_bytes(bi, in, sizeof(in));
	util_human_bytes(bo, out, sizeof(out));
	snprintf(buf, len, "%s/%s", in, out);
	return buf;
}

/* clang-format off */
static const struct output_column audit_columns[] = {
    {'t', "time", "TIME", "when the request came", "timestamp", NULL},
    {'a', "actor", "ACTOR", "who sent it", "actor", audit_cell_actor},
    {'C', "client", "CLIENT", "from which address", "client", NULL},
    {'c', "cluster", "CLUSTER", "to which cluster", "cluster", NULL},
    {'m', "method", "METHOD", "the HTTP method", "method", NULL},
    {'p', "path", "PATH", "the path at the cluster", "path", NULL},
    {'s', "status", "STATUS", "the status answered", "status", audit_cell_status},
    {'d', "duration", "DURATION", "how long it took", "duration_ms", audit_cell_duration},
    {'b', "bytes", "IN/OUT", "bytes from the user / to the user", NULL, audit_cell_bytes},
    {0, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */

/* GETs one page into all; *next gets the cursor (malloc'd) or NULL. The exit code. */
static int audit_page(struct cli_ctx *ctx, const char *filters, size_t limit, const char *cursor,
		      json_t *all, char **next)
{
	char path[4096];
	json_t *md = NULL, *entries, *nx;
	int rc, n;

	*next = NULL;
	n = snprintf(path, sizeof(path), "/1.0/audit?%s%slimit=%zu%s%s", filters,
		     filters[0] ? "&" : "", limit, cursor ? "&cursor=" : "", cursor ? cursor : "");
	if (n < 0 || (size_t)n >= sizeof(path))
		return CLI_EXIT_USAGE;
	rc = client_request(ctx, "GET", path, NULL, &md);
	if (rc != 0)
		return rc;
	entries = json_object_get(md, "entries");
	nx = json_object_get(md, "next");
	if (!json_is_array(entries) || json_array_size(entries) > limit) {
		fputs("Error: the server did not send a page of the audit log\n", stderr);
		json_decref(md);
		return CLI_EXIT_FAIL;
	}
	json_array_extend(all, entries);
	if (json_is_string(nx) && json_array_size(entries) > 0)
		*next = strdup(json_string_value(nx));
	json_decref(md);
	return CLI_EXIT_OK;
}

static int audit_print(const struct cli_ctx *ctx, json_t *all)
{
	static const struct output_columns cols = {audit_columns, "taCcmpsdb"};
	size_t idx[OUTPUT_MAX_COLS], n = 0;
	char err[256];

	if (output_columns_select(&cols, NULL, idx, &n, err, sizeof(err)) != 0)
		return CLI_EXIT_FAIL;
	return output_list(stdout, ctx->format, all, &cols, idx, n, time_now()) == 0
		   ? CLI_EXIT_OK
		   : CLI_EXIT_FAIL;
}

static int audit_run(struct cli_ctx *ctx, const struct cli_command *cmd, const struct cli_args *a)
{
	char filters[3072], *cursor = NULL, *next = NULL;
	long long want = AUDIT_CLI_DEFAULT;
	json_t *all;
	int rc;

	(void)cmd;
	if (a->opt[AUDIT_LIMIT] &&
	    slice_to_int64(slice_cstr(a->opt[AUDIT_LIMIT]), 1, AUDIT_CLI_MAX, &want) != 0) {
		fprintf(stderr, "%s: --limit takes 1 to %d rows\n", a->name, AUDIT_CLI_MAX);
		return CLI_EXIT_USAGE;
	}
	rc = audit_filters(a, filters, sizeof(filters));
	if (rc != 0)
		return rc;
	all = json_array();
	do {
		size_t left = (size_t)want - json_array_size(all);

		rc = audit_page(ctx, filters, left < AUDIT_CLI_PAGE ? left : AUDIT_CLI_PAGE, cursor,
				all, &next);
		free(cursor);
		cursor = next;
	} while (rc == CLI_EXIT_OK && cursor != NULL && json_array_size(all) < (size_t)want);
	free(cursor);
	if (rc == CLI_EXIT_OK)
		rc = audit_print(ctx, all);
	json_decref(all);
	return rc;
}

const struct cli_command cmd_audit = {
    .name = "audit",
    .args = "[--cluster C] [--user U] [--status S] [--since T] [--until T] [--limit N]",
    .summary = "Show the audit log of requests through the tunnels, newest first",
    .help = "Each row is one request a user sent to a cluster through lxcm (or one lxcm\n"
	    "refused): when, who, from where, to which cluster, what, the status, how long\n"
	    "it took and the bytes each way. An admin or operator token sees every row; a\n"
	    "viewer token only its own.\n"
	    "\n"
	    "Options:\n"
	    "  --cluster C   rows of cluster C\n"
	    "  --user U      rows of one actor: its audit actor (token:..., as\n"
	    "                `lxcm api-token list` shows) or its name (api-token:NAME)\n"
	    "  --status S    one status (404) or a class (5xx)\n"
	    "  --since T     rows at or after T: an RFC 3339 time or a duration ago (2h)\n"
	    "  --until T     rows at or before T, the same way\n"
	    "  --limit N     at most N rows (default 100, up to 100000)\n",
    .options = audit_options,
    .fn = audit_run,
};
