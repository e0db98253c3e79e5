/* audit_journal.c - the audit log's crash journal (see audit_journal.h). */
#include "server/audit_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#define AJ_MAGIC 0x4c58414aU /* "LXAJ" */
#define AJ_HEAD 12
#define AJ_FIXED (4 * 8 + 4)
#define AJ_STRINGS 7    /* request_id, actor, cluster, method, path, actor_name, client */
#define AJ_STRINGS_OLD 5 /* records written before actor_name and client end after path */
#define AJ_NULL 0xffffU
#define AJ_MAX_STRING 1024
#define AJ_MAX_PAYLOAD (AJ_FIXED + AJ_STRINGS * (2 + AJ_MAX_STRING))
#define AJ_REPLAY_BATCH 512

struct audit_journal {
	int fd[AUDIT_JOURNAL_FILES];
	off_t size[AUDIT_JOURNAL_FILES];
	char path[AUDIT_JOURNAL_FILES][4096];
	int current;
};

/* CRC-32 (IEEE 802.3), table driven. */
static uint32_t aj_crc_table[256];

static void aj_crc_init(void)
{
	uint32_t i, k, c;

	if (aj_crc_table[1])
		return;
	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320U ^ (c >> 1) : c >> 1;
		aj_crc_table[i] = c;
	}
}

static uint32_t aj_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffU;

	while (n--)
		c = aj_crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffU;
}

struct audit_journal *audit_journal_open(const char *dir)
{
	struct audit_journal *j = calloc(1, sizeof(*j));
	struct stat st;
	int i;

