/* oidc_config.c - the identity provider's settings and their pure rules (see oidc_config.h). */
#include "server/oidc_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/duration.h"
#include "common/fsutil.h"
#include "common/secret.h"

void oidc_config_defaults(struct oidc_config *c)
{
	snprintf(c->scopes, sizeof(c->scopes), "%s", OIDC_DEFAULT_SCOPES);
	snprintf(c->groups_claim, sizeof(c->groups_claim), "%s", OIDC_DEFAULT_GROUPS_CLAIM);
	c->session_idle_s = OIDC_DEFAULT_SESSION_IDLE_S;
	c->session_max_s = OIDC_DEFAULT_SESSION_MAX_S;
}

/* ---- URLs ---- */

static int oidc_url_port(const char *s, size_t len, int *port)
{
	long long p;

	if (slice_to_int64(slice_make(s, len), 1, 65535, &p) < 0)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

/* Splits "host[:port]" or "[v6][:port]" (authority, len bytes) into out. */
static int oidc_url_authority(const char *a, size_t len, struct oidc_url *out)
{
	const char *host = a, *colon = NULL;
	size_t hlen = len;

	if (len > 0 && a[0] == '[') {
		const char *rb = memchr(a, ']', len);

		if (rb == NULL)
			return -EINVAL;
		host = a + 1;
		hlen = (size_t)(rb - a - 1);
		if ((size_t)(rb + 1 - a) < len) {
			if (rb[1] != ':')
				return -EINVAL;
			colon = rb + 1;
		}
	} else {
		colon = memchr(a, ':', len);
		if (colon != NULL)
			hlen = (size_t)(colon - a);
	}
	if (hlen == 0 || hlen >= sizeof(out->host) || memchr(a, '@', len) != NULL)
		return -EINVAL;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (colon != NULL)
		return oidc_url_port(colon + 1, (size_t)(a + len - colon - 1), &out->port);
	return 0;
}

int oidc_url_parse(const char *url, struct oidc_url *out)
{
	const char *rest, *slash;
	size_t alen;
	int n;

	memset(out, 0, sizeof(*out));
	if (strncmp(url, "https://", 8) == 0) {
		out->tls = 1;
		out->port = 443;
		rest = url + 8;
	} else if (strncmp(url, "http://", 7) == 0) {
		out->port = 80;
		rest = url + 7;
	} else {
		return -EINVAL;
	}
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#')
			return -EINVAL;
	slash = strchr(rest, '/');
	alen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (oidc_url_authority(rest, alen, out) < 0)
		return -EINVAL;
	n = snprintf(out->target, sizeof(out->target), "%s", slash ? slash : "/");
	return n < 0 || (size_t)n >= sizeof(out->target) ? -EINVAL : 0;
}

int oidc_host_is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
	       strncmp(host, "127.", 4) == 0;
}

int oidc_issuer_check(const char *url, char *err, size_t errlen)
{
	struct oidc_url u;

	if (oidc_url_parse(url, &u) < 0) {
		snprintf(err, errlen, "not an http(s) URL: %s", url);
		return -EINVAL;
	}
	if (!u.tls && !oidc_host_is_loopback(u.host)) {
		snprintf(err, errlen,
			 "plain http:// is refused for the identity provider %s (only loopback "
			 "addresses may use it, for development); use https://",
			 url);
		return -EINVAL;
	}
	return 0;
}

/* ---- roles ---- */

static int oidc_rolemap_add(struct oidc_config *c, enum principal_role role, const char *g,
			    size_t len)
{
	struct oidc_rolemap_entry *e;

	if (role == PRINCIPAL_ROLE_NONE || len == 0 || len >= OIDC_GROUP_MAX ||
	    c->nmap >= OIDC_ROLEMAP_MAX)
		return -EINVAL;
	e = &c->map[c->nmap++];
	e->role = role;
	memcpy(e->group, g, len);
	e->group[len] = '\0';
	return 0;
}

