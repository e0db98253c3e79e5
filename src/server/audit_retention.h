/*
 * audit_retention.h - --audit-retention: audit rows older than the
 * retention are deleted, AUDIT_PRUNE_BATCH rows per store call on a store
 * worker thread; after a full batch the next one waits AUDIT_PRUNE_YIELD_MS
 * (other store work and the loop go first); when none is left, the next
 * round comes after AUDIT_PRUNE_EVERY_MS, or half the retention when that
 * is shorter. The loop never waits for a prune.
 */
#ifndef LXCM_AUDIT_RETENTION_H
#define LXCM_AUDIT_RETENTION_H

#include <stdint.h>

struct server;

#define AUDIT_RETENTION_DEFAULT_S ((int64_t)90 * 86400)
#define AUDIT_PRUNE_BATCH 500
#define AUDIT_PRUNE_YIELD_MS 20
#define AUDIT_PRUNE_EVERY_MS (60 * 1000)

struct audit_retention;

/* Starts pruning for srv->cfg.audit_retention_s (0: keeps everything, returns NULL). */
struct audit_retention *audit_retention_start(struct server *srv);
/* After store_workers_stop (no prune is in flight any more): closes and frees. NULL ok. */
void audit_retention_free(struct audit_retention *r);

#endif
