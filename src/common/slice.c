/* slice.c - helpers on pointer + length byte ranges. */
#include "common/slice.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>

int slice_eq_nocase(struct slice a, struct slice b)
{
	return a.len == b.len && (a.len == 0 || strncasecmp(a.base, b.base, a.len) == 0);
}

int slice_starts_with(struct slice s, struct slice prefix)
{
	return s.len >= prefix.len && memcmp(s.base, prefix.base, prefix.len) == 0;
}

int slice_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *slice_dup(struct slice s)
{
	char *p = malloc(s.len + 1);

	if (p == NULL)
		return NULL;
	if (s.len)
		memcpy(p, s.base, s.len);
	p[s.len] = '\0';
	return p;
}

int slice_to_int64(struct slice s, long long min, long long max, long long *out)
{
	char tmp[32];
	char *end;
	long long v;

	if (s.len == 0 || s.len >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s.base, s.len);
	tmp[s.len] = '\0';
	if (tmp[0] != '-' && (tmp[0] < '0' || tmp[0] > '9'))
		return -EINVAL;
	errno = 0;
	v = strtoll(tmp, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}
