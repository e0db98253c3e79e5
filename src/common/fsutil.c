/* fsutil.c - recursive mkdir, atomic write, bounded read. */
#include "common/fsutil.h"

#include "common/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir(2) that accepts an existing directory. */
static int fs_mkdir_one(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int fs_mkdir_p(const char *path, mode_t mode)
{
	char *p, *s;
	int rc = 0;

	if (path == NULL || path[0] == '\0')
		return -EINVAL;
	p = strdup(path);
	if (p == NULL)
		return -ENOMEM;
	/* Create each prefix ending before a '/', then the whole path. */
	for (s = p + 1; *s != '\0'; s++) {
		if (*s != '/' || s[-1] == '/')
			continue;
		*s = '\0';
		rc = fs_mkdir_one(p, mode);
		*s = '/';
		if (rc < 0)
			goto out;
	}
	rc = fs_mkdir_one(p, mode);
out:
	free(p);
	return rc;
}

static int fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes a completed rename durable; best effort, as some file systems refuse. */
static void fs_sync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd;

	if (copy == NULL)
		return;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

int fs_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[4096];
	int fd, n, rc;

	if (path == NULL || path[0] == '\0' || (data == NULL && len > 0))
		return -EINVAL;
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = fchmod(fd, mode) == 0 ? 0 : -errno;
	if (rc == 0)
		rc = fs_write_all(fd, data, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	fs_sync_dir_of(path);
	return 0;
}

int fs_read_file(const char *path, size_t max, char **out, size_t *len)
{
	char chunk[8192];
	struct buf b;
	ssize_t n;
	int fd, rc = 0;

	*out = NULL;
	if (len)
		*len = 0;
	if (path == NULL)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf_init(&b, max);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		rc = buf_append(&b, chunk, (size_t)n);
		if (rc < 0)
			break;
	}
	close(fd);
	/* Key files pass through here: leave no copy on the stack. */
	explicit_bzero(chunk, sizeof(chunk));
	if (rc < 0) {
		buf_free(&b);
		return rc;
	}
	*out = buf_steal(&b, len);
	return *out ? 0 : -ENOMEM;
}
