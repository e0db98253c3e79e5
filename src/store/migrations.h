/* migrations.h - numbered SQL migrations, generated into the build. */
#ifndef LXCM_STORE_MIGRATIONS_H
#define LXCM_STORE_MIGRATIONS_H

struct store_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct store_migration store_migrations[];
extern const int store_migration_count;
/* The same migrations translated for PostgreSQL (cmake/embed_migrations.cmake). */
extern const struct store_migration store_pg_migrations[];
extern const int store_pg_migration_count;

#endif
