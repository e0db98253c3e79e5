/*
 * client.c - the CLI's requests to the management API: server address, API
 * token, certificate pinning with trust on first use, the LXD envelope, and
 * the one error message a failed request prints.
 *
 * Trust: the management listener has a self-signed certificate, so the
 * client verifies nothing during the handshake and always pins a SHA-256
 * fingerprint instead: the one from --server-fingerprint, else the one
 * remembered in known_servers for "host:port". When neither exists, the
 * client first makes a probe request (GET /1.0/status, without the API
 * token) only to learn the certificate, remembers it, tells the user on
 * stderr, and then sends the real request pinned to it. The API token is
 * therefore never sent over a connection that was not pinned.
 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cli/known_servers.h"
#include "cli/util.h"
#include "common/fsutil.h"
#include "common/json_util.h"
#include "common/secret.h"
#include "net/http_client.h"
#include "net/tls.h"

/* Largest API token accepted, from a file or the environment. */
#define CLIENT_TOKEN_MAX 4096
/* The probe only needs the handshake; its body is not kept. */
#define CLIENT_PROBE_MAX_RESPONSE (64 * 1024)

enum client_pin_source { PIN_EXPLICIT, PIN_KNOWN, PIN_NEW };

struct client_state {
	struct util_server srv;
	char url[300]; /* "https://host:port", for messages */
	char *token;   /* NULL when none was given; wiped on free */
	SSL_CTX *tls;
	char pin[65];
	enum client_pin_source pin_source;
	char ks_path[PATH_MAX]; /* empty when there is no config dir */
};

/* A token goes into a header: one line of printable ASCII, nothing else. */
static int client_token_valid(const char *t, size_t n)
{
	size_t i;

	if (n == 0 || n > CLIENT_TOKEN_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (t[i] < 0x21 || t[i] > 0x7e)
			return 0;
	return 1;
}

/* Reads a token file: one token, surrounding whitespace (a newline) ignored. */
static int client_read_token_file(const char *path, char **out)
{
	char *data;
	size_t len, start = 0;
	int rc = fs_read_file(path, CLIENT_TOKEN_MAX + 64, &data, &len);

	if (rc < 0) {
		fprintf(stderr, "Error: cannot read the token file %s: %s\n", path,
			rc == -E2BIG ? "too large to be a token" : strerror(-rc));
		return -1;
	}
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' ' ||
			   data[len - 1] == '\t'))
		len--;
	while (start < len && (data[start] == ' ' || data[start] == '\t' || data[start] == '\n'))
		start++;
	if (!client_token_valid(data + start, len - start)) {
		fprintf(stderr, "Error: the token file %s does not hold a single API token\n",
			path);
		secret_wipe(data, len);
		free(data);
		return -1;
	}
	memmove(data, data + start, len - start);
	data[len - start] = '\0';
	*out = data;
	return 0;
}

/* --token-file, then LXCM_TOKEN, then LXCM_TOKEN_FILE; none is fine. */
static int client_load_token(const struct cli_ctx *ctx, struct client_state *st)
{
	const char *env = getenv("LXCM_TOKEN");
	const char *file = getenv("LXCM_TOKEN_FILE");

	if (ctx->token_file != NULL)
		return client_read_token_file(ctx->token_file, &st->token);
	if (env != NULL && env[0] != '\0') {
		if (!client_token_valid(env, strlen(env))) {
			fputs("Error: LXCM_TOKEN does not hold a single API token\n", stderr);
			return -1;
		}
		st->token = strdup(env);
		return st->token ? 0 : -1;
	}
	if (file != NULL && file[0] != '\0')
		return client_read_token_file(file, &st->token);
	return 0;
}

static int client_resolve_server(const struct cli_ctx *ctx, struct client_state *st)
{
	const char *url = ctx->server;
	int rc;

	if (url == NULL)
		url = getenv("LXCM_SERVER");
	if (url == NULL || url[0] == '\0')
		url = CLI_DEFAULT_SERVER;
	rc = util_parse_server(url, &st->srv);
	if (rc == -EPROTONOSUPPORT) {
		fprintf(stderr, "Error: invalid server URL \"%s\": only https:// is supported\n",
			url);
		return CLI_EXIT_USAGE;
	}
	if (rc < 0) {
		fprintf(stderr, "Error: invalid server URL \"%s\": expected https://HOST[:PORT]\n",
			url);
		return CLI_EXIT_USAGE;
	}
	rc = snprintf(st->url, sizeof(st->url), "https://%s", st->srv.key);
	return (rc < 0 || (size_t)rc >= sizeof(st->url)) ? CLI_EXIT_USAGE : 0;
}

