/*
 * audit_query.h - what GET /1.0/audit asks for: its query string, parsed
 * strictly into a store filter, and the page cursor.
 *
 * Parameters (each at most once; anything else is a 400):
 *   cluster=NAME      rows of that cluster
 *   actor=ACTOR       rows of that actor: its stable id ("token:" and 12 hex
 *                     digits) or its name ("api-token:ci-bot")
 *   status=CODE|Nxx   one status (100..599) or a class ("5xx", 1xx..5xx)
 *   since=T, until=T  RFC 3339 times, both inclusive (whole seconds)
 *   limit=N           rows per page, 1..1000 (default 100)
 *   cursor=C          the page after the one whose answer gave C
 * Values are percent-decoded ('+' stays '+', so an offset such as
 * +02:00 may be written as it is); a malformed escape, a NUL or a control
 * character is refused.
 *
 * The cursor is opaque to clients: AUDIT_CURSOR_LEN lowercase hex digits
 * holding the (at, id) key of the last row of a page. A forged cursor only
 * moves the page: the caller's filters and visibility still apply.
 *
 * Everything here reads peer bytes as slices and allocates nothing
 * (fuzz/fuzz_audit_cursor.c).
 */
#ifndef LXCM_AUDIT_QUERY_H
#define LXCM_AUDIT_QUERY_H

#include <stdint.h>

#include "common/slice.h"
#include "store/store.h"

#define AUDIT_QUERY_DEFAULT_LIMIT 100
#define AUDIT_QUERY_VALUE_MAX 128 /* a decoded value, NUL included */
#define AUDIT_CURSOR_LEN 32

struct audit_query {
	struct store_audit_filter f; /* cluster and actor point into the arrays below */
	char cluster[AUDIT_QUERY_VALUE_MAX];
	char actor[AUDIT_QUERY_VALUE_MAX];
};

/*
 * Parses query (the part after '?', SLICE_NULL for none) into q. 0, or
 * -EINVAL with *why set to a short static message fit for a 400 answer.
 * q->f.owner is left NULL: the caller restricts a viewer.
 */
int audit_query_parse(struct slice query, struct audit_query *q, const char **why);

/* The cursor of the page after the row (at, id): AUDIT_CURSOR_LEN digits and a NUL. */
void audit_query_cursor_encode(int64_t at, int64_t id, char out[AUDIT_CURSOR_LEN + 1]);
/* 0 and the key, or -EINVAL for anything audit_query_cursor_encode does not write. */
int audit_query_cursor_decode(struct slice c, int64_t *at, int64_t *id);

#endif
