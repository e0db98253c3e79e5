/*
 * fzserver.h - an lxcm-server inside a fuzzer process: one struct server
 * with a SQLite store in a temporary directory, the tunnel registry, and
 * both listeners (management and connector) with their real route tables
 * and pre_route hooks, plaintext on loopback ports of the fznet loop.
 *
 * Over plaintext there are no client certificates; a request to the
 * connector with an "X-Fuzz-Cert" header is treated as coming from the
 * enrolled cluster "enrolled" (certificate FZSERVER_ENROLLED_FP). The
 * management listener takes "Authorization: Bearer " FZSERVER_API_TOKEN.
 */
#ifndef LXCM_FUZZ_FZSERVER_H
#define LXCM_FUZZ_FZSERVER_H

#include "server/server.h"

/*
 * The certificate fingerprint of "enrolled". Not the one of the PEM in the
 * corpus, which joins use for "joinme" (a second cluster with the same
 * certificate is refused).
 */
#define FZSERVER_ENROLLED_FP "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0"
#define FZSERVER_API_TOKEN "lxcm_fuzz"
/* The secret of the join token for "joinme" that the corpus carries. */
#define FZSERVER_JOIN_SECRET "fuzzsecret0123456789abcdef0123456789abcdef0123456789abcdef012345"

/*
 * Starts the server on fznet_loop() (once; aborts on failure) and returns
 * it. The database directory is removed at exit. Call fznet_mark_baseline
 * afterwards.
 */
struct server *fzserver_start(void);

/*
 * Makes sure FZSERVER_API_TOKEN is still valid: an input may have revoked
 * it through /1.0/auth/tokens. Before each input that can.
 */
void fzserver_rearm_auth(void);

/* Gives "joinme" a fresh join token (and no cluster): before a join input. */
void fzserver_rearm_join(void);

/*
 * Enrolls a cluster name whose TLS client certificate has this SHA-256
 * fingerprint (once; the server starts with "enrolled" so enrolled).
 */
void fzserver_enroll(const char *name, const char *fingerprint);

#endif