static void client_fill_opts(const struct client_state *st, struct http_client_opts *o, int pinned)
{
	memset(o, 0, sizeof(*o));
	o->host = st->srv.host;
	o->port = st->srv.port;
	o->tls = st->tls;
	o->host_header = st->srv.key;
	o->pin = pinned ? st->pin : NULL;
}

void client_conn_error_text(const char *url, int err, char *out, size_t len)
{
	int n;

	if (err == CONN_ETLS)
		n = snprintf(out, len,
			     "TLS handshake with %s failed (is it an lxcm management listener?)",
			     url);
	else if (err == CONN_EPIN)
		n = snprintf(out, len,
			     "the certificate of %s does not match the pinned fingerprint", url);
	else if (err == -ETIMEDOUT)
		n = snprintf(out, len, "%s did not answer in time", url);
	else if (err == -E2BIG)
		n = snprintf(out, len, "the response from %s is larger than %d MiB", url,
			     CLI_MAX_RESPONSE / (1024 * 1024));
	else
		n = snprintf(out, len, "cannot connect to %s: %s", url, uv_strerror(err));
	if ((n < 0 || (size_t)n >= len) && len > 0)
		out[len - 1] = '\0'; /* cut: the URL is at most 300 bytes, so still useful */
}

static void client_print_conn_error(const struct client_state *st, int err)
{
	char msg[512];

	client_conn_error_text(st->url, err, msg, sizeof(msg));
	fprintf(stderr, "Error: %s\n", msg);
}

/*
 * Connects without a pin and without the API token, only to read the
 * server's certificate fingerprint. 0 and fp filled, or the error code.
 */
static int client_probe(const struct client_state *st, char fp[65])
{
	struct http_client_opts o;
	struct http_fetch_result res;
	static const struct http_header hdrs[] = {{LIT("User-Agent"), LIT("lxcm")}};
	int rc;

	client_fill_opts(st, &o, 0);
	rc = http_fetch_sync(&o, "GET", "/1.0/status", hdrs, 1, NULL, 0, CLIENT_PROBE_MAX_RESPONSE,
			     &res);
	/* Any answer after the handshake will do, even an error or an oversized one. */
	if (res.peer_fp[0] != '\0') {
		memcpy(fp, res.peer_fp, 65);
		rc = 0;
	} else if (rc == 0) {
		rc = CONN_ETLS;
	}
	http_fetch_result_clear(&res);
	return rc;
}

/* Learns and remembers the certificate of a server seen for the first time. */
static int client_trust_first_use(struct client_state *st)
{
	int rc = client_probe(st, st->pin);

	if (rc < 0) {
		client_print_conn_error(st, rc);
		return -1;
	}
	st->pin_source = PIN_NEW;
	if (st->ks_path[0] == '\0') {
		fprintf(stderr,
			"Note: trusting the certificate of %s (SHA-256 %s) for this command "
			"only: no config directory to remember it in.\n",
			st->srv.key, st->pin);
		return 0;
	}
	rc = known_servers_add(st->ks_path, st->srv.key, st->pin);
	if (rc < 0) {
		fprintf(stderr,
			"Note: trusting the certificate of %s (SHA-256 %s) for this command "
			"only: cannot write %s: %s\n",
			st->srv.key, st->pin, st->ks_path, strerror(-rc));
		return 0;
	}
	fprintf(stderr,
		"Note: first connection to %s; trusting its certificate\n"
		"  SHA-256 %s\n"
		"and remembering it in %s.\n"
		"Compare it with the fingerprint lxcm-server logs when it starts.\n",
		st->srv.key, st->pin, st->ks_path);
	return 0;
}

static int client_resolve_pin(const struct cli_ctx *ctx, struct client_state *st)
{
	int rc;

	if (ctx->fingerprint != NULL) {
		if (util_fingerprint_normalize(ctx->fingerprint, st->pin) != 0) {
			fprintf(stderr,
				"Error: --server-fingerprint \"%s\" is not a SHA-256 fingerprint "
				"(64 hex digits, ':' separators allowed)\n",
				ctx->fingerprint);
			return CLI_EXIT_USAGE;
		}
		st->pin_source = PIN_EXPLICIT;
		return 0;
	}
	if (known_servers_path(st->ks_path, sizeof(st->ks_path)) < 0)
		st->ks_path[0] = '\0';
	rc = st->ks_path[0] ? known_servers_lookup(st->ks_path, st->srv.key, st->pin) : 0;
	if (rc < 0) {
		fprintf(stderr, "Error: cannot read %s: %s\n", st->ks_path, strerror(-rc));
		return -1;
	}
	if (rc == 1) {
		st->pin_source = PIN_KNOWN;
		return 0;
	}
	return client_trust_first_use(st);
}

