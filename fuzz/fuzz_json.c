/*
 * fuzz_json.c - JSON request bodies: json_parse_object and the typed
 * getters (src/common/json_util.c), then the field checks the join, token
 * and cluster-patch handlers apply, with the same functions they call
 * (handler_valid_name, time_parse_rfc3339, cert_fingerprint_pem,
 * join_token_decode). fuzz_api sends bodies through the real handlers; this
 * target is the fast, deep one for the parsing layer.
 *
 * The error buffer is exactly as large as the input says (1..200 bytes), so
 * a message written past it is caught; it must always be NUL-terminated
 * printable ASCII (it goes into a 400 reply).
 */
#include <errno.h>

#include "common/cert.h"
#include "common/json_util.h"
#include "common/jointoken.h"
#include "common/timefmt.h"
#include "fuzz.h"
#include "server/server.h"

static void fuzz_check_err(const char *err, size_t errlen)
{
	size_t i, n = strnlen(err, errlen);

	FUZZ_CHECK(n < errlen);
	for (i = 0; i < n; i++)
		FUZZ_CHECK(err[i] >= 0x20 && err[i] <= 0x7e);
}

/* Each value through the getters; their answers must agree with jansson. */
static void fuzz_getters(json_t *obj)
{
	const char *key, *s;
	long long v;
	json_t *val;
	int rc;

	json_object_foreach(obj, key, val) {
		rc = json_get_string(obj, key, &s);
		FUZZ_CHECK(rc == 0 || rc == -EINVAL);
		if (rc == 0)
			FUZZ_CHECK(json_is_string(val) && strlen(s) == json_string_length(val));
		rc = json_get_int(obj, key, &v);
		FUZZ_CHECK(rc == 0 || rc == -EINVAL);
		if (rc == 0)
			FUZZ_CHECK(json_is_integer(val) && v == json_integer_value(val));
	}
	FUZZ_CHECK(json_get_string(obj, "\x01no such key", &s) == -ENOENT);
}

/* The checks of POST /1.0/remote-cluster (join) and of token create. */
static void fuzz_fields(json_t *obj)
{
	const char *s;
	char fp[65];
	struct join_token t;
	int64_t when;

	if (json_get_string(obj, "cluster_name", &s) == 0 && handler_valid_name(s)) {
		size_t i, n = strlen(s);

		FUZZ_CHECK(n >= 1 && n <= 63 && s[0] != '.' && s[0] != '-');
		for (i = 0; i < n; i++)
			FUZZ_CHECK(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					  "0123456789._-",
					  s[i]) != NULL);
	}
	if (json_get_string(obj, "cluster_certificate", &s) == 0)
		(void)cert_fingerprint_pem(s, strlen(s), fp);
	if (json_get_string(obj, "token", &s) == 0 && join_token_decode(s, strlen(s), &t) == 0)
		join_token_clear(&t);
	if (json_get_string(obj, "expiry", &s) == 0)
		(void)time_parse_rfc3339(s, strlen(s), &when);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t errlen = 1 + (size % 200);
	char *copy = malloc(size ? size : 1), *err = malloc(errlen);
	json_t *obj = (json_t *)1;
	int rc;

	if (copy == NULL || err == NULL)
		abort();
	memcpy(copy, data, size);
	rc = json_parse_object(copy, size, &obj, err, errlen);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	fuzz_check_err(err, errlen);
	if (rc == 0) {
		FUZZ_CHECK(json_is_object(obj));
		fuzz_getters(obj);
		fuzz_fields(obj);
		json_decref(obj);
	} else {
		FUZZ_CHECK(obj == NULL);
	}
	free(err);
	free(copy);
	return 0;
}
