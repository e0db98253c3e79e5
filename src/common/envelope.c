/* envelope.c - LXD-style JSON response envelopes. */
#include "common/envelope.h"

#include <string.h>

#define ENVELOPE_DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

/*
 * Builds the envelope object; every field is added in wire order (jansson
 * keeps insertion order). Steals metadata. NULL on allocation failure.
 */
static json_t *envelope_build(const char *type, const char *status, int status_code, int error_code,
			      json_t *error, json_t *metadata)
{
	json_t *o = json_object();
	int bad = 0;

	if (metadata == NULL)
		metadata = json_null();
	if (o == NULL || error == NULL) {
		json_decref(error);
		json_decref(metadata);
		json_decref(o);
		return NULL;
	}
	/* json_object_set_new consumes the value even when it fails. */
	bad |= json_object_set_new(o, "type", json_string(type));
	bad |= json_object_set_new(o, "status", json_string(status));
	bad |= json_object_set_new(o, "status_code", json_integer(status_code));
	bad |= json_object_set_new(o, "operation", json_string(""));
	bad |= json_object_set_new(o, "error_code", json_integer(error_code));
	bad |= json_object_set_new(o, "error", error);
	bad |= json_object_set_new(o, "metadata", metadata);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static char *envelope_dump(json_t *o, size_t *len)
{
	char *s;

	if (len)
		*len = 0;
	if (o == NULL)
		return NULL;
	s = json_dumps(o, ENVELOPE_DUMP_FLAGS);
	json_decref(o);
	if (s != NULL && len)
		*len = strlen(s);
	return s;
}

char *envelope_sync(json_t *metadata, size_t *len)
{
	return envelope_dump(envelope_build("sync", "Success", 200, 0, json_string(""), metadata),
			     len);
}

char *envelope_error(int http_code, const char *message, size_t *len)
{
	json_t *err = message ? json_string(message) : NULL;

	/* json_string refuses invalid UTF-8; fall back to the reason phrase. */
	if (err == NULL)
		err = json_string(envelope_status_text(http_code));
	return envelope_dump(envelope_build("error", "", 0, http_code, err, json_null()), len);
}

static const struct {
	int code;
	const char *text;
} envelope_reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Request Entity Too Large"},
    {414, "Request URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Requested Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Entity"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {507, "Insufficient Storage"},
    {511, "Network Authentication Required"},
};

const char *envelope_status_text(int http_code)
{
	size_t i;

	for (i = 0; i < sizeof(envelope_reasons) / sizeof(envelope_reasons[0]); i++) {
		if (envelope_reasons[i].code == http_code)
			return envelope_reasons[i].text;
	}
	return "Unknown";
}
