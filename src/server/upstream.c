/*
 * upstream.c - what the upstream interface shares: the one mapping from a
 * failed exchange's reason to the status answered to the user (upstream.h).
 */
#include "server/upstream.h"

#include <stdarg.h>
#include <stdio.h>

int upstream_status(enum upstream_reason reason)
{
	switch (reason) {
	case UPSTREAM_BUSY:
		return 503;
	case UPSTREAM_TIMEOUT:
		return 504;
	case UPSTREAM_TOO_LARGE:
		return 413;
	case UPSTREAM_HEAD_TOO_LARGE:
		return 431;
	case UPSTREAM_BAD_REQUEST:
		return 400;
	case UPSTREAM_INTERNAL:
		return 500;
	case UPSTREAM_OK:
	case UPSTREAM_CLOSED:
	case UPSTREAM_INCOMPLETE:
	case UPSTREAM_INVALID:
	default:
		return 502;
	}
}

void upstream_error_set(struct upstream_error *err, enum upstream_reason reason, const char *fmt,
			...)
{
	va_list ap;
	int n;

	err->reason = reason;
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		err->msg[0] = '\0'; /* a truncated message is still a message */
}
