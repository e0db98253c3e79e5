/* known_servers.c - trust-on-first-use fingerprints (known_servers.h). */
#include "cli/known_servers.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/util.h"
#include "common/buf.h"
#include "common/fsutil.h"

int known_servers_path(char *out, size_t len)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	struct passwd *pw;
	int n;

	/* The XDG spec says a relative XDG_CONFIG_HOME is invalid: ignore it. */
	if (xdg != NULL && xdg[0] == '/') {
		n = snprintf(out, len, "%s/lxcm/known_servers", xdg);
	} else {
		if (home == NULL || home[0] != '/') {
			pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (home == NULL || home[0] != '/')
			return -ENOENT;
		n = snprintf(out, len, "%s/.config/lxcm/known_servers", home);
	}
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int ks_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/*
 * Splits one line (without its '\n') into key and fingerprint fields.
 * Returns 0 for a well-formed entry, -1 for blank, comment or malformed.
 */
static int ks_parse_line(const char *p, size_t n, const char **key, size_t *klen, char fp[65])
{
	const char *end = p + n, *f;
	char tmp[128];
	size_t flen;

	while (p < end && ks_space(*p))
		p++;
	if (p == end || *p == '#')
		return -1;
	*key = p;
	while (p < end && !ks_space(*p))
		p++;
	*klen = (size_t)(p - *key);
	while (p < end && ks_space(*p))
		p++;
	f = p;
	while (p < end && !ks_space(*p))
		p++;
	flen = (size_t)(p - f);
	while (p < end && ks_space(*p))
		p++;
	if (p != end || flen == 0 || flen >= sizeof(tmp))
		return -1;
	memcpy(tmp, f, flen);
	tmp[flen] = '\0';
	return util_fingerprint_normalize(tmp, fp) == 0 ? 0 : -1;
}

int known_servers_find(const char *text, size_t len, const char *key, char fp[65])
{
	const char *p = text, *end = text + len, *nl, *k;
	size_t klen, want = strlen(key);
	char cand[65];

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (ks_parse_line(p, (size_t)(nl - p), &k, &klen, cand) == 0 && klen == want &&
		    memcmp(k, key, want) == 0) {
			memcpy(fp, cand, sizeof(cand));
			return 1;
		}
		p = nl + 1;
	}
	return 0;
}

int known_servers_lookup(const char *path, const char *key, char fp[65])
{
	char *text;
	size_t len;
	int rc = fs_read_file(path, KNOWN_SERVERS_MAX, &text, &len);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	rc = known_servers_find(text, len, key, fp);
	free(text);
	return rc;
}

/* Copies every line of text but the entries for key into b. */
static int ks_copy_others(struct buf *b, const char *text, size_t len, const char *key)
{
	const char *p = text, *end = text + len, *nl, *k;
	size_t klen, want = strlen(key);
	char fp[65];
	int rc = 0;

	while (p < end && rc == 0) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (ks_parse_line(p, (size_t)(nl - p), &k, &klen, fp) != 0 || klen != want ||
		    memcmp(k, key, want) != 0) {
			rc = buf_append(b, p, (size_t)(nl - p));
			if (rc == 0)
				rc = buf_append(b, "\n", 1);
		}
		p = nl + 1;
	}
	return rc;
}

static int ks_mkdir_parent(const char *path)
{
	char *dir = strdup(path), *slash;
	int rc = 0;

	if (dir == NULL)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		rc = fs_mkdir_p(dir, 0700);
	}
	free(dir);
	return rc;
}

int known_servers_add(const char *path, const char *key, const char *fp)
{
	struct buf b;
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = ks_mkdir_parent(path);
	if (rc < 0)
		return rc;
	rc = fs_read_file(path, KNOWN_SERVERS_MAX, &text, &len);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	buf_init(&b, KNOWN_SERVERS_MAX + 512);
	rc = text ? ks_copy_others(&b, text, len, key) : 0;
	if (rc == 0)
		rc = buf_printf(&b, "%s %s\n", key, fp);
	if (rc == 0)
		rc = fs_write_file(path, b.data, b.len, 0600);
	buf_free(&b);
	free(text);
	return rc;
}
