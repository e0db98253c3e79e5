/*
 * audit_journal.h - the audit log's crash journal.
 *
 * Audit rows are written to the database in batches (audit.c), so a
 * SIGKILL would lose the rows of the last few milliseconds. Each row is
 * therefore first appended, synchronously and in one write(2), to one of
 * two journal files in the data directory (audit-journal.0 and .1). A
 * write(2) that returned is in the page cache and survives the process
 * (not a power cut: the database itself is not fsync'd per transaction
 * either). When a batch has committed and its file holds no other row
 * waiting, the file is truncated; rows go to the other file meanwhile. At
 * start, whatever the files hold is written to the database (a row whose
 * request_id is already there is ignored) and the files are emptied.
 *
 * Record: magic, payload length and CRC-32 of the payload (12 bytes), then
 * the payload: at, bytes_in, bytes_out, duration_ms (int64), status (int32),
 * then request_id, actor, cluster, method, path, actor_name, client, each
 * as a uint16 length (0xffff: NULL) and the bytes; a record that ends after
 * path (written before actor_name and client existed) has both NULL. Host
 * byte order: the journal never leaves the machine. Reading stops at the
 * first record that does not check out (a torn tail).
 */
#ifndef LXCM_AUDIT_JOURNAL_H
#define LXCM_AUDIT_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define AUDIT_JOURNAL_FILES 2

struct audit_journal;

/* Opens (creating, mode 0600) both files in dir. NULL on failure. */
struct audit_journal *audit_journal_open(const char *dir);
void audit_journal_close(struct audit_journal *j);

/*
 * Writes every row both files hold to s (synchronously: call before the
 * loop runs) and empties the files. Returns the number of rows read, or a
 * negative errno when the database refused them (the files are kept).
 */
int64_t audit_journal_replay(struct audit_journal *j, struct store *s);

/* Appends one row to the current file. Returns the file's index or -errno. */
int audit_journal_append(struct audit_journal *j, const struct store_audit *row);

/* The file new rows go to. */
int audit_journal_current(const struct audit_journal *j);
/* Makes idx the file new rows go to. */
void audit_journal_use(struct audit_journal *j, int idx);
/* Empties file idx (every row it held is in the database). */
int audit_journal_truncate(struct audit_journal *j, int idx);

/* Encodes one row; returns its length, or 0 if buf is too small. Exposed for tests. */
size_t audit_journal_encode(const struct store_audit *row, uint8_t *buf, size_t cap);

#endif
