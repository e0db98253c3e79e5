/* hostport.c - "host:port" as join tokens and agent.json carry them. */
#include <errno.h>
#include <string.h>

#include "agent/agent.h"
#include "common/slice.h"

/* Letters, digits and the punctuation of DNS names and IP literals only. */
static int hostport_char_ok(char c, int v6)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	if (c == '.' || c == '-' || c == '_')
		return 1;
	return v6 && (c == ':' || c == '%');
}

int hostport_split(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon, *h = s;
	size_t hlen, i;
	long long p;

	if (s == NULL || hostlen == 0)
		return -EINVAL;
	colon = strrchr(s, ':');
	if (colon == NULL)
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (s[0] == '[') {
		/* "[v6]:port": the bracket must close right before the colon. */
		if (hlen < 3 || s[hlen - 1] != ']')
			return -EINVAL;
		h = s + 1;
		hlen -= 2;
	} else if (memchr(s, ':', hlen) != NULL) {
		return -EINVAL; /* a bare IPv6 address is ambiguous */
	}
	if (hlen == 0 || hlen >= hostlen)
		return -EINVAL;
	for (i = 0; i < hlen; i++)
		if (!hostport_char_ok(h[i], h != s))
			return -EINVAL;
	if (slice_to_int64(slice_cstr(colon + 1), 1, 65535, &p) < 0)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}
