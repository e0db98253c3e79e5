/* duration.c - `90s`, `15m`, `12h`, `7d` (see duration.h). */
#include "common/duration.h"

#include <errno.h>
#include <stdio.h>

static int64_t duration_unit(char c)
{
	switch (c) {
	case 's': return 1;
	case 'm': return 60;
	case 'h': return 3600;
	case 'd': return 86400;
	default: return 0;
	}
}

int duration_parse(struct slice text, int64_t *out_s)
{
	int64_t n = 0, unit;
	size_t i;

	if (text.base == NULL || text.len < 2 || text.len > 12)
		return -EINVAL;
	unit = duration_unit(text.base[text.len - 1]);
	if (unit == 0)
		return -EINVAL;
	for (i = 0; i + 1 < text.len; i++) {
		char c = text.base[i];

		if (c < '0' || c > '9')
			return -EINVAL;
		n = n * 10 + (c - '0'); /* at most 11 digits: no overflow */
	}
	if (n > DURATION_MAX_S / unit)
		return -EINVAL;
	*out_s = n * unit;
	return 0;
}

int duration_format(int64_t s, char *out, size_t outlen)
{
	static const struct {
		int64_t unit;
		char c;
	} units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};
	char c = 's';
	int64_t v = s;
	int n;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (s != 0 && s % units[i].unit == 0) {
			v = s / units[i].unit;
			c = units[i].c;
			break;
		}
	}
	n = snprintf(out, outlen, "%lld%c", (long long)v, c);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}