/*
 * Resolves everything a request needs, once per process. Returns 0, or the
 * exit code after printing why: 2 for a malformed --server or
 * --server-fingerprint, 1 for anything else.
 */
static int client_prepare(struct cli_ctx *ctx)
{
	struct tls_client_opts topts = {0};
	struct client_state *st;
	char err[256];
	int rc;

	if (ctx->client != NULL)
		return 0;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return CLI_EXIT_FAIL;
	ctx->client = st;
	rc = client_resolve_server(ctx, st);
	if (rc != 0)
		return rc;
	if (client_load_token(ctx, st) < 0)
		return CLI_EXIT_FAIL;
	st->tls = tls_client_ctx_new(&topts, err, sizeof(err));
	if (st->tls == NULL) {
		fprintf(stderr, "Error: cannot set up TLS: %s\n", err);
		return CLI_EXIT_FAIL;
	}
	rc = client_resolve_pin(ctx, st);
	return rc < 0 ? CLI_EXIT_FAIL : rc;
}

/* The certificate changed: say so loudly, with the way out. */
static void client_print_pin_mismatch(const struct client_state *st)
{
	char seen[65] = "(unknown)";

	if (client_probe(st, seen) < 0)
		memcpy(seen, "(unknown)", sizeof("(unknown)"));
	if (st->pin_source == PIN_EXPLICIT) {
		fprintf(stderr,
			"Error: the certificate of %s does not match --server-fingerprint.\n"
			"  expected:  %s\n  presented: %s\n",
			st->srv.key, st->pin, seen);
		return;
	}
	fprintf(stderr,
		"Error: the certificate of %s has CHANGED since it was remembered in\n"
		"  %s\n"
		"  remembered: %s\n"
		"  presented:  %s\n"
		"Someone may be intercepting the connection, or the server got a new certificate.\n"
		"If the change is expected, check the new fingerprint out of band, then either\n"
		"remove the line starting with \"%s \" from that file (the next command\n"
		"remembers the new certificate) or pass --server-fingerprint <fingerprint>.\n",
		st->srv.key, st->ks_path, st->pin, seen, st->srv.key);
}

/* The message of an error reply: the envelope's, else the start of the body. */
static void client_error_message(const struct http_fetch_result *res, json_t *env, char *out,
				 size_t len)
{
	const char *msg = util_json_str(env, "error");
	char first[201];
	size_t n;

	if (msg != NULL && msg[0] != '\0') {
		util_sanitize(msg, out, len);
		return;
	}
	n = res->body ? strcspn(res->body, "\r\n") : 0;
	if (n > 0) {
		if (n >= sizeof(first))
			n = sizeof(first) - 1;
		memcpy(first, res->body, n);
		first[n] = '\0';
		util_sanitize(first, out, len);
		return;
	}
	util_sanitize(http_status_text(res->status), out, len);
}

/* Turns a complete HTTP response into metadata or one printed error. */
static int client_handle_response(const struct client_state *st,
				  const struct http_fetch_result *res, json_t **metadata)
{
	json_t *env = NULL, *md;
	const char *type;
	char msg[1024];

	if (res->body_len > 0)
		json_parse_object(res->body, res->body_len, &env, NULL, 0);
	if (res->status < 200 || res->status > 299) {
		client_error_message(res, env, msg, sizeof(msg));
		fprintf(stderr, "Error: %s (HTTP %d)\n", msg, res->status);
		if ((res->status == 401 || res->status == 403) && st->token == NULL)
			fputs("Hint: no API token was given: use --token-file FILE, LXCM_TOKEN or "
			      "LXCM_TOKEN_FILE.\n",
			      stderr);
		json_decref(env);
		return CLI_EXIT_FAIL;
	}
	type = util_json_str(env, "type");
	if (res->body_len > 0 && (type == NULL || strcmp(type, "sync") != 0)) {
		fprintf(stderr, "Error: %s sent a reply that is not an API response (HTTP %d)\n",
			st->url, res->status);
		json_decref(env);
		return CLI_EXIT_FAIL;
	}
	if (metadata != NULL) {
		md = env ? json_object_get(env, "metadata") : NULL;
		*metadata = md ? json_incref(md) : json_null();
	}
	json_decref(env);
	return 0;
}

