/* unix_listen.c - the file of a listening unix socket (unix_listen.h). */
#include "net/unix_listen.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>


/*
 * Whether a process listens on the socket at path: a non-blocking connect
 * that is refused (or finds no socket any more) says nobody does. Any other
 * outcome (connected, a full backlog, no permission) counts as alive: only
 * a socket known to be dead may be replaced.
 */
static int unix_listen_alive(const char *path)
{
	struct sockaddr_un sa;
	int fd, rc, err;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	err = errno;
	close(fd);
	return !(rc < 0 && (err == ECONNREFUSED || err == ENOENT));
}

/* Clears the way for the bind: 0 when path is free now, else why not. */
static int unix_listen_clear(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	if (unix_listen_alive(path))
		return -EADDRINUSE;
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int unix_listen_bind(uv_pipe_t *pipe, const char *path, struct unix_listen_id *id)
{
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int rc;

	memset(id, 0, sizeof(*id));
	if (path[0] == '\0')
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	rc = unix_listen_clear(path);
	if (rc < 0)
		return rc;
	/* The socket file takes its mode from the umask at bind time. */
	old = umask(0177);
	rc = uv_pipe_bind(pipe, path);
	umask(old);
	if (rc < 0)
		return rc;
	if (lstat(path, &st) == 0) {
		id->dev = st.st_dev;
		id->ino = st.st_ino;
		id->valid = 1;
	}
	return 0;
}

void unix_listen_remove(const char *path, const struct unix_listen_id *id)
{
	struct stat st;

	if (path == NULL || !id->valid || lstat(path, &st) != 0)
		return;
	if (st.st_dev == id->dev && st.st_ino == id->ino && S_ISSOCK(st.st_mode))
		unlink(path);
}
