/*
 * known_servers.h - the CLI's trust-on-first-use store of server
 * certificate fingerprints, like ssh's known_hosts.
 *
 * The file is $XDG_CONFIG_HOME/lxcm/known_servers, else
 * ~/.config/lxcm/known_servers: one "host:port fingerprint" per line (the key
 * as util_parse_server writes it, the fingerprint as 64 lowercase hex
 * digits). Blank lines and lines starting with '#' are ignored, and so are
 * malformed lines (a hand edit must not lock the user out of every server).
 * The directory is created 0700 and the file written 0600, atomically.
 * Functions return 0 or a negative errno code unless noted.
 */
#ifndef LXCM_CLI_KNOWN_SERVERS_H
#define LXCM_CLI_KNOWN_SERVERS_H

#include <stddef.h>

/* Largest known_servers file read. */
#define KNOWN_SERVERS_MAX (1024 * 1024)

/* Writes the file's path to out; -ENOENT if neither variable gives a home. */
int known_servers_path(char *out, size_t len);

/*
 * Looks key up in len bytes of file content (need not be NUL-terminated).
 * Returns 1 and writes the fingerprint (with a NUL) to fp when found,
 * 0 when not. The first matching line wins.
 */
int known_servers_find(const char *text, size_t len, const char *key, char fp[65]);

/* As known_servers_find on the file at path; a missing file is "not found". */
int known_servers_lookup(const char *path, const char *key, char fp[65]);

/*
 * Appends "key fp" to the file at path, creating the directory (0700) and
 * the file (0600) as needed; any earlier line for key is dropped.
 */
int known_servers_add(const char *path, const char *key, const char *fp);

#endif
