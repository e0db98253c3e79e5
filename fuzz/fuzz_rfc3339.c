/*
 * fuzz_rfc3339.c - RFC 3339 timestamps from peers (time_parse_rfc3339,
 * src/common/timefmt.c): token expiries in joins and tokens.
 *
 * A parsed time that time_format_rfc3339 can write (years 0000..9999) must
 * parse back to the same second.
 */
#include <errno.h>

#include "common/timefmt.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t t = 42, back = 0;
	char text[TIME_RFC3339_LEN];
	char *copy = malloc(size ? size : 1);
	int rc;

	if (copy == NULL)
		abort();
	memcpy(copy, data, size); /* exact size: no NUL to lean on */
	rc = time_parse_rfc3339(copy, size, &t);
	free(copy);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc != 0) {
		FUZZ_CHECK(t == 42); /* "leaves *out alone" */
		return 0;
	}
	rc = time_format_rfc3339(t, text, sizeof(text));
	FUZZ_CHECK(rc == 0 || rc == -ERANGE);
	if (rc == 0) {
		FUZZ_CHECK(time_parse_rfc3339(text, strlen(text), &back) == 0);
		FUZZ_CHECK(back == t);
	}
	return 0;
}
