/*
 * unix_listen.h - the file of a listening unix socket: made private (0600)
 * without a window, a stale one left by a dead process replaced, anything
 * else at the path refused, and removed at the end only if it is still
 * ours.
 *
 * For `lxcm proxy --listen unix:PATH` (through http_server_config.unix_path):
 * whoever can connect to that socket acts with the user's API token, so the
 * file must never exist with wider permissions, not even for a moment.
 */
#ifndef LXCM_UNIX_LISTEN_H
#define LXCM_UNIX_LISTEN_H

#include <sys/types.h>

#include <uv.h>

/* Which file the bind made (device and inode), for unix_listen_remove. */
struct unix_listen_id {
	dev_t dev;
	ino_t ino;
	int valid;
};

/*
 * Binds pipe (uv_pipe_init done, not yet bound) to path with mode 0600:
 * the process umask is narrowed around the bind, so the socket is created
 * 0600 rather than chmod'ed later. Meant for a process's start, before
 * other threads create files. When path exists: a unix socket nobody
 * listens on (connect refused) is a stale one and is replaced; a socket
 * that answers is -EADDRINUSE; anything that is not a socket (a file, a
 * directory, a symbolic link) is -EEXIST and is left alone. A path that
 * does not fit a sockaddr_un is -ENAMETOOLONG. 0 or a negative errno/uv
 * code; id then names the file made.
 */
int unix_listen_bind(uv_pipe_t *pipe, const char *path, struct unix_listen_id *id);

/* Unlinks path if it is still the socket id names (not one put there since). */
void unix_listen_remove(const char *path, const struct unix_listen_id *id);

#endif