/* "Bearer <token>", malloc'd; NULL when there is no token or no memory. */
static char *client_bearer_of(const struct client_state *st)
{
	size_t alen;
	char *auth;

	if (st->token == NULL)
		return NULL;
	alen = strlen("Bearer ") + strlen(st->token);
	auth = malloc(alen + 1);
	if (auth != NULL) {
		memcpy(auth, "Bearer ", 7);
		memcpy(auth + 7, st->token, alen - 7 + 1);
	}
	return auth;
}

/* Builds the request headers; *auth (malloc'd, wiped by the caller) holds the bearer. */
static size_t client_headers(const struct client_state *st, struct http_header *h, int has_body,
			     char **auth)
{
	size_t n = 0;

	h[n++] = (struct http_header){LIT("Accept"), LIT("application/json")};
	h[n++] = (struct http_header){LIT("User-Agent"), LIT("lxcm")};
	if (has_body)
		h[n++] = (struct http_header){LIT("Content-Type"), LIT("application/json")};
	*auth = client_bearer_of(st);
	if (*auth != NULL)
		h[n++] = (struct http_header){LIT("Authorization"), slice_cstr(*auth)};
	return n;
}

int client_request(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
		   json_t **metadata)
{
	struct http_client_opts o;
	struct http_fetch_result res;
	struct http_header hdrs[4];
	struct client_state *st;
	char *payload = NULL, *auth;
	size_t n;
	int rc;

	if (metadata != NULL)
		*metadata = NULL;
	rc = client_resolve(ctx);
	if (rc != 0)
		return rc;
	st = ctx->client;
	if (body != NULL && (payload = json_dumps(body, JSON_COMPACT)) == NULL) {
		fputs("Error: cannot encode the request\n", stderr);
		return CLI_EXIT_FAIL;
	}
	n = client_headers(st, hdrs, payload != NULL, &auth);
	if (st->token != NULL && auth == NULL) {
		fputs("Error: out of memory\n", stderr);
		free(payload);
		return CLI_EXIT_FAIL;
	}
	client_fill_opts(st, &o, 1);
	rc = http_fetch_sync(&o, method, path, hdrs, n, payload, payload ? strlen(payload) : 0,
			     CLI_MAX_RESPONSE, &res);
	if (auth != NULL) {
		secret_wipe(auth, strlen(auth));
		free(auth);
	}
	free(payload);
	if (rc == CONN_EPIN)
		client_print_pin_mismatch(st);
	else if (rc < 0)
		client_print_conn_error(st, rc);
	else
		rc = client_handle_response(st, &res, metadata);
	http_fetch_result_clear(&res);
	return rc == 0 ? 0 : CLI_EXIT_FAIL;
}

int client_resolve(struct cli_ctx *ctx)
{
	int rc = client_prepare(ctx);

	if (rc != 0)
		client_ctx_free(ctx);
	return rc;
}

int client_conn_opts(const struct cli_ctx *ctx, struct http_client_opts *o)
{
	if (ctx->client == NULL)
		return -EINVAL;
	client_fill_opts(ctx->client, o, 1);
	return 0;
}

const char *client_server_url(const struct cli_ctx *ctx)
{
	return ctx->client ? ctx->client->url : NULL;
}

const char *client_server_key(const struct cli_ctx *ctx)
{
	return ctx->client ? ctx->client->srv.key : NULL;
}

int client_bearer(const struct cli_ctx *ctx, char **out)
{
	*out = NULL;
	if (ctx->client == NULL || ctx->client->token == NULL)
		return 0;
	*out = client_bearer_of(ctx->client);
	return *out ? 0 : -ENOMEM;
}

void client_ctx_free(struct cli_ctx *ctx)
{
	struct client_state *st = ctx ? ctx->client : NULL;

	if (st == NULL)
		return;
	if (st->token != NULL) {
		secret_wipe(st->token, strlen(st->token));
		free(st->token);
	}
	SSL_CTX_free(st->tls);
	free(st);
	ctx->client = NULL;
}

int client_path(char *out, size_t len, const char *prefix, const char *name)
{
	char enc[1024];
	int rc = util_urlencode(name, enc, sizeof(enc));

	if (rc == -EINVAL) {
		fprintf(stderr, "Error: \"%s\" is not a valid name\n", name);
		return CLI_EXIT_USAGE;
	}
	if (rc < 0) {
		fputs("Error: the name is too long\n", stderr);
		return CLI_EXIT_USAGE;
	}
	rc = snprintf(out, len, "%s/%s", prefix, enc);
	if (rc < 0 || (size_t)rc >= len) {
		fputs("Error: the name is too long\n", stderr);
		return CLI_EXIT_USAGE;
	}
	return 0;
}
