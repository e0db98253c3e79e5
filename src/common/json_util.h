/*
 * json_util.h - parsing JSON bodies from peers and reading typed fields.
 *
 * The caller bounds the body size (STYLE.md rule 4); jansson bounds the
 * nesting depth. Strings with an embedded NUL are refused by the getters, so
 * the C strings they hand out are never silently cut short.
 */
#ifndef LXCM_JSON_UTIL_H
#define LXCM_JSON_UTIL_H

#include <stddef.h>

#include <jansson.h>

/*
 * Parses len bytes (not NUL-terminated) that must be exactly one JSON object
 * with no duplicate keys and nothing but whitespace around it. On success
 * *out holds a new reference. On failure returns -EINVAL, sets *out to NULL
 * and, if err is not NULL, writes a short printable-ASCII message fit for a
 * 400 reply: "invalid JSON: <reason>" or "expected a JSON object" (cut short
 * if errlen is small). -ENOMEM if jansson ran out of memory.
 */
int json_parse_object(const char *data, size_t len, json_t **out, char *err, size_t errlen);

/*
 * Reads obj[key] as a string, borrowed from obj (valid while obj lives).
 * 0, -ENOENT if absent, -EINVAL if obj is not an object or the value is not a
 * string (null included) or holds a NUL byte.
 */
int json_get_string(json_t *obj, const char *key, const char **out);

/* As json_get_string, for an integer (a real such as 1.0 is -EINVAL). */
int json_get_int(json_t *obj, const char *key, long long *out);

#endif
