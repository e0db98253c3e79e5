/* enrolled.c - the fingerprints of the enrolled clusters (see enrolled.h). */
#include "server/enrolled.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_feed.h"

#define ENROLLED_BUCKETS 4096

struct enrolled_fp {
	struct enrolled_fp *next;
	char fp[65];
};

struct enrolled {
	struct enrolled_fp *bucket[ENROLLED_BUCKETS];
	size_t count;
};

static struct enrolled_fp **enrolled_slot(const struct enrolled *e, const char *fp)
{
	uint32_t h = 2166136261u;
	const char *p;

	for (p = fp; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return (struct enrolled_fp **)&e->bucket[h % ENROLLED_BUCKETS];
}

static struct enrolled_fp **enrolled_find(const struct enrolled *e, const char *fp)
{
	struct enrolled_fp **pp = enrolled_slot(e, fp);

	while (*pp && strcmp((*pp)->fp, fp) != 0)
		pp = &(*pp)->next;
	return pp;
}

struct enrolled *enrolled_new(void)
{
	return calloc(1, sizeof(struct enrolled));
}

void enrolled_free(struct enrolled *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < ENROLLED_BUCKETS; i++) {
		while (e->bucket[i]) {
			struct enrolled_fp *f = e->bucket[i];

			e->bucket[i] = f->next;
			free(f);
		}
	}
	free(e);
}

int enrolled_add(struct enrolled *e, const char *fp)
{
	struct enrolled_fp **pp, *f;

	if (fp == NULL || strlen(fp) != 64)
		return -EINVAL;
	pp = enrolled_find(e, fp);
	if (*pp)
		return 0;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	memcpy(f->fp, fp, 65);
	*pp = f;
	e->count++;
	return 0;
}

void enrolled_remove(struct enrolled *e, const char *fp)
{
	struct enrolled_fp **pp, *f;

	if (fp == NULL)
		return;
	pp = enrolled_find(e, fp);
	if ((f = *pp) == NULL)
		return;
	*pp = f->next;
	free(f);
	e->count--;
}

int enrolled_has(const struct enrolled *e, const char *fp)
{
	return fp && *enrolled_find(e, fp) != NULL;
}

size_t enrolled_count(const struct enrolled *e)
{
	return e->count;
}

int enrolled_load(struct enrolled *e, struct store *s)
{
	struct store_cluster *list = NULL;
	size_t n = 0, i;
	int rc = store_cluster_list(s, &list, &n);

	for (i = 0; rc == 0 && i < n; i++)
		rc = enrolled_add(e, list[i].fingerprint);
	store_cluster_list_free(list, n);
	return rc;
}

void enrolled_on_change(const struct store_change *c, void *data)
{
	if (c->kind == STORE_CHANGE_CLUSTER_ADDED)
		(void)enrolled_add(data, c->key);
	else if (c->kind == STORE_CHANGE_CLUSTER_REMOVED)
		enrolled_remove(data, c->key);
}

int enrolled_session_filter(const char *fingerprint, void *arg)
{
	return enrolled_has(arg, fingerprint);
}
