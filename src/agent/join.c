/*
 * join.c - `lxcm-agent join TOKEN --data-dir DIR ...`: enrol this LXD with
 * a manager.
 *
 * The token names the cluster, the connector's addresses and the SHA-256
 * fingerprint of its certificate. We make our key and self-signed client
 * certificate (CN = the cluster name), then POST /1.0/remote-cluster to each
 * address in turn, trusting the connector only if its certificate has that
 * fingerprint. The next address is tried only when one cannot be reached or
 * fails the TLS handshake; an HTTP answer, even an error, is final (the
 * token is single-use, and the manager has said its word). On success the
 * state goes to DIR/agent.json for `run`.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/agent.h"
#include "common/buf.h"
#include "common/cert.h"
#include "common/fsutil.h"
#include "common/jointoken.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/timefmt.h"
#include "net/tls.h"

#define JOIN_LXD_CHECK_TIMEOUT_MS 5000
#define JOIN_RESPONSE_MAX (64 * 1024)

struct join_opts {
	const char *token_arg;
	const char *data_dir;
	const char *upstream;
	const char *ca, *cert, *key, *fingerprint;
};

static void join_usage(FILE *out)
{
	fputs("usage: lxcm-agent join TOKEN --data-dir DIR [options]\n"
	      "\n"
	      "Enrols this LXD with an lxcm manager using a join token (from\n"
	      "`lxcm token create NAME`). TOKEN may be - to read it from standard input.\n"
	      "Creates DIR (0700), the agent's key and certificate in it, and, once the\n"
	      "manager accepts the token, DIR/agent.json for `lxcm-agent run`.\n"
	      "\n"
	      "options:\n"
	      "  --data-dir DIR              where the agent keeps its state (required)\n"
	      "  --upstream URL              the local LXD: unix:///path, /path or\n"
	      "                              https://host[:port] (default: the snap's socket\n"
	      "                              " UPSTREAM_SNAP_SOCKET "\n"
	      "                              if it exists, else " UPSTREAM_DEB_SOCKET ")\n"
	      "  --upstream-ca FILE          https: verify LXD's certificate with this CA\n"
	      "  --upstream-fingerprint HEX  https: or pin LXD's certificate (SHA-256)\n"
	      "  --upstream-cert FILE        https: client certificate LXD trusts\n"
	      "  --upstream-key FILE         https: its key\n"
	      "  -h, --help                  this help\n",
	      out);
}

/* The options' vals: small numbers, apart from getopt's 'h', '?' and ':'. */
enum { JOIN_DATA_DIR = 1, JOIN_UPSTREAM, JOIN_CA, JOIN_CERT, JOIN_KEY, JOIN_FINGERPRINT };

static int join_opt(void *state, int val, const char *arg)
{
	struct join_opts *o = state;
	const char **slot[] = {
	    [JOIN_DATA_DIR] = &o->data_dir,
	    [JOIN_UPSTREAM] = &o->upstream,
	    [JOIN_CA] = &o->ca,
	    [JOIN_CERT] = &o->cert,
	    [JOIN_KEY] = &o->key,
	    [JOIN_FINGERPRINT] = &o->fingerprint,
	};

	*slot[val] = arg;
	return 0;
}