int oidc_rolemap_parse(struct oidc_config *c, const char *text)
{
	enum principal_role role = PRINCIPAL_ROLE_NONE;
	const char *p = text;

	if (*p == '\0')
		return -EINVAL;
	for (;;) {
		const char *end = strchr(p, ','), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);

		eq = memchr(p, '=', len);
		if (eq != NULL) {
			role = principal_role_parse(slice_make(p, (size_t)(eq - p)));
			if (oidc_rolemap_add(c, role, eq + 1, len - (size_t)(eq + 1 - p)) < 0)
				return -EINVAL;
		} else if (oidc_rolemap_add(c, role, p, len) < 0) {
			return -EINVAL;
		}
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

static enum principal_role oidc_rolemap_group(const struct oidc_config *c, const json_t *g)
{
	enum principal_role best = PRINCIPAL_ROLE_NONE;
	const char *name = json_string_value(g);
	size_t len = json_string_length(g);

	if (name == NULL || len == 0 || len >= OIDC_GROUP_MAX)
		return best;
	for (size_t i = 0; i < c->nmap; i++)
		if (c->map[i].role > best && strlen(c->map[i].group) == len &&
		    memcmp(c->map[i].group, name, len) == 0)
			best = c->map[i].role;
	return best;
}

enum principal_role oidc_rolemap_role(const struct oidc_config *c, const json_t *groups)
{
	enum principal_role best = PRINCIPAL_ROLE_NONE, r;
	size_t i;

	if (json_is_string(groups))
		return oidc_rolemap_group(c, groups);
	if (!json_is_array(groups))
		return best;
	for (i = 0; i < json_array_size(groups) && i < OIDC_GROUPS_MAX; i++) {
		r = oidc_rolemap_group(c, json_array_get(groups, i));
		if (r > best)
			best = r;
	}
	return best;
}

/* ---- where the browser goes ---- */

int oidc_redirect_uri(const char *public_url, char *out, size_t outlen)
{
	size_t len = strlen(public_url);
	int n;

	while (len > 0 && public_url[len - 1] == '/')
		len--;
	n = snprintf(out, outlen, "%.*s/oidc/callback", (int)len, public_url);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int oidc_public_origin(const char *public_url, char *out, size_t outlen)
{
	const char *rest = strstr(public_url, "://"), *slash;
	size_t len;
	int n;

	if (rest == NULL)
		return -EINVAL;
	slash = strchr(rest + 3, '/');
	len = slash ? (size_t)(slash - public_url) : strlen(public_url);
	n = snprintf(out, outlen, "%.*s", (int)len, public_url);
	return n < 0 || (size_t)n >= outlen ? -EINVAL : 0;
}

int oidc_next_is_safe(struct slice next)
{
	if (next.len == 0 || next.len >= OIDC_URL_MAX || next.base[0] != '/')
		return 0;
	if (next.len > 1 && (next.base[1] == '/' || next.base[1] == '\\'))
		return 0;
	for (size_t i = 0; i < next.len; i++) {
		unsigned char ch = (unsigned char)next.base[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '\\')
			return 0;
	}
	return 1;
}

/* ---- the client secret ---- */

int oidc_secret_read(const char *path, char **out, char *err, size_t errlen)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot read the client secret file %s", path);
		return -ENOENT;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen,
			 "the client secret file %s is readable or writable by others (mode "
			 "%04o); make it 0600",
			 path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	rc = fs_read_file(path, OIDC_SECRET_MAX, &text, &len);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read the client secret file %s", path);
		return rc;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	if (len == 0) {
		free(text);
		snprintf(err, errlen, "the client secret file %s is empty", path);
		return -EINVAL;
	}
	*out = text;
	return 0;
}

/* ---- flags ---- */

static int oidc_config_copy(char *dst, size_t len, const char *v)
{
	int n = snprintf(dst, len, "%s", v);

	return n < 0 || (size_t)n >= len || *v == '\0' ? -EINVAL : 0;
}

static int oidc_config_duration(int64_t *dst, const char *v)
{
	int64_t s;

	if (duration_parse(slice_cstr(v), &s) < 0 || s < 1)
		return -EINVAL;
	*dst = s;
	return 0;
}

int oidc_config_set(struct oidc_config *c, const char *flag, const char *value)
{
	if (strcmp(flag, "oidc-issuer") == 0)
		return oidc_config_copy(c->issuer, sizeof(c->issuer), value);
	if (strcmp(flag, "oidc-client-id") == 0)
		return oidc_config_copy(c->client_id, sizeof(c->client_id), value);
	if (strcmp(flag, "oidc-client-secret-file") == 0)
		return oidc_config_copy(c->secret_file, sizeof(c->secret_file), value);
	if (strcmp(flag, "oidc-scopes") == 0)
		return oidc_config_copy(c->scopes, sizeof(c->scopes), value);
	if (strcmp(flag, "oidc-groups-claim") == 0)
		return oidc_config_copy(c->groups_claim, sizeof(c->groups_claim), value);
	if (strcmp(flag, "oidc-role-map") == 0)
		return oidc_rolemap_parse(c, value);
	if (strcmp(flag, "oidc-ca-file") == 0)
		return oidc_config_copy(c->ca_file, sizeof(c->ca_file), value);
	if (strcmp(flag, "session-idle") == 0)
		return oidc_config_duration(&c->session_idle_s, value);
	if (strcmp(flag, "session-max") == 0)
		return oidc_config_duration(&c->session_max_s, value);
	return -ENOENT;
}

int oidc_config_finish(const struct oidc_config *c, char *err, size_t errlen)
{
	if (c->issuer[0] == '\0') {
		if (c->client_id[0] || c->secret_file[0] || c->nmap || c->ca_file[0]) {
			snprintf(err, errlen, "--oidc-* flags need --oidc-issuer");
			return -EINVAL;
		}
		return 0;
	}
	if (c->client_id[0] == '\0') {
		snprintf(err, errlen, "--oidc-issuer needs --oidc-client-id");
		return -EINVAL;
	}
	if (c->session_idle_s > c->session_max_s) {
		snprintf(err, errlen, "--session-idle is longer than --session-max");
		return -EINVAL;
	}
	return oidc_issuer_check(c->issuer, err, errlen);
}

/* ---- forms and queries ---- */

static int oidc_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int oidc_form_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (; rc == 0 && *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3] = {'%', hex[c >> 4], hex[c & 15]};

		rc = oidc_unreserved(c) ? buf_append(b, s, 1) : buf_append(b, e, 3);
	}
	return rc;
}

