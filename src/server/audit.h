/*
 * audit.h - the audit log of proxied requests.
 *
 * One row per request that reached a cluster's tunnel (v1 or v2): who,
 * which cluster, method, path, status, bytes each way, duration. Rows are
 * written on the thread pool (store_run), fire and forget: a lost row is
 * logged, never a failed request.
 */
#ifndef LXCM_AUDIT_H
#define LXCM_AUDIT_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct http_request;

#define AUDIT_ACTOR_MAX 32

struct audit_entry {
	char actor[AUDIT_ACTOR_MAX];
	const char *cluster;
	const char *method;
	const char *path;
	int status;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t start_ms; /* uv_now() when the request arrived */
};

/*
 * Names the caller without revealing its secret: "token:" and the first 12
 * hex digits of the SHA-256 of its API token, or "anonymous".
 */
void audit_actor(const struct http_request *req, char out[AUDIT_ACTOR_MAX]);
void audit_record(struct server *srv, const struct audit_entry *e);

#endif
