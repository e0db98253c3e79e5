/*
 * fsutil.h - small file-system helpers: recursive mkdir, atomic whole-file
 * write, bounded whole-file read. All return 0 or a negative errno code.
 */
#ifndef LXCM_FSUTIL_H
#define LXCM_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Creates path and any missing parents with mode (as mkdir(2), so the umask
 * applies). Components that already exist as directories are fine; one that
 * exists as something else gives -ENOTDIR or -EEXIST.
 */
int fs_mkdir_p(const char *path, mode_t mode);

/*
 * Replaces path atomically with len bytes of data: writes a new file
 * "path.tmp.XXXXXX" in the same directory with exactly mode (set with fchmod,
 * so the umask neither widens nor narrows it), fsyncs it, renames it over
 * path and fsyncs the directory. Readers see the old content or the new,
 * never a mix. On failure the temporary file is removed and path is intact.
 */
int fs_write_file(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Reads the whole file into a malloc'd buffer, NUL-terminated (the NUL is not
 * counted in *len). Returns 0, -E2BIG if the file holds more than max bytes,
 * or the open/read error (-ENOENT, -EACCES, ...). On error *out is NULL.
 */
int fs_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
