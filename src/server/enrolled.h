/*
 * enrolled.h - the certificate fingerprints of the enrolled clusters, in
 * memory (loop thread only).
 *
 * The connector keeps TLS sessions for resumption only for enrolled
 * clusters (tls_server_set_session_filter), so a stranger with a
 * self-signed certificate cannot fill the session store. Loaded from the
 * store at start, then kept up to date by the store's change feed
 * (enrolled_on_change), whatever code path joined or removed a cluster.
 */
#ifndef LXCM_ENROLLED_H
#define LXCM_ENROLLED_H

#include "store/store.h"

struct enrolled;

struct enrolled *enrolled_new(void);
void enrolled_free(struct enrolled *e);
/* Fills the set from the store's clusters (synchronously, at start). 0 or -errno. */
int enrolled_load(struct enrolled *e, struct store *s);
int enrolled_add(struct enrolled *e, const char *fingerprint);
void enrolled_remove(struct enrolled *e, const char *fingerprint);
int enrolled_has(const struct enrolled *e, const char *fingerprint);
size_t enrolled_count(const struct enrolled *e);
/* Change feed subscriber (data: the set): adds joined clusters, forgets removed ones. */
struct store_change;
void enrolled_on_change(const struct store_change *c, void *data);
/* A tls_session_filter_fn over the set (arg: struct enrolled *). */
int enrolled_session_filter(const char *fingerprint, void *arg);

#endif
