/*
 * store.c - picks a backend from the store URL, and frees store records.
 */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define STORE_SQLITE_PREFIX "sqlite:"

static int store_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * The URL is never logged whole: a PostgreSQL URL may carry a password.
 * Anything with "://" that we do not know is refused rather than taken for
 * a file name, so a typo in a scheme does not silently create a database
 * file.
 */
int store_open(const char *url, struct store **out)
{
	const char *path, *sep;

	*out = NULL;
	if (url == NULL || url[0] == '\0') {
		LOG_ERROR("no store URL given");
		return -EINVAL;
	}
	if (store_has_prefix(url, "postgres://") || store_has_prefix(url, "postgresql://")) {
		LOG_ERROR("PostgreSQL stores are not supported yet");
		return -ENOTSUP;
	}
	if (store_has_prefix(url, STORE_SQLITE_PREFIX)) {
		path = url + strlen(STORE_SQLITE_PREFIX);
	} else if ((sep = strstr(url, "://")) != NULL) {
		LOG_ERROR("unknown store URL scheme \"%.*s\"", (int)(sep - url), url);
		return -EINVAL;
	} else {
		path = url;
	}
	if (path[0] == '\0') {
		LOG_ERROR("empty SQLite path in store URL");
		return -EINVAL;
	}
	return store_sqlite_open(path, out);
}

void store_close(struct store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

void store_cluster_clear(struct store_cluster *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->description);
	free(c->certificate);
	free(c->fingerprint);
	free(c->status);
	free(c->status_json);
	memset(c, 0, sizeof(*c));
}

void store_cluster_list_free(struct store_cluster *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_cluster_clear(&list[i]);
	free(list);
}

void store_join_token_clear(struct store_join_token *t)
{
	if (t == NULL)
		return;
	free(t->cluster_name);
	free(t->description);
	/* Only a hash, but there is no reason to leave it in freed memory. */
	if (t->secret_hash != NULL)
		explicit_bzero(t->secret_hash, strlen(t->secret_hash));
	free(t->secret_hash);
	memset(t, 0, sizeof(*t));
}

void store_join_token_list_free(struct store_join_token *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_join_token_clear(&list[i]);
	free(list);
}

void store_api_token_list_free(struct store_api_token *list, size_t n)
{
	size_t i;

	if (list == NULL)
		return;
	for (i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}