/* 0 to go on, or an exit status (2: usage error; 0 after --help). */
static int join_parse(int argc, char **argv, struct join_opts *o, int *done)
{
	static const struct option longopts[] = {
	    {"data-dir", required_argument, NULL, JOIN_DATA_DIR},
	    {"upstream", required_argument, NULL, JOIN_UPSTREAM},
	    {"upstream-ca", required_argument, NULL, JOIN_CA},
	    {"upstream-cert", required_argument, NULL, JOIN_CERT},
	    {"upstream-key", required_argument, NULL, JOIN_KEY},
	    {"upstream-fingerprint", required_argument, NULL, JOIN_FINGERPRINT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int rc = cmd_parse(&cmd_join, argc, argv, longopts, join_opt, o, done);

	if (rc != 0 || *done)
		return rc;
	if (optind != argc - 1)
		return cmd_usage_error("join", "%s",
				       optind >= argc ? "missing TOKEN" : "too many arguments");
	o->token_arg = argv[optind];
	if (o->data_dir == NULL || o->data_dir[0] == '\0')
		return cmd_usage_error("join", "--data-dir is required");
	return 0;
}

/* ---- the token ---- */

/* Reads the token from the argument or, for "-", from standard input. */
static int join_read_token(const char *arg, char **out, size_t *len)
{
	struct buf b;
	char chunk[4096];
	size_t n;

	if (strcmp(arg, "-") != 0) {
		*len = strlen(arg);
		*out = strdup(arg);
		return *out ? 0 : -ENOMEM;
	}
	buf_init(&b, JOIN_TOKEN_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		if (buf_append(&b, chunk, n) < 0) {
			secret_wipe(b.data, b.len);
			buf_free(&b);
			return -E2BIG;
		}
	}
	secret_wipe(chunk, sizeof(chunk));
	*out = buf_steal(&b, len);
	return *out ? 0 : -ENOMEM;
}

/* The token as sent to the manager: without the surrounding whitespace. */
static char *join_trim(char *s, size_t *len)
{
	size_t l = *len;

	while (l > 0 &&
	       (s[l - 1] == ' ' || s[l - 1] == '\n' || s[l - 1] == '\r' || s[l - 1] == '\t'))
		s[--l] = '\0';
	while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t') {
		s++;
		l--;
	}
	*len = l;
	return s;
}

static int join_decode(const char *arg, char **raw, char **token, struct join_token *t)
{
	size_t len = 0;
	int rc = join_read_token(arg, raw, &len);

	if (rc < 0) {
		fprintf(stderr, "lxcm-agent join: cannot read the token: %s\n",
			rc == -E2BIG ? "too long" : strerror(-rc));
		return -1;
	}
	*token = join_trim(*raw, &len);
	if (len == 0 || join_token_decode(*token, len, t) < 0) {
		fprintf(stderr, "lxcm-agent join: this is not a valid join token\n");
		return -1;
	}
	if (t->expires_at < time_now()) {
		char when[TIME_RFC3339_LEN];

		if (time_format_rfc3339(t->expires_at, when, sizeof(when)) < 0)
			when[0] = '\0';
		fprintf(stderr,
			"lxcm-agent join: warning: the token expired at %s "
			"(by this machine's clock); trying anyway\n",
			when);
	}
	return 0;
}

/* ---- local checks before the token is spent ---- */

/*
 * The absolute path of an existing file, so that agent.json still works
 * when `run` starts from another directory. NULL in, NULL out.
 */
static int join_abs_path(const char *opt, const char *path, char **out)
{
	if (path == NULL)
		return 0;
	*out = realpath(path, NULL);
	if (*out == NULL) {
		fprintf(stderr, "lxcm-agent join: %s %s: %s\n", opt, path, strerror(errno));
		return -1;
	}
	return 0;
}

static int join_setup_upstream(const struct join_opts *o, struct upstream *u)
{
	char err[512];
	SSL_CTX *ctx;
	int ok;

	if (upstream_parse(o->upstream ? o->upstream : upstream_default_url(), u, err,
			   sizeof(err)) < 0) {
		fprintf(stderr, "lxcm-agent join: --upstream: %s\n", err);
		return -1;
	}
	if (join_abs_path("--upstream-ca", o->ca, &u->ca_file) < 0 ||
	    join_abs_path("--upstream-cert", o->cert, &u->cert_file) < 0 ||
	    join_abs_path("--upstream-key", o->key, &u->key_file) < 0)
		return -1;
	if (o->fingerprint && !(u->fingerprint = strdup(o->fingerprint))) {
		fprintf(stderr, "lxcm-agent join: out of memory\n");
		return -1;
	}
	if (u->fingerprint)
		for (char *p = u->fingerprint; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
	ctx = upstream_tls_new(u, &ok, err, sizeof(err));
	SSL_CTX_free(ctx);
	if (!ok) {
		fprintf(stderr, "lxcm-agent join: upstream: %s\n", err);
		return -1;
	}
	return 0;
}

/* A warning, not an error: LXD may well be started after the agent joins. */
static void join_check_lxd(const struct upstream *u)
{
	struct http_client_opts opts;
	struct http_fetch_result res;
	char err[256];
	SSL_CTX *ctx;
	int ok, rc;

	ctx = upstream_tls_new(u, &ok, err, sizeof(err));
	if (!ok)
		return;
	upstream_opts(u, ctx, &opts);
	opts.connect_timeout_ms = opts.response_timeout_ms = JOIN_LXD_CHECK_TIMEOUT_MS;
	rc = http_fetch_sync(&opts, "GET", "/1.0", NULL, 0, NULL, 0, 1024 * 1024, &res);
	if (rc < 0)
		fprintf(stderr,
			"lxcm-agent join: warning: LXD at %s does not answer (%s); "
			"joining anyway\n",
			u->url, agent_strerror(rc));
	else if (res.status != 200)
		fprintf(stderr,
			"lxcm-agent join: warning: LXD at %s answered GET /1.0 with %d; "
			"joining anyway\n",
			u->url, res.status);
	http_fetch_result_clear(&res);
	SSL_CTX_free(ctx);
}

/* The data directory exists (0700) and holds no agent.json yet. */
static int join_prepare_dir(const char *dir, char *state, size_t statelen)
{
	struct stat st;
	int rc;

	if (state_path(dir, AGENT_STATE_FILE, state, statelen) < 0) {
		fprintf(stderr, "lxcm-agent join: %s: path too long\n", dir);
		return -1;
	}
	if (lstat(state, &st) == 0) {
		fprintf(stderr,
			"lxcm-agent join: %s exists: this agent has already joined a "
			"manager.\nTo join again, stop the agent and remove %s (or use "
			"another --data-dir).\n",
			state, state);
		return -1;
	}
	if (errno != ENOENT) {
		fprintf(stderr, "lxcm-agent join: %s: %s\n", state, strerror(errno));
		return -1;
	}
	rc = fs_mkdir_p(dir, 0700);
	if (rc < 0) {
		fprintf(stderr, "lxcm-agent join: cannot create %s: %s\n", dir, strerror(-rc));
		return -1;
	}
	return 0;
}

/* Our key and certificate in DIR; *cert_pem gets the certificate (malloc'd). */
static int join_identity(const char *dir, const char *cn, char *crt, char *key, char **cert_pem)
{
	size_t len;
	int rc;

	if (state_path(dir, AGENT_CERT_FILE, crt, AGENT_PATH_MAX) < 0 ||
	    state_path(dir, AGENT_KEY_FILE, key, AGENT_PATH_MAX) < 0) {
		fprintf(stderr, "lxcm-agent join: %s: path too long\n", dir);
		return -1;
	}
	rc = cert_ensure_files(crt, key, cn);
	if (rc == 0)
		rc = fs_read_file(crt, CERT_PEM_MAX, cert_pem, &len);
	if (rc < 0) {
		fprintf(stderr, "lxcm-agent join: the agent's certificate (%s): %s\n", crt,
			strerror(-rc));
		return -1;
	}
	return 0;
}

/* ---- talking to the manager ---- */

/* The manager's error text from an LXD-style envelope. */
static void join_print_refusal(const char *addr, const struct http_fetch_result *res)
{
	json_t *root = NULL;
	const char *msg = NULL;

	if (json_parse_object(res->body, res->body_len, &root, NULL, 0) < 0 ||
	    json_get_string(root, "error", &msg) < 0 || msg[0] == '\0')
		msg = "(no error message)";
	fprintf(stderr, "lxcm-agent join: the manager at %s refused the join: %s (HTTP %d)\n", addr,
		msg, res->status);
	json_decref(root);
}

/*
 * Tries each address. Returns the index of the one that accepted the join,
 * -1 when the manager refused it or none could be reached (said on stderr).
 */
static long join_post(const struct join_token *t, SSL_CTX *ctx, const char *body)
{
	static const struct http_header hdrs[] = {
	    {LIT("Content-Type"), LIT("application/json")},
	    {LIT("User-Agent"), LIT("lxcm-agent/" AGENT_VERSION)},
	};
	struct http_client_opts opts;
	struct http_fetch_result res;
	char host[AGENT_HOST_MAX];
	size_t i;
	int port, rc;

	for (i = 0; i < t->naddresses; i++) {
		if (hostport_split(t->addresses[i], host, sizeof(host), &port) < 0) {
			fprintf(stderr, "lxcm-agent join: %s: not a host:port address, skipped\n",
				t->addresses[i]);
			continue;
		}
		memset(&opts, 0, sizeof(opts));
		opts.host = host;
		opts.port = port;
		opts.tls = ctx;
		opts.pin = t->fingerprint;
		rc = http_fetch_sync(&opts, "POST", "/1.0/remote-cluster", hdrs,
				     sizeof(hdrs) / sizeof(hdrs[0]), body, strlen(body),
				     JOIN_RESPONSE_MAX, &res);
		if (rc == 0 && res.status == 200) {
			http_fetch_result_clear(&res);
			return (long)i;
		}
		if (rc == 0) {
			join_print_refusal(t->addresses[i], &res);
			http_fetch_result_clear(&res);
			return -1;
		}
		fprintf(stderr, "lxcm-agent join: %s: %s\n", t->addresses[i],
			rc == CONN_EPIN ? "the manager's certificate does not match the token's "
					  "fingerprint"
					: agent_strerror(rc));
		http_fetch_result_clear(&res);
	}
	fprintf(stderr,
		"lxcm-agent join: could not reach the manager at any of the token's "
		"%zu address(es)\n",
		t->naddresses);
	return -1;
}

static char *join_body(const struct join_token *t, const char *cert_pem, const char *token)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "cluster_name", t->server_name,
			      "cluster_certificate", cert_pem, "token", token);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

/* The state file: the address that answered first, then the others. */
static int join_save(const struct join_opts *o, struct join_token *t, struct upstream *up,
		     size_t first)
{
	struct agent_config cfg;
	char *addrs[JOIN_TOKEN_MAX_ADDRESSES];
	size_t i, n = 0;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	addrs[n++] = t->addresses[first];
	for (i = 0; i < t->naddresses && n < JOIN_TOKEN_MAX_ADDRESSES; i++)
		if (i != first)
			addrs[n++] = t->addresses[i];
	cfg.data_dir = (char *)o->data_dir;
	cfg.cluster_name = t->server_name;
	cfg.addresses = addrs;
	cfg.naddresses = n;
	memcpy(cfg.fingerprint, t->fingerprint, 64);
	cfg.joined_at = time_now();
	cfg.up = *up;
	rc = state_save(&cfg);
	if (rc < 0)
		fprintf(stderr, "lxcm-agent join: joined, but cannot write %s/%s: %s\n",
			o->data_dir, AGENT_STATE_FILE, strerror(-rc));
	return rc;
}

static int join_run(const struct join_opts *o, struct join_token *t, const char *token)
{
	struct tls_client_opts to;
	struct upstream up;
	char state[AGENT_PATH_MAX], crt[AGENT_PATH_MAX], key[AGENT_PATH_MAX], err[512];
	char *cert_pem = NULL, *body = NULL;
	SSL_CTX *ctx = NULL;
	long first;
	int rc = 1;

	memset(&up, 0, sizeof(up));
	if (join_setup_upstream(o, &up) < 0 ||
	    join_prepare_dir(o->data_dir, state, sizeof(state)) < 0 ||
	    join_identity(o->data_dir, t->server_name, crt, key, &cert_pem) < 0)
		goto out;
	join_check_lxd(&up);
	memset(&to, 0, sizeof(to));
	to.cert_file = crt;
	to.key_file = key;
	ctx = tls_client_ctx_new(&to, err, sizeof(err));
	if (ctx == NULL) {
		fprintf(stderr, "lxcm-agent join: %s\n", err);
		goto out;
	}
	body = join_body(t, cert_pem, token);
	if (body == NULL) {
		fprintf(stderr, "lxcm-agent join: out of memory\n");
		goto out;
	}
	first = join_post(t, ctx, body);
	if (first < 0 || join_save(o, t, &up, (size_t)first) < 0)
		goto out;
	printf("Joined the manager as cluster \"%s\" (via %s).\n"
	       "State saved in %s. Start the agent with:\n"
	       "  lxcm-agent run --data-dir %s\n",
	       t->server_name, t->addresses[first], state, o->data_dir);
	rc = 0;
out:
	if (body)
		secret_wipe(body, strlen(body));
	free(body);
	free(cert_pem);
	SSL_CTX_free(ctx);
	upstream_clear(&up);
	return rc;
}

static int join_main(int argc, char **argv)
{
	struct join_opts o;
	struct join_token t;
	char *raw = NULL, *token = NULL;
	int rc, done;

	memset(&o, 0, sizeof(o));
	memset(&t, 0, sizeof(t));
	rc = join_parse(argc, argv, &o, &done);
	if (rc != 0 || done)
		return rc;
	/* The connection layer's own warnings would repeat what we print. */
	log_set_level(LOG_LEVEL_ERROR);
	rc = 1;
	if (join_decode(o.token_arg, &raw, &token, &t) == 0)
		rc = join_run(&o, &t, token);
	if (raw) {
		secret_wipe(raw, strlen(raw));
		free(raw);
	}
	join_token_clear(&t);
	return rc;
}

const struct agent_cmd cmd_join = {
    .name = "join",
    .summary = "enrol this LXD with a manager using a join token",
    .main = join_main,
    .usage = join_usage,
};
