/*
 * store.c - opens a store: picks the backend from the URL, checks that it
 * provides every statement, sets up the layers above it (feed, worker
 * threads) and applies the migrations; closes it.
 */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/store_feed.h"
#include "store/store_ops.h"
#include "store/store_workers.h"

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
static int store_open_backend(const char *url, const char *password, struct store **out)
{
	const char *path, *sep;

	if (url == NULL || url[0] == '\0') {
		LOG_ERROR("no store URL given");
		return -EINVAL;
	}
	if (store_has_prefix(url, "postgres://") || store_has_prefix(url, "postgresql://"))
		return store_postgres_open(url, password, out);
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

/* A backend that lacks a statement is a programming error: refuse it at open. */
static int store_check_backend(const struct store_ops *ops)
{
	for (int i = 0; i < STORE_SQL__COUNT; i++) {
		if (ops->sql[i] == NULL) {
			LOG_ERROR("the %s backend has no statement %d", ops->name, i);
			return -EINVAL;
		}
	}
	return 0;
}

int store_open(const char *url, struct store **out)
{
	return store_open_password(url, NULL, out);
}

int store_open_password(const char *url, const char *password, struct store **out)
{
	struct store *s = NULL;
	int rc;

	*out = NULL;
	rc = store_open_backend(url, password, &s);
	if (rc != 0)
		return rc;
	rc = store_check_backend(s->ops);
	if (rc == 0)
		rc = store_feed__init(s);
	if (rc == 0)
		rc = store_workers__init(s);
	if (rc == 0)
		rc = store_migrate(s);
	if (rc != 0) {
		store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	store_workers__free(s);
	store_feed__free(s);
	s->ops->close(s);
}

const char *store_backend(const struct store *s)
{
	return s->ops->name;
}

void store_set_observer(struct store *s, store_observe_fn fn, void *data)
{
	s->observe_data = data;
	s->observe = fn;
}
