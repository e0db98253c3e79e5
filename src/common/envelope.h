/*
 * envelope.h - the LXD-style JSON response envelope of MICROCLOUD-PROTOCOL.md.
 *
 * Success:
 *   {"type":"sync","status":"Success","status_code":200,"operation":"",
 *    "error_code":0,"error":"","metadata":...}
 * Error:
 *   {"type":"error","status":"","status_code":0,"operation":"",
 *    "error_code":<http code>,"error":"<message>","metadata":null}
 * Compact JSON, fields in exactly that order. The returned strings are
 * NUL-terminated and malloc'd (caller frees); *len (if len is not NULL) gets
 * their length without the NUL. NULL means out of memory.
 */
#ifndef LXCM_ENVELOPE_H
#define LXCM_ENVELOPE_H

#include <stddef.h>

#include <jansson.h>

/* Takes the reference to metadata, even on failure; NULL is JSON null. */
char *envelope_sync(json_t *metadata, size_t *len);

/*
 * An error envelope for http_code. A NULL message, or one that is not valid
 * UTF-8, is replaced by envelope_status_text(http_code).
 */
char *envelope_error(int http_code, const char *message, size_t *len);

/*
 * The reason phrase for http_code as Go's net/http (and so LXD) spells it,
 * for 200 201 202 204 400 401 403 404 405 408 409 413 415 429 431 500 501
 * 502 503 504; "Unknown" for any other code. A static string.
 */
const char *envelope_status_text(int http_code);

#endif
