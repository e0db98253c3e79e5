/*
 * state.c - the agent's state file, DIR/agent.json (mode 0600):
 *
 *   {
 *     "version": 1,
 *     "cluster_name": "paris",
 *     "addresses": ["manager.example:9443", "[2001:db8::1]:9443"],
 *     "fingerprint": "<64 lowercase hex: the connector's certificate>",
 *     "joined_at": "2026-01-02T03:04:05Z",
 *     "upstream": {
 *       "url": "unix:///var/lib/lxd/unix.socket" | "https://host:port",
 *       "ca": null | "/path", "fingerprint": null | "<hex>",
 *       "cert": null | "/path", "key": null | "/path"
 *     }
 *   }
 *
 * The agent's certificate and key live beside it as agent.crt / agent.key.
 * The file is written once by `join` and read by `run`; it is checked as
 * strictly as peer input since a person may have edited it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/agent.h"
#include "common/fsutil.h"
#include "common/json_util.h"
#include "common/timefmt.h"

#define STATE_VERSION 1

int state_path(const char *dir, const char *name, char *out, size_t outlen)
{
	size_t dl = strlen(dir);
	int n;

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	if (dl > (size_t)AGENT_PATH_MAX)
		return -ENAMETOOLONG;
	n = snprintf(out, outlen, "%.*s/%s", (int)dl, dir, name);
	if (n < 0 || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

static json_t *state_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *state_to_json(const struct agent_config *cfg)
{
	char joined[TIME_RFC3339_LEN];
	json_t *root, *addrs, *up;
	size_t i;
	int bad = 0;

	if (time_format_rfc3339(cfg->joined_at, joined, sizeof(joined)) < 0)
		joined[0] = '\0';
	root = json_object();
	addrs = json_array();
	up = json_object();
	if (root == NULL || addrs == NULL || up == NULL) {
		json_decref(root);
		json_decref(addrs);
		json_decref(up);
		return NULL;
	}
	for (i = 0; i < cfg->naddresses; i++)
		bad |= json_array_append_new(addrs, json_string(cfg->addresses[i]));
	bad |= json_object_set_new(up, "url", json_string(cfg->up.url));
	bad |= json_object_set_new(up, "ca", state_str_or_null(cfg->up.ca_file));
	bad |= json_object_set_new(up, "fingerprint", state_str_or_null(cfg->up.fingerprint));
	bad |= json_object_set_new(up, "cert", state_str_or_null(cfg->up.cert_file));
	bad |= json_object_set_new(up, "key", state_str_or_null(cfg->up.key_file));
	bad |= json_object_set_new(root, "version", json_integer(STATE_VERSION));
	bad |= json_object_set_new(root, "cluster_name", json_string(cfg->cluster_name));
	bad |= json_object_set_new(root, "addresses", addrs);
	bad |= json_object_set_new(root, "fingerprint", json_string(cfg->fingerprint));
	bad |= json_object_set_new(root, "joined_at", json_string(joined));
	bad |= json_object_set_new(root, "upstream", up);
	if (bad) {
		json_decref(root);
		return NULL;
	}
	return root;
}

int state_save(const struct agent_config *cfg)
{
	char path[AGENT_PATH_MAX];
	json_t *root;
	char *text;
	int rc;

	rc = state_path(cfg->data_dir, AGENT_STATE_FILE, path, sizeof(path));
	if (rc < 0)
		return rc;
	root = state_to_json(cfg);
	text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(root);
	if (text == NULL)
		return -ENOMEM;
	rc = fs_write_file(path, text, strlen(text), 0600);
	free(text);
	return rc;
}

/* ---- loading ---- */

static int state_fail(char *err, size_t errlen, const char *field)
{
	agent_errf(err, errlen, "invalid or missing \"%s\"", field);
	return -EINVAL;
}

