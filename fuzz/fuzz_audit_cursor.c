/*
 * fuzz_audit_cursor.c - GET /1.0/audit's query string from any caller with
 * a viewer token (audit_query_parse, src/server/audit_query.c): the
 * percent-decoding, the status, time and limit filters, and the page
 * cursor decoder (audit_query_cursor_decode), which is also fed the whole
 * input.
 *
 * Invariants: the answer is 0 or -EINVAL (with a reason); an accepted
 * query is within the store's bounds (limit 1..1000, a status range
 * inside 0..999, since <= until) and its texts are short and hold no
 * control character; a cursor that decodes is exactly what the encoder
 * writes for its key (one spelling per position).
 */
#include <errno.h>

#include "fuzz.h"
#include "server/audit_query.h"

static void fuzz_check_text(const char *s)
{
	size_t n;

	if (s == NULL)
		return;
	n = strlen(s);
	FUZZ_CHECK(n > 0 && n < AUDIT_QUERY_VALUE_MAX);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] != 0x7f);
}

static void fuzz_check_cursor(int64_t at, int64_t id)
{
	char c[AUDIT_CURSOR_LEN + 1];
	int64_t a = -1, i = -1;

	audit_query_cursor_encode(at, id, c);
	FUZZ_CHECK(audit_query_cursor_decode(slice_cstr(c), &a, &i) == 0);
	FUZZ_CHECK(a == at && i == id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);
	struct slice in;
	struct audit_query q;
	const char *why = NULL;
	int64_t at = 0, id = 0;
	char back[AUDIT_CURSOR_LEN + 1];
	int rc;

	if (copy == NULL)
		abort();
	memcpy(copy, data, size); /* exact size: no NUL to lean on */
	in = slice_make(copy, size);
	rc = audit_query_parse(in, &q, &why);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0) {
		FUZZ_CHECK(why == NULL);
		FUZZ_CHECK(q.f.limit >= 1 && q.f.limit <= STORE_AUDIT_QUERY_MAX);
		FUZZ_CHECK(q.f.status_min >= 0 && q.f.status_min <= q.f.status_max &&
			   q.f.status_max <= 999);
		FUZZ_CHECK(q.f.since <= q.f.until);
		FUZZ_CHECK(q.f.owner == NULL);
		fuzz_check_text(q.f.cluster);
		fuzz_check_text(q.f.actor);
		if (q.f.has_after)
			fuzz_check_cursor(q.f.after_at, q.f.after_id);
	} else {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
	}
	if (audit_query_cursor_decode(in, &at, &id) == 0) {
		FUZZ_CHECK(at >= 0 && id > 0);
		audit_query_cursor_encode(at, id, back);
		FUZZ_CHECK(size == AUDIT_CURSOR_LEN && memcmp(back, copy, size) == 0);
	}
	free(copy);
	return 0;
}
