/* json_util.c - strict JSON object parsing and typed getters. */
#include "common/json_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * Writes a message into err; truncation is acceptable for a diagnostic, so it
 * is detected and simply left cut short. Bytes that are not printable ASCII
 * (jansson quotes pieces of the input) become '?', keeping err safe to log
 * and to put into a JSON error envelope.
 */
static void json_util_err(char *err, size_t errlen, const char *prefix, const char *text)
{
	char *p;
	int n;

	if (err == NULL || errlen == 0)
		return;
	n = snprintf(err, errlen, "%s%s", prefix, text);
	if (n < 0) {
		err[0] = '\0';
		return;
	}
	for (p = err; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	}
}

int json_parse_object(const char *data, size_t len, json_t **out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (data == NULL) {
		data = "";
		len = 0;
	}
	/* DECODE_ANY so that a valid non-object gets the clearer message. */
	j = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (j == NULL) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return -ENOMEM;
		json_util_err(err, errlen, "invalid JSON: ", jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		json_util_err(err, errlen, "expected a JSON object", "");
		return -EINVAL;
	}
	*out = j;
	return 0;
}

/* Looks up key in obj: 0, -ENOENT, or -EINVAL if obj is not an object. */
static int json_util_lookup(json_t *obj, const char *key, json_t **v)
{
	if (!json_is_object(obj) || key == NULL)
		return -EINVAL;
	*v = json_object_get(obj, key);
	return *v ? 0 : -ENOENT;
}

int json_get_string(json_t *obj, const char *key, const char **out)
{
	json_t *v;
	const char *s;
	int rc = json_util_lookup(obj, key, &v);

	if (rc < 0)
		return rc;
	if (!json_is_string(v))
		return -EINVAL;
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return -EINVAL;
	*out = s;
	return 0;
}

int json_get_int(json_t *obj, const char *key, long long *out)
{
	json_t *v;
	int rc = json_util_lookup(obj, key, &v);

	if (rc < 0)
		return rc;
	if (!json_is_integer(v))
		return -EINVAL;
	*out = (long long)json_integer_value(v);
	return 0;
}
