/* fwdhead.c - header, target and address rules of `lxcm proxy` (fwdhead.h). */
#include "cli/fwdhead.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net/http_hdr.h"

static int fwdhead_starts_nocase(struct slice s, struct slice prefix)
{
	return s.len >= prefix.len && slice_eq_nocase(slice_make(s.base, prefix.len), prefix);
}

int fwdhead_is_hop_by_hop(struct slice name)
{
	return (http_hdr_flags(name) & HTTP_HDR_HOP) != 0;
}

int fwdhead_connection_lists(const struct http_header *hdrs, size_t n, struct slice name)
{
	return http_hdr_has_token(hdrs, n, LIT("Connection"), name);
}

int fwdhead_is_websocket(struct slice upgrade)
{
	return http_hdr_list_has(upgrade, LIT("websocket"));
}

static int fwdhead_add(struct http_header *out, size_t max, size_t *n, struct slice name,
		       struct slice value)
{
	if (*n >= max)
		return -E2BIG;
	out[*n].name = name;
	out[*n].value = value;
	(*n)++;
	return 0;
}

int fwdhead_request(const struct http_header *in, size_t n, struct http_header *out, size_t max)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (http_hdr_drop(in, n, in[i].name, HTTP_HDR_DROP_CLI_REQUEST))
			continue;
		if (fwdhead_add(out, max, &k, in[i].name, in[i].value) < 0)
			return -E2BIG;
	}
	return (int)k;
}

int fwdhead_response(const struct http_header *in, size_t n, int status, struct http_header *out,
		     size_t max)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		struct slice name = in[i].name;

		if (status == 101 && slice_eq_nocase(name, LIT("Upgrade"))) {
			/* The protocol switched to: the point of a 101. */
		} else if (http_hdr_drop(in, n, name, HTTP_HDR_DROP_CLI_RESPONSE)) {
			continue;
		}
		if (fwdhead_add(out, max, &k, name, in[i].value) < 0)
			return -E2BIG;
	}
	if (status == 101 && fwdhead_add(out, max, &k, LIT("Connection"), LIT("Upgrade")) < 0)
		return -E2BIG;
	return (int)k;
}

static int fwdhead_visible(struct slice s)
{
	size_t i;

	for (i = 0; i < s.len; i++)
		if ((unsigned char)s.base[i] < 0x21 || (unsigned char)s.base[i] > 0x7e)
			return 0;
	return 1;
}

int fwdhead_target(const char *prefix, struct slice path, struct slice query, int has_query,
		   char *out, size_t len)
{
	size_t plen = strlen(prefix), need;

	if (http_hdr_path_check(path, NULL) != 0 || (has_query && !fwdhead_visible(query)))
		return -EINVAL;
	need = plen + path.len + (has_query ? 1 + query.len : 0) + 1;
	if (len > FWDHEAD_MAX_TARGET)
		len = FWDHEAD_MAX_TARGET;
	if (need > len)
		return -E2BIG;
	memcpy(out, prefix, plen);
	memcpy(out + plen, path.base, path.len);
	plen += path.len;
	if (has_query) {
		out[plen++] = '?';
		if (query.len)
			memcpy(out + plen, query.base, query.len);
		plen += query.len;
	}
	out[plen] = '\0';
	return 0;
}

struct slice fwdhead_location(struct slice value, const char *server_key, const char *prefix)
{
	struct slice rest = value, key = slice_cstr(server_key), pfx = slice_cstr(prefix);

	if (fwdhead_starts_nocase(rest, LIT("https://"))) {
		rest = slice_make(rest.base + 8, rest.len - 8);
		if (!fwdhead_starts_nocase(rest, key))
			return value;
		rest = slice_make(rest.base + key.len, rest.len - key.len);
	}
	if (!slice_starts_with(rest, pfx))
		return value;
	rest = slice_make(rest.base + pfx.len, rest.len - pfx.len);
	if (rest.len == 0)
		return LIT("/");
	return rest.base[0] == '/' ? rest : value;
}

/* A whole string of digits as a port number in 0..65535. */
static int fwdhead_port(struct slice s, int *port)
{
	long long v;

	if (s.len == 0 || s.len > 5 || s.base[0] == '+' || s.base[0] == '-' ||
	    slice_to_int64(s, 0, 65535, &v) != 0)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

static int fwdhead_loopback(const char *host, char out[64])
{
	struct in6_addr a6;
	struct in_addr a4;

	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &a4) == 1) {
		if ((ntohl(a4.s_addr) >> 24) != 127)
			return -EPERM;
		return inet_ntop(AF_INET, &a4, out, 64) ? 0 : -EINVAL;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&a6))
			return -EPERM;
		return inet_ntop(AF_INET6, &a6, out, 64) ? 0 : -EINVAL;
	}
	return -EINVAL;
}

int fwdhead_parse_listen(const char *s, char host[64], int *port)
{
	const char *colon, *hstart;
	char h[64];
	size_t hlen;

	colon = strrchr(s, ':');
	if (colon == NULL) {
		if (fwdhead_port(slice_cstr(s), port) != 0)
			return -EINVAL;
		return fwdhead_loopback("127.0.0.1", host);
	}
	hstart = s;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		hstart++;
		hlen -= 2;
	} else if (memchr(s, ':', hlen) != NULL) {
		return -EINVAL; /* an IPv6 address needs brackets */
	}
	if (hlen == 0 || hlen >= sizeof(h) || fwdhead_port(slice_cstr(colon + 1), port) != 0)
		return -EINVAL;
	memcpy(h, hstart, hlen);
	h[hlen] = '\0';
	return fwdhead_loopback(h, host);
}

int fwdhead_listen_unix(const char *s, const char **path)
{
	if (strncmp(s, "unix:", 5) != 0)
		return 0;
	*path = s + 5;
	if (**path == '\0')
		return -EINVAL;
	if (strlen(*path) > FWDHEAD_MAX_UNIX_PATH)
		return -ENAMETOOLONG;
	return 1;
}

int fwdhead_host_ok(struct slice host, const char *listen_host, int port)
{
	struct slice name = host, portpart = SLICE_NULL, lh = slice_cstr(listen_host);
	const char *p;
	int v6 = strchr(listen_host, ':') != NULL, hport;

	if (host.len > 0 && host.base[0] == '[') {
		p = memchr(host.base, ']', host.len);
		if (p == NULL)
			return 0;
		name = slice_make(host.base + 1, (size_t)(p - host.base) - 1);
		portpart = slice_make(p + 1, host.len - (size_t)(p + 1 - host.base));
		if (!v6)
			return 0;
	} else {
		p = host.len ? memchr(host.base, ':', host.len) : NULL;
		if (p != NULL) {
			name = slice_make(host.base, (size_t)(p - host.base));
			portpart = slice_make(p, host.len - name.len);
		}
		if (v6 && !slice_eq_nocase(name, LIT("localhost")))
			return 0;
	}
	if (!slice_eq_nocase(name, lh) && !slice_eq_nocase(name, LIT("localhost")))
		return 0;
	if (portpart.len == 0)
		return port == 80;
	if (portpart.base[0] != ':')
		return 0;
	return fwdhead_port(slice_make(portpart.base + 1, portpart.len - 1), &hport) == 0 &&
	       hport == port;
}

int fwdhead_origin_ok(struct slice origin, const char *listen_host, int port)
{
	if (!fwdhead_starts_nocase(origin, LIT("http://")))
		return 0;
	return fwdhead_host_ok(slice_make(origin.base + 7, origin.len - 7), listen_host, port);
}
