/* timefmt.c - clocks and strict RFC 3339 formatting and parsing. */
#include "common/timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

int64_t time_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return (int64_t)time(NULL);
	return (int64_t)ts.tv_sec;
}

int64_t time_now_ms(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int time_format_rfc3339(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	int n;

	if (len < TIME_RFC3339_LEN)
		return -ENOSPC;
	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL)
		return -ERANGE;
	if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return -ERANGE;
	n = snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return 0;
}

/* Reads exactly n decimal digits at s[*pos] into *v; 0 or -EINVAL. */
static int time_digits(const char *s, size_t len, size_t *pos, size_t n, int *v)
{
	size_t i;
	int r = 0;

	if (len - *pos < n)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		char c = s[*pos + i];

		if (c < '0' || c > '9')
			return -EINVAL;
		r = r * 10 + (c - '0');
	}
	*pos += n;
	*v = r;
	return 0;
}

/* Consumes the byte c at s[*pos]; 0 or -EINVAL. */
static int time_expect(const char *s, size_t len, size_t *pos, char c)
{
	if (*pos >= len || s[*pos] != c)
		return -EINVAL;
	(*pos)++;
	return 0;
}

static int time_days_in_month(int year, int mon)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return mon == 2 && leap ? 29 : days[mon - 1];
}

/* Parses "YYYY-MM-DDTHH:MM:SS" into tm, with every field range-checked. */
static int time_parse_base(const char *s, size_t len, size_t *pos, struct tm *tm)
{
	int y, mo, d, h, mi, se;

	if (time_digits(s, len, pos, 4, &y) || time_expect(s, len, pos, '-') ||
	    time_digits(s, len, pos, 2, &mo) || time_expect(s, len, pos, '-') ||
	    time_digits(s, len, pos, 2, &d) || time_expect(s, len, pos, 'T') ||
	    time_digits(s, len, pos, 2, &h) || time_expect(s, len, pos, ':') ||
	    time_digits(s, len, pos, 2, &mi) || time_expect(s, len, pos, ':') ||
	    time_digits(s, len, pos, 2, &se))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > time_days_in_month(y, mo) || h > 23 || mi > 59 ||
	    se > 59)
		return -EINVAL;
	tm->tm_year = y - 1900;
	tm->tm_mon = mo - 1;
	tm->tm_mday = d;
	tm->tm_hour = h;
	tm->tm_min = mi;
	tm->tm_sec = se;
	tm->tm_isdst = 0;
	return 0;
}

/* Skips an optional ".d{1,9}" fraction; 0 or -EINVAL. */
static int time_skip_fraction(const char *s, size_t len, size_t *pos)
{
	size_t n = 0;

	if (*pos >= len || s[*pos] != '.')
		return 0;
	(*pos)++;
	while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
		(*pos)++;
		n++;
	}
	return n >= 1 && n <= 9 ? 0 : -EINVAL;
}

/* Parses "Z" or "+hh:mm" / "-hh:mm" into seconds east of UTC. */
static int time_parse_offset(const char *s, size_t len, size_t *pos, int64_t *off)
{
	int sign, h, m;

	if (*pos >= len)
		return -EINVAL;
	if (s[*pos] == 'Z') {
		(*pos)++;
		*off = 0;
		return 0;
	}
	if (s[*pos] != '+' && s[*pos] != '-')
		return -EINVAL;
	sign = s[*pos] == '-' ? -1 : 1;
	(*pos)++;
	if (time_digits(s, len, pos, 2, &h) || time_expect(s, len, pos, ':') ||
	    time_digits(s, len, pos, 2, &m))
		return -EINVAL;
	if (h > 23 || m > 59)
		return -EINVAL;
	*off = sign * (int64_t)(h * 3600 + m * 60);
	return 0;
}

int time_parse_rfc3339(const char *s, size_t len, int64_t *out)
{
	struct tm tm = {0};
	size_t pos = 0;
	int64_t off;
	time_t t;

	if (s == NULL)
		return -EINVAL;
	if (time_parse_base(s, len, &pos, &tm) || time_skip_fraction(s, len, &pos) ||
	    time_parse_offset(s, len, &pos, &off) || pos != len)
		return -EINVAL;
	errno = 0;
	t = timegm(&tm);
	if (t == (time_t)-1 && errno != 0)
		return -EINVAL;
	*out = (int64_t)t - off;
	return 0;
}
