/*
 * timefmt.h - clocks and RFC 3339 timestamps.
 *
 * Wall-clock times are int64_t Unix seconds everywhere in lxcm; on the wire
 * they are RFC 3339 strings. Durations and timeouts use the monotonic clock.
 */
#ifndef LXCM_TIMEFMT_H
#define LXCM_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Longest string time_format_rfc3339 writes, with its NUL. */
#define TIME_RFC3339_LEN 21

/* The wall clock in Unix seconds. */
int64_t time_now(void);

/* A monotonic clock in milliseconds, with an arbitrary origin. */
int64_t time_now_ms(void);

/*
 * Writes t as "2026-11-24T22:58:01Z" (UTC, no fraction) and a NUL.
 * Returns 0, -ENOSPC if len < TIME_RFC3339_LEN, -ERANGE if the year is not
 * in 0000..9999.
 */
int time_format_rfc3339(int64_t t, char *out, size_t len);

/*
 * Parses exactly len bytes of an RFC 3339 date-time, as Go's time.RFC3339 and
 * time.RFC3339Nano write them: "YYYY-MM-DDTHH:MM:SS", an optional fraction
 * of 1 to 9 digits (dropped: the result is whole seconds), then "Z" or an
 * offset "+hh:mm" / "-hh:mm". Upper-case T and Z only, no leap second, no
 * surrounding space. Stores Unix seconds (UTC) in *out and returns 0, or
 * returns -EINVAL and leaves *out alone. s need not be NUL-terminated.
 */
int time_parse_rfc3339(const char *s, size_t len, int64_t *out);

#endif