int oidc_form_add(struct buf *b, const char *name, const char *value)
{
	int rc = b->len > 0 ? buf_append(b, "&", 1) : 0;

	if (rc == 0)
		rc = oidc_form_escape(b, name);
	if (rc == 0)
		rc = buf_append(b, "=", 1);
	if (rc == 0)
		rc = oidc_form_escape(b, value);
	return rc;
}

/* Decodes one form value of len bytes into out. */
static int oidc_form_decode(const char *v, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)v[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = i + 2 < len ? slice_hexval(v[i + 1]) : -1;
			int lo = hi >= 0 ? slice_hexval(v[i + 2]) : -1;

			if (lo < 0)
				return -EINVAL;
			c = hi << 4 | lo;
			i += 2;
		}
		if (c == 0 || o + 1 >= outlen)
			return -EINVAL;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int oidc_query_get(struct slice query, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), i = 0;

	while (query.base != NULL && i < query.len) {
		const char *p = query.base + i, *amp = memchr(p, '&', query.len - i);
		size_t len = amp ? (size_t)(amp - p) : query.len - i;

		if (len > nlen && p[nlen] == '=' && memcmp(p, name, nlen) == 0)
			return oidc_form_decode(p + nlen + 1, len - nlen - 1, out, outlen);
		i += len + 1;
	}
	return -ENOENT;
}
