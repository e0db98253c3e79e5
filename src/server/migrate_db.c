/*
 * migrate_db.c - `lxcm-server migrate-db`: moves a single server's state
 * (SQLite) into PostgreSQL, or between any two stores, with store_copy.
 *
 * Both stores are opened (which applies their migrations), the
 * destination must be empty, and the copy is one transaction of the
 * destination: a failure leaves it empty. No server may run on either.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/secret.h"
#include "server/server.h"
#include "store/store.h"

static void migrate_db_usage(FILE *f)
{
	fputs("Usage: lxcm-server migrate-db --from URL --to URL [options]\n"
	      "\n"
	      "Copies every cluster (with its last status and settings), join token,\n"
	      "API token and audit row from one store into another, empty one, keeping\n"
	      "ids; typically a single server's SQLite into PostgreSQL:\n"
	      "  lxcm-server migrate-db --from sqlite:/var/lib/lxcm-server/lxcm.db \\\n"
	      "      --to postgresql://lxcm@db/lxcm --to-password-file /etc/lxcm/db.password\n"
	      "Stop the server first. The destination gets all rows or none.\n"
	      "\n"
	      "Options:\n"
	      "  --from URL                 the store to read (as --db)\n"
	      "  --to URL                   the empty store to fill (as --db)\n"
	      "  --from-password-file FILE  password of --from (mode 0600)\n"
	      "  --to-password-file FILE    password of --to (mode 0600)\n"
	      "  --help\n",
	      f);
}

/* Opens url with the password in file (may be NULL). */
static int migrate_db_open(const char *what, const char *url, const char *file, struct store **out)
{
	char *password = NULL;
	int rc;

	if (file != NULL && (rc = secret_read_file(file, &password)) < 0) {
		LOG_ERROR("cannot use the %s password file %s: %s", what, file,
			  rc == -EPERM ? "others may read it (chmod 600)" : strerror(-rc));
		return rc;
	}
	rc = store_open_password(url, password, out);
	secret_free_text(password);
	if (rc < 0)
		LOG_ERROR("cannot open the %s store: %s", what, strerror(-rc));
	return rc;
}

int migrate_db_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"from", required_argument, NULL, 'f'},
	    {"to", required_argument, NULL, 't'},
	    {"from-password-file", required_argument, NULL, 'F'},
	    {"to-password-file", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *from = NULL, *to = NULL, *from_pw = NULL, *to_pw = NULL;
	struct store *src = NULL, *dst = NULL;
	struct store_copy_counts counts;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'F': from_pw = optarg; break;
		case 'T': to_pw = optarg; break;
		case 'h': migrate_db_usage(stdout); return 0;
		default: migrate_db_usage(stderr); return 2;
		}
	}
	if (from == NULL || to == NULL || optind != argc) {
		migrate_db_usage(stderr);
		return 2;
	}
	if (strcmp(from, to) == 0) {
		LOG_ERROR("--from and --to name the same store");
		return 2;
	}
	rc = migrate_db_open("--from", from, from_pw, &src);
	if (rc == 0)
		rc = migrate_db_open("--to", to, to_pw, &dst);
	if (rc == 0)
		rc = store_copy(src, dst, &counts);
	if (rc == 0)
		LOG_INFO("migrated %lld clusters, %lld join tokens, %lld API tokens and %lld audit rows",
			 (long long)counts.rows[0], (long long)counts.rows[3],
			 (long long)counts.rows[4], (long long)counts.rows[5]);
	else
		LOG_ERROR("nothing was migrated");
	store_close(dst);
	store_close(src);
	return rc == 0 ? 0 : 1;
}
