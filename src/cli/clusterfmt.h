/*
 * clusterfmt.h - the cluster object of the management API made readable,
 * shared by `cluster list` and `cluster show`. Each writes a short string
 * into out ("-" when the server sent nothing usable) and never fails.
 */
#ifndef LXCM_CLI_CLUSTERFMT_H
#define LXCM_CLI_CLUSTERFMT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * The cells of `cluster list` (struct output_column's cell): each writes
 * into out and returns it (clusterfmt_tunnel returns a literal); key is
 * the field read where one is named, now is not used.
 */
/* "0.42/8": the 1-minute load over the CPU count. */
const char *clusterfmt_cpu(json_t *c, const char *key, int64_t now, char *out, size_t len);
/* "1.2GiB/7.8GiB": memory used over total. */
const char *clusterfmt_memory(json_t *c, const char *key, int64_t now, char *out, size_t len);
/* "12.0GiB/100.0GiB": the sums over storage_pool_usages. */
const char *clusterfmt_storage(json_t *c, const char *key, int64_t now, char *out, size_t len);
/* The integer field key, or "-". */
const char *clusterfmt_count(json_t *c, const char *key, int64_t now, char *out, size_t len);
/* "yes" / "no" from tunnel_registered, with tunnel.transport when known: "yes (direct)". */
const char *clusterfmt_tunnel(json_t *c, const char *key, int64_t now, char *out, size_t len);
/* "2026-11-24T22:58:01Z (3d ago)", or "never", from an RFC 3339 field. */
void clusterfmt_when(json_t *c, const char *key, int64_t now, char *out, size_t len);

#endif
