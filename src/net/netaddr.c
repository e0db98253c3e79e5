/* netaddr.c - IP addresses and CIDR ranges (see netaddr.h). */
#include "net/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t net_v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int net_addr_parse(const char *s, size_t len, struct net_addr *out)
{
	char text[NET_ADDR_TEXT_MAX];
	uint8_t b6[16];

	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(text) || memchr(s, 0, len))
		return -EINVAL;
	memcpy(text, s, len);
	text[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, out->bytes) == 1)
		return 0;
	if (inet_pton(AF_INET6, text, b6) != 1)
		return -EINVAL;
	net_addr_from_bytes(1, b6, out);
	return 0;
}

void net_addr_from_bytes(int v6, const uint8_t *bytes, struct net_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (v6 && memcmp(bytes, net_v4_mapped, sizeof(net_v4_mapped)) != 0) {
		out->v6 = 1;
		memcpy(out->bytes, bytes, 16);
	} else {
		memcpy(out->bytes, v6 ? bytes + 12 : bytes, 4);
	}
}

void net_addr_format(const struct net_addr *a, char out[NET_ADDR_TEXT_MAX])
{
	if (inet_ntop(a->v6 ? AF_INET6 : AF_INET, a->bytes, out, NET_ADDR_TEXT_MAX) == NULL)
		snprintf(out, NET_ADDR_TEXT_MAX, "?");
}

int net_cidr_parse(const char *s, struct net_cidr *out)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	if (net_addr_parse(s, alen, &out->addr) != 0)
		return -EINVAL;
	max = out->addr.v6 ? 128 : 32;
	out->prefix = max;
	if (slash) {
		char *end;
		long p;

		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		errno = 0;
		p = strtol(slash + 1, &end, 10);
		if (errno || *end || p < 0 || p > max)
			return -EINVAL;
		out->prefix = (int)p;
	}
	return 0;
}

int net_cidr_contains(const struct net_cidr *c, const struct net_addr *a)
{
	int full = c->prefix / 8, rest = c->prefix % 8;

	if (c->addr.v6 != a->v6)
		return 0;
	if (memcmp(c->addr.bytes, a->bytes, (size_t)full) != 0)
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		if ((c->addr.bytes[full] & mask) != (a->bytes[full] & mask))
			return 0;
	}
	return 1;
}

int net_cidr_list_parse(const char *s, struct net_cidr *list, size_t max, size_t *n)
{
	char item[128];

	if (*s == '\0')
		return -EINVAL;
	while (*s) {
		size_t len = strcspn(s, ",");

		if (len == 0 || len >= sizeof(item) || *n >= max)
			return -EINVAL;
		memcpy(item, s, len);
		item[len] = '\0';
		if (net_cidr_parse(item, &list[*n]) != 0)
			return -EINVAL;
		(*n)++;
		s += len;
		if (*s == ',' && *++s == '\0')
			return -EINVAL;
	}
	return 0;
}

int net_cidr_list_contains(const struct net_cidr *list, size_t n, const struct net_addr *a)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (net_cidr_contains(&list[i], a))
			return 1;
	return 0;
}
