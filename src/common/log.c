/* log.c - timestamped log lines on stderr. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum log_level log_threshold = LOG_LEVEL_INFO;
static const char *log_prefix = "lxcm";

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

void log_set_prefix(const char *prefix)
{
	log_prefix = prefix;
}

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char line[2048], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	if (level < log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	if (strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		ts[0] = '\0';
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* A truncated line is still worth printing; mark it. */
	fprintf(stderr, "%s.%03ldZ %s %s %s: %s%s\n", ts, now.tv_nsec / 1000000L, log_prefix,
		names[level], func, line, (size_t)n >= sizeof(line) ? "..." : "");
}
