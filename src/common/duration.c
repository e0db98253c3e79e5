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
	case 'w': return 7 * 86400;
	default: return 0;
	}
}

int duration_parse(struct slice text, int64_t *out_s)
{
	int64_t total = 0, v, unit;
	size_t i = 0;

	if (text.base == NULL || text.len == 0)
		return -EINVAL;
	while (i < text.len) {
		if (text.base[i] < '0' || text.base[i] > '9')
			return -EINVAL;
		for (v = 0; i < text.len && text.base[i] >= '0' && text.base[i] <= '9'; i++) {
			v = v * 10 + (text.base[i] - '0');
			if (v > DURATION_MAX_S)
				return -EINVAL;
		}
		unit = i < text.len ? duration_unit(text.base[i++]) : 0;
		if (unit == 0 || v > (DURATION_MAX_S - total) / unit)
			return -EINVAL;
		total += v * unit;
	}
	*out_s = total;
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
