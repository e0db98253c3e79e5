/* log.c - timestamped log lines on stderr, as text or JSON (see log.h). */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/*
 * Room kept at the end of a line for what follows a cut string: the
 * closing of the line and, for each later field, its key and an empty
 * value (LOG_MAX_FIELDS keys of a few dozen bytes).
 */
#define LOG_RESERVE 1024
#define LOG_MSG_MAX 4096

static enum log_level log_threshold = LOG_LEVEL_INFO;
static enum log_format log_fmt = LOG_FORMAT_TEXT;
static const char *log_prefix = "lxcm";
static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

void log_set_prefix(const char *prefix)
{
	log_prefix = prefix;
}

void log_set_format(enum log_format format)
{
	log_fmt = format;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (s != NULL && strcmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (s != NULL && strcmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -EINVAL;
	return 0;
}

int log_enabled(enum log_level level)
{
	return level >= log_threshold;
}

/* ---- a bounded line ---- */

struct log_out {
	char *p;
	size_t len, cap; /* cap excludes the NUL */
};

static void lo_put(struct log_out *o, const char *s, size_t n)
{
	if (n > o->cap - o->len)
		n = o->cap - o->len;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void lo_str(struct log_out *o, const char *s)
{
	lo_put(o, s, strlen(s));
}

/* Length of the valid UTF-8 sequence (RFC 3629) at s, n bytes left, or 0. */
static size_t log_utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		lo = c == 0xe0 ? 0xa0 : lo; /* no overlong form */
		hi = c == 0xed ? 0x9f : hi; /* no surrogate */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		lo = c == 0xf0 ? 0x90 : lo;
		hi = c == 0xf4 ? 0x8f : hi; /* nothing above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* The escape of one byte of s (or of a sequence: *adv), into e; its length. */
static size_t log_escape_one(const unsigned char *s, size_t n, char e[8], size_t *adv)
{
	static const char hex[] = "0123456789abcdef";
	unsigned c = s[0];

	*adv = 1;
	switch (c) {
	case '"': memcpy(e, "\\\"", 2); return 2;
	case '\\': memcpy(e, "\\\\", 2); return 2;
	case '\n': memcpy(e, "\\n", 2); return 2;
	case '\r': memcpy(e, "\\r", 2); return 2;
	case '\t': memcpy(e, "\\t", 2); return 2;
	default: break;
	}
	if (c < 0x20 || c == 0x7f) {
		memcpy(e, "\\u00", 4);
		e[4] = hex[c >> 4];
		e[5] = hex[c & 15];
		return 6;
	}
	if (c < 0x80) {
		e[0] = (char)c;
		return 1;
	}
	*adv = log_utf8_len(s, n);
	if (*adv == 0) {
		*adv = 1;
		memcpy(e, "\\ufffd", 6);
		return 6;
	}
	memcpy(e, s, *adv);
	return *adv;
}

/*
 * Writes s as a JSON string, quotes included. What does not fit before
 * the reserve at the end of the line is cut and marked "...".
 */
static void lo_json_str(struct log_out *o, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0, adv, el;
	size_t limit = o->cap > LOG_RESERVE ? o->cap - LOG_RESERVE : 0;
	char e[8];

	lo_put(o, "\"", 1);
	while (i < n) {
		el = log_escape_one(s + i, n - i, e, &adv);
		if (o->len + el + 3 > limit) {
			lo_put(o, "...", 3);
			break;
		}
		lo_put(o, e, el);
		i += adv;
	}
	lo_put(o, "\"", 1);
}

/* A text field value goes as it is when it is plain visible ASCII, else quoted. */
static int log_text_plain(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '"' ||
		    *s == '\\' || *s == '=')
			return 0;
	return 1;
}

static void lo_num(struct log_out *o, int64_t v)
{
	char num[24];
	int k = snprintf(num, sizeof(num), "%lld", (long long)v);

	if (k > 0 && (size_t)k < sizeof(num))
		lo_put(o, num, (size_t)k);
}

/*
 * The fields: ` key=value` in text (a plain value as it is, another
 * quoted as JSON), `,"key":value` in JSON. Keys are literals of [a-z_]
 * (log.h), never cut: the reserve holds them.
 */
static void log_fields(struct log_out *o, const struct log_field *f, size_t n, int json)
{
	for (size_t i = 0; i < n; i++) {
		lo_str(o, json ? ",\"" : " ");
		lo_str(o, f[i].key);
		lo_str(o, json ? "\":" : "=");
		if (f[i].str == NULL)
			lo_num(o, f[i].num);
		else if (!json && log_text_plain(f[i].str) &&
			 strlen(f[i].str) + o->len + LOG_RESERVE < o->cap)
			lo_str(o, f[i].str);
		else
			lo_json_str(o, f[i].str);
	}
}

size_t log__format(char *out, size_t cap, enum log_format format, const char *ts,
		   const char *prog, enum log_level level, const char *func,
		   const struct log_field *fields, size_t nfields, const char *msg)
{
	struct log_out o = {out, 0, cap - 1};
	const char *lvl = log_level_names[level];

	if (nfields > LOG_MAX_FIELDS)
		nfields = LOG_MAX_FIELDS;
	if (format == LOG_FORMAT_JSON) {
		lo_str(&o, "{\"ts\":");
		lo_json_str(&o, ts);
		lo_str(&o, ",\"level\":");
		lo_json_str(&o, lvl);
		lo_str(&o, ",\"prog\":");
		lo_json_str(&o, prog);
		lo_str(&o, ",\"func\":");
		lo_json_str(&o, func);
		lo_str(&o, ",\"msg\":");
		lo_json_str(&o, msg);
		log_fields(&o, fields, nfields, 1);
		lo_put(&o, "}", 1);
	} else {
		lo_str(&o, ts);
		lo_put(&o, " ", 1);
		lo_str(&o, prog);
		lo_put(&o, " ", 1);
		lo_str(&o, lvl);
		lo_put(&o, " ", 1);
		lo_str(&o, func);
		lo_put(&o, ": ", 2);
		/* Text lines keep the message as it is, as they always did. */
		if (strlen(msg) + o.len + LOG_RESERVE > o.cap) {
			lo_put(&o, msg, o.cap > o.len + LOG_RESERVE ? o.cap - o.len - LOG_RESERVE : 0);
			lo_put(&o, "...", 3);
		} else {
			lo_str(&o, msg);
		}
		log_fields(&o, fields, nfields, 0);
	}
	out[o.len] = '\0';
	return o.len;
}

/* "2026-12-07T23:21:51.123Z" */
static void log_timestamp(char *ts, size_t len)
{
	struct timespec now;
	struct tm tm;
	char sec[24];

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	if (strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		sec[0] = '\0';
	if (snprintf(ts, len, "%s.%03ldZ", sec, now.tv_nsec / 1000000L) >= (int)len)
		ts[0] = '\0';
}

__attribute__((format(printf, 5, 0))) static void
log_vevent(enum log_level level, const char *func, const struct log_field *fields, size_t nfields,
	   const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX], line[LOG_LINE_MAX + 1], ts[40];
	size_t len;
	int n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	/* A truncated message is still worth printing; mark it. */
	if ((size_t)n >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	log_timestamp(ts, sizeof(ts));
	len = log__format(line, sizeof(line) - 1, log_fmt, ts, log_prefix, level, func, fields,
			  nfields, msg);
	line[len++] = '\n';
	/* One write per line: lines of several threads do not interleave. */
	fwrite(line, 1, len, stderr);
}

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	va_list ap;

	if (level < log_threshold)
		return;
	va_start(ap, fmt);
	log_vevent(level, func, NULL, 0, fmt, ap);
	va_end(ap);
}

void log_event(enum log_level level, const char *func, const struct log_field *fields,
	       size_t nfields, const char *fmt, ...)
{
	va_list ap;

	if (level < log_threshold)
		return;
	va_start(ap, fmt);
	log_vevent(level, func, fields, nfields, fmt, ap);
	va_end(ap);
}
