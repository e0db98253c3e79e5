/* jointoken.c - MicroCloud join token encoding and strict decoding. */
#include "common/jointoken.h"

#include "common/base64.h"
#include "common/json_util.h"
#include "common/secret.h"
#include "common/timefmt.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Standard padded base64 of len bytes into a malloc'd string. */
static char *jt_b64_encode(const unsigned char *in, size_t len)
{
	size_t olen = base64_encoded_len(len);
	char *out = olen == SIZE_MAX ? NULL : malloc(olen + 1);

	if (out == NULL)
		return NULL;
	base64_encode(in, len, out);
	out[olen] = '\0';
	return out;
}

/* Checks 64 hex digits and writes them in lower case plus a NUL to out. */
static int jt_fingerprint(const char *in, size_t len, char out[65])
{
	size_t i;

	if (len != 64)
		return -EINVAL;
	for (i = 0; i < 64; i++) {
		char c = in[i];

		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
		out[i] = c;
	}
	out[64] = '\0';
	return 0;
}

static int jt_valid_string(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* The JSON object of t, fields in wire order; NULL on allocation failure. */
static json_t *jt_to_json(const struct join_token *t, const char *fp, const char *exp)
{
	json_t *o = json_object(), *addrs = json_array();
	size_t i;
	int bad = 0;

	if (o == NULL || addrs == NULL) {
		json_decref(o);
		json_decref(addrs);
		return NULL;
	}
	for (i = 0; i < t->naddresses; i++)
		bad |= json_array_append_new(addrs, json_string(t->addresses[i]));
	bad |= json_object_set_new(o, "server_name", json_string(t->server_name));
	bad |= json_object_set_new(o, "fingerprint", json_string(fp));
	bad |= json_object_set_new(o, "addresses", addrs);
	bad |= json_object_set_new(o, "secret", json_string(t->secret));
	bad |= json_object_set_new(o, "expires_at", json_string(exp));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int jt_check(const struct join_token *t, char fp[65], char exp[TIME_RFC3339_LEN])
{
	size_t i;

	if (t == NULL || !jt_valid_string(t->server_name) || !jt_valid_string(t->secret) ||
	    t->fingerprint == NULL ||
	    jt_fingerprint(t->fingerprint, strlen(t->fingerprint), fp) < 0)
		return -EINVAL;
	if (t->naddresses == 0 || t->naddresses > JOIN_TOKEN_MAX_ADDRESSES || t->addresses == NULL)
		return -EINVAL;
	for (i = 0; i < t->naddresses; i++) {
		if (!jt_valid_string(t->addresses[i]))
			return -EINVAL;
	}
	return time_format_rfc3339(t->expires_at, exp, TIME_RFC3339_LEN) < 0 ? -EINVAL : 0;
}

int join_token_encode(const struct join_token *t, char **out)
{
	char fp[65], exp[TIME_RFC3339_LEN];
	json_t *o;
	char *js;
	int rc;

	*out = NULL;
	if ((rc = jt_check(t, fp, exp)) < 0)
		return rc;
	o = jt_to_json(t, fp, exp);
	if (o == NULL)
		return -EINVAL; /* invalid UTF-8 (json_string refuses it) or no memory */
	js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (js == NULL)
		return -ENOMEM;
	*out = jt_b64_encode((const unsigned char *)js, strlen(js));
	secret_wipe(js, strlen(js));
	free(js);
	return *out ? 0 : -ENOMEM;
}

/* A required non-empty string field, copied into *dst. */
static int jt_get_str(json_t *o, const char *key, char **dst)
{
	const char *s;

	if (json_get_string(o, key, &s) < 0 || s[0] == '\0')
		return -EINVAL;
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

static int jt_get_fingerprint(json_t *o, struct join_token *t)
{
	const char *s;
	char fp[65];

	if (json_get_string(o, "fingerprint", &s) < 0 || jt_fingerprint(s, strlen(s), fp) < 0)
		return -EINVAL;
	t->fingerprint = strdup(fp);
	return t->fingerprint ? 0 : -ENOMEM;
}

static int jt_get_addresses(json_t *o, struct join_token *t)
{
	json_t *arr = json_object_get(o, "addresses"), *v;
	size_t i, n;
	const char *s;

	if (!json_is_array(arr))
		return -EINVAL;
	n = json_array_size(arr);
	if (n == 0 || n > JOIN_TOKEN_MAX_ADDRESSES)
		return -EINVAL;
	t->addresses = calloc(n, sizeof(*t->addresses));
	if (t->addresses == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		v = json_array_get(arr, i);
		if (!json_is_string(v))
			return -EINVAL;
		s = json_string_value(v);
		if (s[0] == '\0' || strlen(s) != json_string_length(v))
			return -EINVAL;
		t->addresses[i] = strdup(s);
		if (t->addresses[i] == NULL)
			return -ENOMEM;
		t->naddresses = i + 1;
	}
	return 0;
}

static int jt_get_expiry(json_t *o, struct join_token *t)
{
	const char *s;

	if (json_get_string(o, "expires_at", &s) < 0)
		return -EINVAL;
	return time_parse_rfc3339(s, strlen(s), &t->expires_at);
}

static int jt_from_json(json_t *o, struct join_token *t)
{
	int rc;

	if ((rc = jt_get_str(o, "server_name", &t->server_name)) < 0 ||
	    (rc = jt_get_fingerprint(o, t)) < 0 || (rc = jt_get_addresses(o, t)) < 0 ||
	    (rc = jt_get_str(o, "secret", &t->secret)) < 0 || (rc = jt_get_expiry(o, t)) < 0)
		return rc;
	return 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int join_token_decode(const char *data, size_t len, struct join_token *out)
{
	unsigned char *raw = NULL;
	size_t rawlen = 0, rawcap = 0;
	json_t *o = NULL;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (data == NULL || len > JOIN_TOKEN_MAX)
		return -EINVAL;
	while (len > 0 && is_space(data[0])) {
		data++;
		len--;
	}
	while (len > 0 && is_space(data[len - 1]))
		len--;
	if (len == 0 || len % 4 != 0)
		return -EINVAL;
	rawcap = len / 4 * 3;
	raw = malloc(rawcap);
	if (raw == NULL)
		return -ENOMEM;
	/* Strict: each token has exactly one text (non-canonical bits refused). */
	if (base64_decode_strict(data, len, raw, &rawlen) < 0)
		goto out;
	if ((rc = json_parse_object((const char *)raw, rawlen, &o, NULL, 0)) < 0)
		goto out;
	rc = jt_from_json(o, out);
out:
	json_decref(o);
	secret_wipe(raw, rawcap);
	free(raw);
	if (rc < 0)
		join_token_clear(out);
	return rc;
}

void join_token_clear(struct join_token *t)
{
	size_t i;

	if (t == NULL)
		return;
	free(t->server_name);
	free(t->fingerprint);
	if (t->addresses != NULL) {
		for (i = 0; i < t->naddresses; i++)
			free(t->addresses[i]);
		free(t->addresses);
	}
	if (t->secret != NULL) {
		secret_wipe(t->secret, strlen(t->secret));
		free(t->secret);
	}
	memset(t, 0, sizeof(*t));
}