	if (j == NULL)
		return NULL;
	aj_crc_init();
	for (i = 0; i < AUDIT_JOURNAL_FILES; i++)
		j->fd[i] = -1;
	for (i = 0; i < AUDIT_JOURNAL_FILES; i++) {
		int n = snprintf(j->path[i], sizeof(j->path[i]), "%s/audit-journal.%d", dir, i);

		if (n < 0 || (size_t)n >= sizeof(j->path[i]))
			goto fail;
		j->fd[i] = open(j->path[i], O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (j->fd[i] < 0 || fstat(j->fd[i], &st) != 0) {
			LOG_ERROR("cannot open the audit journal %s: %s", j->path[i], strerror(errno));
			goto fail;
		}
		j->size[i] = st.st_size;
	}
	return j;
fail:
	audit_journal_close(j);
	return NULL;
}

void audit_journal_close(struct audit_journal *j)
{
	int i;

	if (j == NULL)
		return;
	for (i = 0; i < AUDIT_JOURNAL_FILES; i++)
		if (j->fd[i] >= 0)
			close(j->fd[i]);
	free(j);
}

static uint8_t *aj_put(uint8_t *p, const void *v, size_t n)
{
	memcpy(p, v, n);
	return p + n;
}

size_t audit_journal_encode(const struct store_audit *row, uint8_t *buf, size_t cap)
{
	const char *s[AJ_STRINGS] = {row->request_id, row->actor,      row->cluster, row->method,
				     row->path,	      row->actor_name, row->client};
	size_t len[AJ_STRINGS], need = AJ_HEAD + AJ_FIXED;
	int32_t status = row->status;
	uint32_t head[3];
	uint8_t *p;
	int i;

	for (i = 0; i < AJ_STRINGS; i++) {
		len[i] = s[i] ? strnlen(s[i], AJ_MAX_STRING) : 0;
		need += 2 + len[i];
	}
	if (need > cap)
		return 0;
	p = buf + AJ_HEAD;
	p = aj_put(p, &row->at, 8);
	p = aj_put(p, &row->bytes_in, 8);
	p = aj_put(p, &row->bytes_out, 8);
	p = aj_put(p, &row->duration_ms, 8);
	p = aj_put(p, &status, 4);
	for (i = 0; i < AJ_STRINGS; i++) {
		uint16_t l = s[i] ? (uint16_t)len[i] : (uint16_t)AJ_NULL;

		p = aj_put(p, &l, 2);
		p = aj_put(p, s[i] ? s[i] : "", len[i]);
	}
	head[0] = AJ_MAGIC;
	head[1] = (uint32_t)(need - AJ_HEAD);
	head[2] = aj_crc32(buf + AJ_HEAD, need - AJ_HEAD);
	memcpy(buf, head, sizeof(head));
	return need;
}

int audit_journal_append(struct audit_journal *j, const struct store_audit *row)
{
	uint8_t buf[AJ_HEAD + AJ_MAX_PAYLOAD];
	size_t n = audit_journal_encode(row, buf, sizeof(buf));
	int idx = j->current;
	ssize_t w;

	if (n == 0)
		return -E2BIG;
	do
		w = write(j->fd[idx], buf, n);
	while (w < 0 && errno == EINTR);
	if (w == (ssize_t)n) {
		j->size[idx] += (off_t)n;
		return idx;
	}
	/* A short write (disk full) must not leave a torn record before later ones. */
	if (w >= 0)
		errno = ENOSPC;
	w = -errno;
	if (ftruncate(j->fd[idx], j->size[idx]) != 0)
		LOG_WARN("cannot cut a torn record from %s: %s", j->path[idx], strerror(errno));
	return (int)w;
}

int audit_journal_current(const struct audit_journal *j)
{
	return j->current;
}

void audit_journal_use(struct audit_journal *j, int idx)
{
	j->current = idx;
}

int audit_journal_truncate(struct audit_journal *j, int idx)
{
	if (j->size[idx] == 0)
		return 0;
	if (ftruncate(j->fd[idx], 0) != 0) {
		LOG_WARN("cannot empty the audit journal %s: %s", j->path[idx], strerror(errno));
		return -errno;
	}
	j->size[idx] = 0;
	return 0;
}

/* ---- replay ---- */

struct aj_row {
	char s[AJ_STRINGS][AJ_MAX_STRING + 1];
	int null[AJ_STRINGS];
	struct store_audit a;
};

/* Decodes one payload into r; -EINVAL if it does not parse. */
static int aj_decode(const uint8_t *p, size_t n, struct aj_row *r)
{
	const uint8_t *end = p + n;
	int32_t status;
	int i;

	if (n < AJ_FIXED)
		return -EINVAL;
	memset(&r->a, 0, sizeof(r->a));
	memcpy(&r->a.at, p, 8);
	memcpy(&r->a.bytes_in, p + 8, 8);
	memcpy(&r->a.bytes_out, p + 16, 8);
	memcpy(&r->a.duration_ms, p + 24, 8);
	memcpy(&status, p + 32, 4);
	r->a.status = status;
	p += AJ_FIXED;
	for (i = 0; i < AJ_STRINGS; i++) {
		uint16_t l;

		if (i == AJ_STRINGS_OLD && p == end) {
			r->null[5] = r->null[6] = 1;
			break;
		}
		if (end - p < 2)
			return -EINVAL;
		memcpy(&l, p, 2);
		p += 2;
		r->null[i] = l == AJ_NULL;
		if (r->null[i])
			l = 0;
		if (l > AJ_MAX_STRING || end - p < l || memchr(p, 0, l))
			return -EINVAL;
		memcpy(r->s[i], p, l);
		r->s[i][l] = '\0';
		p += l;
	}
	if (p != end)
		return -EINVAL;
	r->a.request_id = r->null[0] ? NULL : r->s[0];
	r->a.actor = r->null[1] ? NULL : r->s[1];
	r->a.cluster = r->null[2] ? NULL : r->s[2];
	r->a.method = r->null[3] ? NULL : r->s[3];
	r->a.path = r->null[4] ? NULL : r->s[4];
	r->a.actor_name = r->null[5] ? NULL : r->s[5];
	r->a.client = r->null[6] ? NULL : r->s[6];
	return 0;
}

static int aj_flush(struct store *s, struct aj_row *rows, size_t n)
{
	struct store_audit a[AJ_REPLAY_BATCH];
	size_t i;

	for (i = 0; i < n; i++)
		a[i] = rows[i].a;
	return n ? store_audit_append_many(s, a, n) : 0;
}

/* Reads file idx record by record into the database. Rows read, or -errno. */
static int64_t aj_replay_file(struct audit_journal *j, int idx, struct store *s)
{
	FILE *f;
	struct aj_row *rows = malloc(AJ_REPLAY_BATCH * sizeof(*rows));
	uint8_t *payload = malloc(AJ_MAX_PAYLOAD);
	int64_t total = 0;
	size_t n = 0;
	int fd, rc = 0;

	fd = open(j->path[idx], O_RDONLY | O_CLOEXEC);
	f = fd >= 0 ? fdopen(fd, "rb") : NULL;
	if (f == NULL || rows == NULL || payload == NULL) {
		if (fd >= 0 && f == NULL)
			close(fd);
		rc = f == NULL && fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (;;) {
		uint32_t head[3];

		if (fread(head, 1, sizeof(head), f) != sizeof(head))
			break;
		if (head[0] != AJ_MAGIC || head[1] > AJ_MAX_PAYLOAD ||
		    fread(payload, 1, head[1], f) != head[1] || aj_crc32(payload, head[1]) != head[2] ||
		    aj_decode(payload, head[1], &rows[n]) != 0) {
			LOG_WARN("audit journal %s: a damaged record after %lld rows; the rest is "
				 "skipped",
				 j->path[idx], (long long)total);
			break;
		}
		total++;
		if (++n == AJ_REPLAY_BATCH) {
			rc = aj_flush(s, rows, n);
			n = 0;
			if (rc < 0)
				goto out;
		}
	}
	rc = aj_flush(s, rows, n);
out:
	if (f)
		fclose(f);
	free(rows);
	free(payload);
	return rc < 0 ? rc : total;
}

int64_t audit_journal_replay(struct audit_journal *j, struct store *s)
{
	int64_t total = 0, n;
	int i;

	for (i = 0; i < AUDIT_JOURNAL_FILES; i++) {
		if (j->size[i] == 0)
			continue;
		n = aj_replay_file(j, i, s);
		if (n < 0)
			return n;
		total += n;
	}
	for (i = 0; i < AUDIT_JOURNAL_FILES; i++)
		if (audit_journal_truncate(j, i) < 0)
			return -EIO;
	j->current = 0;
	return total;
}
