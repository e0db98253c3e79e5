#!/bin/sh
# Gives the test suite a real PostgreSQL 15 (Debian's postgresql-15), started
# in a temporary directory, not as a system service.
#
#   scripts/pg-test-env.sh start   start (or reuse) it; prints, last,
#                                  LXCM_TEST_PG_URL=postgresql://...
#   scripts/pg-test-env.sh stop    stop it (only the one this script started)
#   scripts/pg-test-env.sh status  print the URL if it answers, else exit 1
#   scripts/pg-test-env.sh purge   stop, then delete its directory
#   scripts/pg-test-env.sh run CMD [ARGS]
#                                  start (or reuse) it, then run CMD with
#                                  LXCM_TEST_PG_URL in its environment
#
# Environment: LXCM_PG_DIR, the directory (default /tmp/lxcm-pg). The server
# listens on no TCP port, only on the unix socket in that directory, trusts
# local connections, and runs with fsync off (test data: speed over
# durability). The superuser is "lxcm"; each test creates and drops its
# own database.
#
# PostgreSQL refuses to run as root: as root the cluster belongs to the
# "postgres" user the package creates, and the server runs as that user.
set -eu

DIR=${LXCM_PG_DIR:-/tmp/lxcm-pg}
BIN=${LXCM_PG_BIN:-/usr/lib/postgresql/15/bin}
DATA=$DIR/data
URL="postgresql://lxcm@/postgres?host=$DIR"

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

answers() {
	"$BIN/pg_isready" -q -h "$DIR" -U lxcm -d postgres 2>/dev/null
}

start() {
	if answers; then
		echo "LXCM_TEST_PG_URL=$URL"
		return 0
	fi
	if [ ! -x "$BIN/postgres" ]; then
		echo "pg-test-env: $BIN/postgres missing (scripts/install-deps.sh installs postgresql-15)" >&2
		exit 1
	fi
	mkdir -p "$DIR"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
	if [ ! -f "$DATA/PG_VERSION" ]; then
		as_owner "$BIN/initdb" -D "$DATA" -U lxcm -A trust --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1 || {
			cat "$DIR/initdb.log" >&2
			exit 1
		}
	fi
	# setsid: the server outlives this script and the test runner's group.
	as_owner setsid "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 30 \
		-o "-k $DIR -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
		start >&2 || {
		cat "$DIR/server.log" >&2
		exit 1
	}
	echo "LXCM_TEST_PG_URL=$URL"
}

stop() {
	if [ -f "$DATA/postmaster.pid" ]; then
		as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) answers && echo "LXCM_TEST_PG_URL=$URL" ;;
purge) stop; rm -rf "$DIR" ;;
run)
	shift
	url=$(start | sed -n 's/^LXCM_TEST_PG_URL=//p')
	LXCM_TEST_PG_URL=$url exec "$@"
	;;
*)
	echo "usage: $0 start|stop|status|purge" >&2
	exit 2
	;;
esac
