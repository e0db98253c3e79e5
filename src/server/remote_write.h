/*
 * remote_write.h - the LXD metrics of every cluster, sent on by Prometheus
 * remote write (--metrics-remote-write-url).
 *
 * A stored heartbeat hands its server_metrics (one exposition text per
 * LXD member) to remote_write_heartbeat, after its answer went out. The
 * texts are parsed, labelled with cluster and member, packed and
 * compressed on libuv's thread pool (remote_write_encode.c), never on the
 * loop and never inside a store transaction; at most RW_MAX_ENCODING
 * heartbeats are encoded at once, more are dropped and counted. Encoded
 * batches wait in a bounded queue (--metrics-remote-write-queue batches,
 * and RW_QUEUE_MAX_BYTES); when it is full the oldest batch waiting is
 * dropped and counted. One request is in flight at a time, in order;
 * a network error, a 5xx or a 429 is retried with exponential backoff
 * (RW_BACKOFF_MIN_MS doubling to RW_BACKOFF_MAX_MS), any other 4xx drops
 * the batch (the receiver will never take it). So a slow or dead receiver
 * costs memory up to the bound and nothing else: heartbeats never wait.
 *
 * Loop thread only, except remote_write_encode, which is pure.
 */
#ifndef LXCM_REMOTE_WRITE_H
#define LXCM_REMOTE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define RW_DEFAULT_QUEUE 1000
#define RW_QUEUE_MAX_BYTES (256u << 20)
#define RW_MAX_ENCODING 4
#define RW_BACKOFF_MIN_MS 250
#define RW_BACKOFF_MAX_MS 30000
#define RW_CONNECT_TIMEOUT_MS 5000
#define RW_RESPONSE_TIMEOUT_MS 30000
#define RW_SECRET_MAX 4096 /* bytes of a bearer or basic-auth file */

struct server;
struct remote_write;

struct remote_write_config {
	const char *url; /* http://host[:port]/path or https://... */
	const char *bearer_file;     /* Authorization: Bearer <file's first line> */
	const char *basic_auth_file; /* "user:password" on its first line */
	const char *ca_file;	     /* https: CAs to trust (default: the system's) */
	size_t queue_max;	     /* batches; 0: RW_DEFAULT_QUEUE */
};

/* NULL on a bad URL or unreadable file (logged). Registers its metrics in srv->telemetry. */
struct remote_write *remote_write_new(struct server *srv, const struct remote_write_config *cfg);
/*
 * Takes a reference to body (the heartbeat's JSON object) until its
 * server_metrics are encoded. Safe with rw NULL (remote write is off).
 */
void remote_write_heartbeat(struct remote_write *rw, const char *cluster, json_t *body);
/* Shutdown: the request in flight is cancelled, nothing new starts. */
void remote_write_stop(struct remote_write *rw);
/* After the loop ran dry. Safe with NULL. */
void remote_write_free(struct remote_write *rw);

/* ---- encoding (remote_write_encode.c) ---- */

struct remote_write_text {
	const char *member;
	const char *text;
	size_t len;
};

struct remote_write_batch {
	char *body; /* snappy-compressed WriteRequest (malloc'd), NULL with no sample */
	size_t len;
	size_t nsamples;
	size_t malformed; /* texts left out as malformed */
};

/*
 * Encodes every sample of the texts (malformed ones skipped and counted)
 * with labels cluster and member and timestamp now_ms (unless the sample
 * has its own). 0, or -ENOMEM / -EIO (then out holds nothing).
 */
int remote_write_encode(const char *cluster, const struct remote_write_text *texts, size_t n,
			int64_t now_ms, struct remote_write_batch *out);

#endif
