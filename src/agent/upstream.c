/*
 * upstream.c - how the agent reaches its local LXD: a unix socket (the usual
 * case, trusted as root) or HTTPS, verified with a CA or pinned by
 * fingerprint, optionally with a client certificate LXD trusts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "agent/agent.h"
#include "net/tls.h"

#define UPSTREAM_DEFAULT_HTTPS_PORT 8443

const char *upstream_default_url(void)
{
	struct stat st;

	if (stat(UPSTREAM_SNAP_SOCKET, &st) == 0)
		return "unix://" UPSTREAM_SNAP_SOCKET;
	return "unix://" UPSTREAM_DEB_SOCKET;
}

static int upstream_err(char *err, size_t errlen, const char *what, const char *url)
{
	agent_errf(err, errlen, "%s: %s", what, url);
	return -EINVAL;
}

static int upstream_set(char **field, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

/*
 * Points u at one target, a unix socket (path, host NULL) or host:port,
 * and forgets the other kind: 0 or -ENOMEM.
 */
static int upstream_target(struct upstream *u, const char *path, const char *host, int port,
			   const char *url)
{
	char **keep = path ? &u->unix_path : &u->host;
	char **drop = path ? &u->host : &u->unix_path;

	if (upstream_set(keep, path ? path : host) < 0 || upstream_set(&u->url, url) < 0)
		return -ENOMEM;
	free(*drop);
	*drop = NULL;
	u->port = port;
	return 0;
}

static int upstream_parse_unix(const char *path, struct upstream *u, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char url[sizeof(sun.sun_path) + 16];
	int n;

	if (path[0] != '/')
		return upstream_err(err, errlen, "the unix socket path must be absolute", path);
	if (strlen(path) >= sizeof(sun.sun_path))
		return upstream_err(err, errlen, "unix socket path too long", path);
	n = snprintf(url, sizeof(url), "unix://%s", path);
	if (n < 0 || (size_t)n >= sizeof(url))
		return upstream_err(err, errlen, "unix socket path too long", path);
	return upstream_target(u, path, NULL, 0, url);
}

/* "host[:port][/]" after "https://". */
static int upstream_parse_https(const char *rest, struct upstream *u, char *err, size_t errlen)
{
	char hp[AGENT_HOST_MAX + 16], host[AGENT_HOST_MAX], url[AGENT_HOST_MAX + 32];
	size_t len = strlen(rest);
	int port, n;

	if (len > 0 && rest[len - 1] == '/')
		len--;
	if (len == 0 || len >= sizeof(hp) || memchr(rest, '/', len) != NULL)
		return upstream_err(err, errlen, "expected https://host[:port]", rest);
	memcpy(hp, rest, len);
	hp[len] = '\0';
	/* No port (no colon, or a bracketed IPv6 address alone): the default. */
	if (strchr(hp, ':') == NULL || hp[len - 1] == ']') {
		n = snprintf(hp + len, sizeof(hp) - len, ":%d", UPSTREAM_DEFAULT_HTTPS_PORT);
		if (n < 0 || (size_t)n >= sizeof(hp) - len)
			return upstream_err(err, errlen, "host name too long", rest);
	}
	if (hostport_split(hp, host, sizeof(host), &port) < 0)
		return upstream_err(err, errlen, "expected https://host[:port]", rest);
	n = snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%d" : "https://%s:%d",
		     host, port);
	if (n < 0 || (size_t)n >= sizeof(url))
		return upstream_err(err, errlen, "host name too long", rest);
	return upstream_target(u, NULL, host, port, url);
}

int upstream_parse(const char *url, struct upstream *u, char *err, size_t errlen)
{
	if (url == NULL || url[0] == '\0')
		return upstream_err(err, errlen, "empty upstream", "");
	if (strncmp(url, "unix://", 7) == 0)
		return upstream_parse_unix(url + 7, u, err, errlen);
	if (url[0] == '/')
		return upstream_parse_unix(url, u, err, errlen);
	if (strncmp(url, "https://", 8) == 0)
		return upstream_parse_https(url + 8, u, err, errlen);
	return upstream_err(err, errlen, "expected unix:///path, /path or https://host[:port]",
			    url);
}

static int upstream_is_hex64(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return i == 64;
}

static int upstream_check(const struct upstream *u, char *err, size_t errlen)
{
	const char *why = NULL;

	if (u->unix_path && (u->ca_file || u->fingerprint || u->cert_file || u->key_file))
		why = "TLS options (CA, fingerprint, certificate, key) need an https:// upstream";
	else if (u->host && !u->ca_file && !u->fingerprint)
		why = "an https:// upstream needs --upstream-ca or --upstream-fingerprint";
	else if (u->ca_file && u->fingerprint)
		why = "give either --upstream-ca or --upstream-fingerprint, not both";
	else if (!u->cert_file != !u->key_file)
		why = "--upstream-cert and --upstream-key go together";
	else if (u->fingerprint && !upstream_is_hex64(u->fingerprint))
		why = "--upstream-fingerprint must be 64 hex digits (SHA-256)";
	if (why == NULL)
		return 0;
	return upstream_err(err, errlen, why, u->url ? u->url : "");
}

SSL_CTX *upstream_tls_new(const struct upstream *u, int *ok, char *err, size_t errlen)
{
	struct tls_client_opts o;
	SSL_CTX *ctx;

	*ok = 0;
	if (upstream_check(u, err, errlen) < 0)
		return NULL;
	if (u->unix_path) {
		*ok = 1;
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	o.ca_file = u->ca_file;
	o.cert_file = u->cert_file;
	o.key_file = u->key_file;
	ctx = tls_client_ctx_new(&o, err, errlen);
	*ok = ctx != NULL;
	return ctx;
}

void upstream_opts(const struct upstream *u, SSL_CTX *tls, struct http_client_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->unix_path = u->unix_path;
	opts->host = u->host;
	opts->port = u->port;
	opts->tls = u->unix_path ? NULL : tls;
	opts->pin = u->fingerprint;
	opts->connect_timeout_ms = 10000;
	opts->response_timeout_ms = 30000;
	opts->idle_timeout_ms = 30000;
}

void upstream_clear(struct upstream *u)
{
	free(u->url);
	free(u->unix_path);
	free(u->host);
	free(u->ca_file);
	free(u->fingerprint);
	free(u->cert_file);
	free(u->key_file);
	memset(u, 0, sizeof(*u));
}