/* Copies obj[key] (a string, or null/absent when optional) into *out. */
static int state_get_str(json_t *obj, const char *key, int optional, char **out)
{
	const char *s;
	json_t *v = json_object_get(obj, key);

	if (optional && (v == NULL || json_is_null(v)))
		return 0;
	if (json_get_string(obj, key, &s) < 0 || s[0] == '\0')
		return -EINVAL;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int state_load_addresses(json_t *root, struct agent_config *cfg)
{
	json_t *arr = json_object_get(root, "addresses"), *v;
	char host[AGENT_HOST_MAX];
	size_t i, n;
	int port;

	n = json_is_array(arr) ? json_array_size(arr) : 0;
	if (n == 0 || n > 32)
		return -EINVAL;
	cfg->addresses = calloc(n, sizeof(char *));
	if (cfg->addresses == NULL)
		return -ENOMEM;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
		    hostport_split(json_string_value(v), host, sizeof(host), &port) < 0)
			return -EINVAL;
		cfg->addresses[i] = strdup(json_string_value(v));
		if (cfg->addresses[i] == NULL)
			return -ENOMEM;
		cfg->naddresses = i + 1;
	}
	return 0;
}

static int state_load_fingerprint(json_t *root, struct agent_config *cfg)
{
	const char *s;
	size_t i;

	if (json_get_string(root, "fingerprint", &s) < 0 || strlen(s) != 64)
		return -EINVAL;
	for (i = 0; i < 64; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -EINVAL;
		cfg->fingerprint[i] = s[i];
	}
	cfg->fingerprint[64] = '\0';
	return 0;
}

static int state_load_upstream(json_t *root, struct upstream *u, char *err, size_t errlen)
{
	json_t *up = json_object_get(root, "upstream");
	const char *url;
	int rc;

	if (!json_is_object(up) || json_get_string(up, "url", &url) < 0)
		return state_fail(err, errlen, "upstream.url");
	rc = upstream_parse(url, u, err, errlen);
	if (rc < 0)
		return rc;
	if (state_get_str(up, "ca", 1, &u->ca_file) < 0)
		return state_fail(err, errlen, "upstream.ca");
	if (state_get_str(up, "fingerprint", 1, &u->fingerprint) < 0)
		return state_fail(err, errlen, "upstream.fingerprint");
	if (state_get_str(up, "cert", 1, &u->cert_file) < 0)
		return state_fail(err, errlen, "upstream.cert");
	if (state_get_str(up, "key", 1, &u->key_file) < 0)
		return state_fail(err, errlen, "upstream.key");
	return 0;
}

static int state_from_json(json_t *root, struct agent_config *cfg, char *err, size_t errlen)
{
	const char *s;
	long long version;
	int rc;

	if (json_get_int(root, "version", &version) < 0 || version != STATE_VERSION)
		return state_fail(err, errlen, "version");
	if ((rc = state_get_str(root, "cluster_name", 0, &cfg->cluster_name)) < 0)
		return rc == -ENOMEM ? rc : state_fail(err, errlen, "cluster_name");
	if ((rc = state_load_addresses(root, cfg)) < 0)
		return rc == -ENOMEM ? rc : state_fail(err, errlen, "addresses");
	if (state_load_fingerprint(root, cfg) < 0)
		return state_fail(err, errlen, "fingerprint");
	if (json_get_string(root, "joined_at", &s) == 0 &&
	    time_parse_rfc3339(s, strlen(s), &cfg->joined_at) < 0)
		return state_fail(err, errlen, "joined_at");
	return state_load_upstream(root, &cfg->up, err, errlen);
}

int state_load(const char *dir, struct agent_config *cfg, char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX];
	char *text = NULL;
	json_t *root = NULL;
	size_t len = 0;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	rc = state_path(dir, AGENT_STATE_FILE, path, sizeof(path));
	if (rc < 0) {
		agent_errf(err, errlen, "%s: path too long", dir);
		goto out;
	}
	rc = fs_read_file(path, AGENT_STATE_MAX, &text, &len);
	if (rc < 0) {
		agent_errf(err, errlen, "%s: %s", path,
			   rc == -E2BIG ? "file too large" : strerror(-rc));
		goto out;
	}
	rc = json_parse_object(text, len, &root, err, errlen);
	if (rc < 0)
		goto out;
	cfg->data_dir = strdup(dir);
	rc = cfg->data_dir ? state_from_json(root, cfg, err, errlen) : -ENOMEM;
	if (rc == -ENOMEM)
		agent_errf(err, errlen, "out of memory");
out:
	json_decref(root);
	free(text);
	if (rc < 0)
		state_clear(cfg);
	return rc;
}

void state_clear(struct agent_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->naddresses; i++)
		free(cfg->addresses[i]);
	free(cfg->addresses);
	free(cfg->data_dir);
	free(cfg->cluster_name);
	upstream_clear(&cfg->up);
	memset(cfg, 0, sizeof(*cfg));
}
