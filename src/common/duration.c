/* duration.c - "90s", "15m", "12h", "7d", "1h30m" (see duration.h). */
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

int duration_parse(struct slice s, int64_t *secs)
{
	int64_t total = 0, v, mult;
	size_t i = 0;

	if (s.base == NULL || s.len == 0)
		return -EINVAL;
	while (i < s.len) {
		if (s.base[i] < '0' || s.base[i] > '9')
			return -EINVAL;
		for (v = 0; i < s.len && s.base[i] >= '0' && s.base[i] <= '9'; i++) {
			v = v * 10 + (s.base[i] - '0');
			if (v > DURATION_MAX)
				return -EINVAL;
		}
		mult = i < s.len ? duration_unit(s.base[i]) : 0;
		if (mult == 0)
			return -EINVAL;
		i++;
		if (v > (DURATION_MAX - total) / mult)
			return -EINVAL;
		total += v * mult;
	}
	if (total == 0)
		return -EINVAL;
	*secs = total;
	return 0;
}

int duration_format(int64_t secs, char *out, size_t len)
{
	static const struct {
		char unit;
		int64_t mult;
	} units[] = {{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}};
	char unit = 's';
	int64_t v = secs;
	int n;

	for (size_t i = 0; secs > 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (secs % units[i].mult == 0) {
			unit = units[i].unit;
			v = secs / units[i].mult;
			break;
		}
	}
	n = snprintf(out, len, "%lld%c", (long long)v, unit);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}
