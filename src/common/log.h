/*
 * log.h - one line per event on stderr: time, level, function, message,
 * and for some events named fields (a proxied request's id, status, ...).
 * Daemon code logs once, where a failure is understood (STYLE.md rule 3).
 *
 * Two formats (--log-format): text, as people read it,
 *   2026-12-07T23:21:51.123Z lxcm-server info proxy_log: GET /1.0 200 request_id=ab12 status=200
 * and JSON lines, one object per line, for log shippers:
 *   {"ts":"2026-12-07T23:21:51.123Z","level":"info","prog":"lxcm-server",
 *    "func":"proxy_log","msg":"GET /1.0 200","request_id":"ab12","status":200}
 * Fields sit beside ts, level, prog, func and msg (whose names they must
 * not take). In JSON every string is escaped (quotes, backslashes, control
 * characters; invalid UTF-8 becomes U+FFFD), so peer bytes in a message or
 * a field never break a line; in text a field value is quoted the same way
 * when it holds anything but plain visible ASCII. A line longer than
 * LOG_LINE_MAX is cut inside its strings, marked "...", and stays valid.
 */
#ifndef LXCM_LOG_H
#define LXCM_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

#define LOG_LINE_MAX 8192
#define LOG_MAX_FIELDS 16

/* A named value of an event: key is a literal of [a-z_]; str NULL means num. */
struct log_field {
	const char *key;
	const char *str;
	int64_t num;
};
#define LOG_FSTR(k, v) ((struct log_field){(k), (v) != NULL ? (v) : "", 0})
#define LOG_FINT(k, v) ((struct log_field){(k), NULL, (int64_t)(v)})

void log_set_level(enum log_level level);
void log_set_prefix(const char *prefix);
/* Set once at start, before other threads log. */
void log_set_format(enum log_format format);
/* "text" or "json" into *out: 0, or -EINVAL. */
int log_format_parse(const char *s, enum log_format *out);
/* 1 when a line of this level would be written. */
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* log_msg with fields (at most LOG_MAX_FIELDS; more are left out). */
void log_event(enum log_level level, const char *func, const struct log_field *fields,
	       size_t nfields, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Formats one line without its newline into out (cap bytes, at least 64;
 * NUL-terminated) and returns its length. ts is the time as text, prog the
 * program's name. Exposed for tests.
 */
size_t log__format(char *out, size_t cap, enum log_format format, const char *ts,
		   const char *prog, enum log_level level, const char *func,
		   const struct log_field *fields, size_t nfields, const char *msg);

#define LOG_DEBUG(...) log_msg(LOG_LEVEL_DEBUG, __func__, __VA_ARGS__)
#define LOG_INFO(...) log_msg(LOG_LEVEL_INFO, __func__, __VA_ARGS__)
#define LOG_WARN(...) log_msg(LOG_LEVEL_WARN, __func__, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(LOG_LEVEL_ERROR, __func__, __VA_ARGS__)

#endif
