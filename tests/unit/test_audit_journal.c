/*
 * test_audit_journal.c - the audit crash journal: append, replay into a real
 * SQLite store, torn and hostile files, replay twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/audit_journal.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	char db[128];
	struct store *s;
};

static void rm_in(const char *dir, const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/lxcm-ajournal-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/lxcm.db", f->dir);
	assert_int_equal(store_open(f->db, &f->s), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {"lxcm.db",	       "lxcm.db-wal",	  "lxcm.db-shm",
					    "audit-journal.0", "audit-journal.1", "lxcm.db-journal"};

	store_close(f->s);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		rm_in(f->dir, names[i]);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct store_audit row(const char *id, const char *path)
{
	return (struct store_audit){.request_id = id,
				    .at = 1700000000,
				    .actor = "token:0123456789ab",
				    .cluster = "c1",
				    .method = "GET",
				    .path = path,
				    .status = 200,
				    .bytes_in = 1,
				    .bytes_out = 2,
				    .duration_ms = 3};
}

static int64_t count(struct fixture *f)
{
	int64_t n = -1;

	assert_int_equal(store_audit_count(f->s, &n), 0);
	return n;
}

static off_t file_size(struct fixture *f, int idx)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/audit-journal.%d", f->dir, idx);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	return st.st_size;
}

static void append_raw(struct fixture *f, int idx, const void *data, size_t len)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/audit-journal.%d", f->dir, idx);
	fd = open(p, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_append_replay(void **state)
{
	struct fixture *f = *state;
	struct audit_journal *j = audit_journal_open(f->dir);
	struct store_audit a = row("id-a", "/1.0/a"), b = row("id-b", "/1.0/b");

	assert_non_null(j);
	assert_int_equal(audit_journal_replay(j, f->s), 0);
	assert_int_equal(audit_journal_append(j, &a), 0);
	audit_journal_use(j, 1);
	assert_int_equal(audit_journal_append(j, &b), 1);
	b.actor = NULL; /* NULL strings survive as NULL */
	b.request_id = "id-c";
	assert_int_equal(audit_journal_append(j, &b), 1);
	assert_true(file_size(f, 0) > 0 && file_size(f, 1) > 0);
	audit_journal_close(j);

	/* The next start: every row lands, the files are emptied. */
	j = audit_journal_open(f->dir);
	assert_int_equal(audit_journal_replay(j, f->s), 3);
	assert_int_equal(count(f), 3);
	assert_int_equal(file_size(f, 0), 0);
	assert_int_equal(file_size(f, 1), 0);
	assert_int_equal(audit_journal_current(j), 0);
	/* The same rows again (killed before the truncation): written once. */
	a.request_id = "id-a";
	assert_int_equal(audit_journal_append(j, &a), 0);
	assert_int_equal(audit_journal_truncate(j, 1), 0);
	audit_journal_close(j);
	j = audit_journal_open(f->dir);
	assert_int_equal(audit_journal_replay(j, f->s), 1);
	assert_int_equal(count(f), 3);
	audit_journal_close(j);
}

static void test_torn_and_hostile(void **state)
{
	struct fixture *f = *state;
	struct audit_journal *j = audit_journal_open(f->dir);
	struct store_audit a = row("id-1", "/x");
	uint8_t buf[4096], junk[512];
	size_t n;

	assert_non_null(j);
	assert_int_equal(audit_journal_append(j, &a), 0);
	audit_journal_close(j);
	/* A torn copy of a record, then junk: only the whole records count. */
	a.request_id = "id-2";
	n = audit_journal_encode(&a, buf, sizeof(buf));
	assert_true(n > 20);
	append_raw(f, 0, buf, n - 5);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	append_raw(f, 1, junk, sizeof(junk));
	j = audit_journal_open(f->dir);
	assert_int_equal(audit_journal_replay(j, f->s), 1);
	assert_int_equal(count(f), 1);
	audit_journal_close(j);

	/* A record changed after it was written (its CRC no longer matches) is refused. */
	n = audit_journal_encode(&a, buf, sizeof(buf));
	buf[12 + 36] = 0xfe; /* first string length: 0x..fe, past the payload */
	append_raw(f, 0, buf, n);
	j = audit_journal_open(f->dir);
	assert_int_equal(audit_journal_replay(j, f->s), 0);
	assert_int_equal(count(f), 1);
	audit_journal_close(j);

	/* Too small a buffer encodes nothing. */
	assert_int_equal(audit_journal_encode(&a, buf, 20), 0);
}

/* CRC-32 (IEEE), bit by bit: the journal's record checksum, to forge an old record. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
}

/*
 * Records from before actor_name and client (five strings) still replay,
 * with both NULL; new records carry them into the database.
 */
static void test_old_and_new_records(void **state)
{
	struct fixture *f = *state;
	struct store_audit a = row("id-old", "/old"), b = row("id-new", "/new");
	struct store_audit_filter q = {.status_max = 999, .until = INT64_MAX, .limit = 10};
	struct store_audit_row *rows = NULL;
	uint8_t buf[4096];
	uint32_t head[3];
	struct audit_journal *j;
	size_t n = 0;

	/* The old layout is the new one without the last two (NULL) strings. */
	n = audit_journal_encode(&a, buf, sizeof(buf));
	assert_true(n > 16);
	n -= 4;
	head[0] = 0x4c58414aU;
	head[1] = (uint32_t)(n - 12);
	head[2] = crc32_ieee(buf + 12, n - 12);
	memcpy(buf, head, sizeof(head));
	j = audit_journal_open(f->dir);
	assert_non_null(j);
	audit_journal_close(j);
	append_raw(f, 0, buf, n);
	b.actor_name = "api-token:ci-bot";
	b.client = "192.0.2.7";
	n = audit_journal_encode(&b, buf, sizeof(buf));
	append_raw(f, 1, buf, n);
	j = audit_journal_open(f->dir);
	assert_int_equal(audit_journal_replay(j, f->s), 2);
	audit_journal_close(j);
	assert_int_equal(store_audit_query(f->s, &q, &rows, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].request_id, "id-old") == 0) {
			assert_null(rows[i].actor_name);
			assert_null(rows[i].client);
			assert_string_equal(rows[i].path, "/old");
		} else {
			assert_string_equal(rows[i].actor_name, "api-token:ci-bot");
			assert_string_equal(rows[i].client, "192.0.2.7");
		}
	}
	store_audit_rows_free(rows, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_old_and_new_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_and_hostile, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
