#!/bin/sh
# Gives the test suite a real, running LXD from Debian's `lxd` package.
#
#   scripts/lxd-test-env.sh start    start (or reuse) the test LXD, seed it,
#                                    print LXD_DIR=... and, last, LXD_SOCKET=...
#   scripts/lxd-test-env.sh stop     stop the LXD this script started (only that one)
#   scripts/lxd-test-env.sh status   print the socket if our LXD answers, else exit 1
#   scripts/lxd-test-env.sh purge    stop, then delete the whole state directory
#
# Environment:
#   LXCM_LXD_DIR      state directory (default /tmp/lxcm-lxd). The daemon's
#                     LXD_DIR is $LXCM_LXD_DIR/lxd, its socket
#                     $LXCM_LXD_DIR/lxd/unix.socket, its log $LXCM_LXD_DIR/lxd.log.
#   LXCM_LXD_SOCKET   use this already running LXD instead of starting one
#                     (seeded the same way, never stopped by `stop`).
#   LXCM_LXD_RUNNING  0 to skip the best-effort running instance (default 1).
#
# Progress goes to stderr; stdout holds only the KEY=value lines, so a test can
# do: eval "$(scripts/lxd-test-env.sh start)" and then use "$LXD_SOCKET".
# Seed: storage pool "default" (dir) as root disk of the default profile of
# projects "default" and "lxcm-test"; stopped empty containers
# lxcm-test-empty (default) and lxcm-test-other (lxcm-test); and, if a static
# binary can be linked, lxcm-test-running (default), running. The LXD is
# standalone: GET /1.0/cluster/members answers 500 "Server is not clustered".
# Start takes about a second; a clean stop under one.
#
# Why it looks like this (found on the CI machine, a Debian 12 Firecracker VM
# that looks like a Docker container to systemd-detect-virt, no systemd, no
# internet, root, full uid map, /etc/subuid already has root:100000:...):
#
# - A private LXD_DIR. LXD keeps everything (database, socket, storage pools,
#   logs, devlxd, seccomp socket) under LXD_DIR, which is how LXD's own test
#   suite runs several daemons on one host. We never touch /var/lib/lxd, so a
#   system LXD, if any, is not disturbed. Unix socket paths are limited to 108
#   bytes, so the state directory must stay short.
# - `lxd --group root`: Debian's package creates a `lxd` group for the socket
#   but the tests run as root; root is enough and no group setup is needed.
# - `setsid`: the daemon must outlive this script and must not die with the
#   process group or terminal of whatever test runner called us. It must not
#   inherit our flock fd either (it would hold the lock for its lifetime).
# - No systemd: we start the daemon ourselves and stop it with `lxd shutdown`
#   (which also stops its instances and unmounts its shmounts/devlxd tmpfs).
# - Warnings in the log that are expected here and harmless for us: AppArmor
#   unavailable, no iptables (firewall "xtables" fallback), no vhost_vsock (so
#   no VMs), no DNS (instance types and remote images cannot be fetched).
#   Therefore no image server: the running instance below uses an image we
#   build locally from a tiny static init.
# - No networks are created: containers need none to count or to run.
# - /1.0/metrics answers over the unix socket without a metrics certificate
#   or core.metrics_address (the unix socket is trusted as root).
set -eu

STATE=${LXCM_LXD_DIR:-/tmp/lxcm-lxd}
MARKER=$STATE/.lxcm-lxd-test-env
LOG=$STATE/lxd.log
PIDFILE=$STATE/lxd.pid
LOCK=$STATE/lock
PROJECT2=lxcm-test
IMAGE_ALIAS=lxcm-test-init

msg() { printf 'lxd-test-env: %s\n' "$*" >&2; }
die() { msg "$*"; exit 1; }

# The socket answers when GET /1.0 returns a sync response.
# (jq 1.6 -e exits 0 on empty input, so the body is checked separately.)
answers() {
	body=$(curl -sf --max-time 5 --unix-socket "$1" lxd/1.0 2>/dev/null) || return 1
	printf '%s' "$body" | jq -e '.type == "sync"' >/dev/null 2>&1
}

server_pid() {
	curl -sf --max-time 5 --unix-socket "$1" lxd/1.0 |
		jq -r '.metadata.environment.server_pid // empty'
}

# Every lxc call of this script goes to exactly one daemon: ours (LXD_DIR) or
# the one named by LXCM_LXD_SOCKET (LXD_SOCKET, honoured by the lxc client).
setup_client_env() {
	if [ -n "${LXCM_LXD_SOCKET:-}" ]; then
		SOCK=$LXCM_LXD_SOCKET
		export LXD_SOCKET="$SOCK"
		unset LXD_DIR
	else
		export LXD_DIR="$STATE/lxd"
		SOCK=$LXD_DIR/unix.socket
		unset LXD_SOCKET
	fi
	# A private client config, so a user's remotes and default project are
	# not used and not changed.
	export LXD_CONF="$STATE/client"
	mkdir -p "$LXD_CONF"
	if [ "$(printf %s "$SOCK" | wc -c)" -gt 100 ]; then
		die "socket path too long for a unix socket: $SOCK (set a shorter LXCM_LXD_DIR)"
	fi
}

# Is PID the lxd daemon this script started for this state directory?
is_our_daemon() {
	pid=$1
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
	[ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" = "$(command -v lxd)" ] || return 1
	tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "LXD_DIR=$STATE/lxd"
}

# Waits up to 60 s for our daemon (pid $1) to answer; gives up at once if it
# exits (a bad start should not cost a minute).
wait_ready() {
	i=0
	while [ $i -lt 60 ]; do
		if lxd waitready --timeout 1 >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$1" 2>/dev/null || return 1
		i=$((i + 1))
	done
	return 1
}

start_daemon() {
	msg "starting lxd (LXD_DIR=$LXD_DIR, log $LOG)"
	mkdir -p "$LXD_DIR"
	chmod 0711 "$STATE" "$LXD_DIR"
	: >"$MARKER"
	printf '\n=== %s start\n' "$(date -u +%FT%TZ)" >>"$LOG"
	# 9>&-: the daemon must not inherit our lock, or it holds it forever.
	setsid lxd --group root --verbose </dev/null >>"$LOG" 2>&1 9>&- &
	started=$!
	printf '%s\n' "$started" >"$PIDFILE"
	if ! wait_ready "$started"; then
		msg "lxd did not become ready; last log lines:"
		tail -n 30 "$LOG" >&2 || true
		if is_our_daemon "$started"; then
			kill "$started" 2>/dev/null || true
		fi
		rm -f "$PIDFILE"
		exit 1
	fi
	# The daemon itself says which pid it is ($! is setsid's if it forked).
	pid=$(server_pid "$SOCK")
	printf '%s\n' "${pid:-$started}" >"$PIDFILE"
}

# Profile "default" of project $1 gets a root disk on pool "default".
ensure_root_disk() {
	prof=$(lxc query "/1.0/profiles/default?project=$1")
	if ! printf '%s' "$prof" | jq -e '.devices.root' >/dev/null; then
		lxc profile device add default root disk path=/ pool=default --project "$1" >&2
	fi
}

# instance $1 in project $2 exists (created empty when missing).
ensure_empty_instance() {
	if ! lxc query "/1.0/instances/$1?project=$2" >/dev/null 2>&1; then
		lxc init --empty "$1" --project "$2" >&2
	fi
}

# Builds and imports a unified image whose rootfs holds only a static /sbin/init
# that sleeps until LXD asks it to stop (SIGPWR). Without internet there is no
# other image to run, and this costs one small static binary.
ensure_init_image() {
	if lxc query "/1.0/images/aliases/$IMAGE_ALIAS" >/dev/null 2>&1; then
		return 0
	fi
	command -v cc >/dev/null || { msg "no C compiler: no running instance"; return 1; }
	img=$STATE/image
	rm -rf "$img"
	mkdir -p "$img/rootfs/sbin" "$img/rootfs/dev" "$img/rootfs/proc" \
		"$img/rootfs/sys" "$img/rootfs/tmp" "$img/rootfs/run" "$img/rootfs/etc"
	cat >"$img/init.c" <<'EOF'
#include <signal.h>
#include <unistd.h>

/* PID 1 of a container ignores signals it has no handler for, so LXD's
 * clean-stop signal (SIGPWR) needs one or every stop waits for the timeout. */
static void bye(int sig)
{
	(void)sig;
	_exit(0);
}

int main(void)
{
	signal(SIGPWR, bye);
	signal(SIGTERM, bye);
	signal(SIGINT, bye);
	for (;;)
		pause();
}
EOF
	cc -static -O2 -o "$img/rootfs/sbin/init" "$img/init.c" >&2 ||
		{ msg "static link failed: no running instance"; return 1; }
	cat >"$img/metadata.yaml" <<EOF
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: lxcm test image (static sleeping init)
  os: lxcm
  release: test
EOF
	tar --numeric-owner --owner=0 --group=0 -C "$img" -czf "$img/image.tar.gz" \
		metadata.yaml rootfs
	lxc image import "$img/image.tar.gz" --alias "$IMAGE_ALIAS" >&2
}

ensure_running_instance() {
	[ "${LXCM_LXD_RUNNING:-1}" = 1 ] || return 0
	ensure_init_image || return 0
	if ! lxc query "/1.0/instances/lxcm-test-running" >/dev/null 2>&1; then
		lxc init "$IMAGE_ALIAS" lxcm-test-running >&2 ||
			{ msg "cannot create lxcm-test-running"; return 0; }
	fi
	st=$(lxc query /1.0/instances/lxcm-test-running | jq -r .status)
	if [ "$st" != Running ]; then
		lxc start lxcm-test-running >&2 ||
			msg "cannot start lxcm-test-running (continuing with stopped instances)"
	fi
}

# Idempotent seed: pool "default" (dir), root disks, two empty instances in
# two projects, and if possible one running instance.
seed() {
	if ! lxc query /1.0/storage-pools/default >/dev/null 2>&1; then
		lxc storage create default dir >&2
	fi
	ensure_root_disk default
	if ! lxc query "/1.0/projects/$PROJECT2" >/dev/null 2>&1; then
		lxc project create "$PROJECT2" >&2
	fi
	ensure_root_disk "$PROJECT2"
	ensure_empty_instance lxcm-test-empty default
	ensure_empty_instance lxcm-test-other "$PROJECT2"
	ensure_running_instance
}

cmd_start() {
	if [ -n "${LXCM_LXD_SOCKET:-}" ]; then
		answers "$SOCK" || die "LXCM_LXD_SOCKET=$SOCK does not answer"
		msg "using the LXD at $SOCK (not started by us, will not be stopped)"
	elif answers "$SOCK"; then
		msg "reusing the LXD answering on $SOCK"
	elif pid=$(cat "$PIDFILE" 2>/dev/null) && is_our_daemon "$pid"; then
		# Ours, alive but not answering yet (or hung): never start a second
		# daemon on the same LXD_DIR.
		msg "lxd pid $pid is running but not answering; waiting"
		wait_ready "$pid" || die "lxd pid $pid does not answer; try: $0 stop"
	else
		start_daemon
	fi
	seed
	if [ -z "${LXCM_LXD_SOCKET:-}" ]; then
		printf 'LXD_DIR=%s\n' "$LXD_DIR"
	fi
	printf 'LXD_SOCKET=%s\n' "$SOCK"
}

# Unmounts whatever our daemon left mounted under its own LXD_DIR (only there),
# deepest first. After a clean `lxd shutdown` there is nothing.
umount_leftovers() {
	awk -v d="$LXD_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts |
		sort -r | while read -r mnt; do
			umount -l "$mnt" 2>/dev/null || msg "cannot unmount $mnt"
		done
}

# After a hard kill of our daemon its containers keep running under their
# "[lxc monitor] $LXD_DIR/containers NAME" processes. Those (and only those:
# the path is our private LXD_DIR) are found by pid, the container's init
# (the monitor's child) gets SIGKILL, which ends its whole pid namespace, and
# the monitor then exits by itself (SIGTERM if not).
kill_orphan_instances() {
	prefix="[lxc monitor] $LXD_DIR/containers "
	for dir in /proc/[0-9]*; do
		mon=${dir#/proc/}
		cmd=$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
		case "$cmd" in
		"$prefix"*) ;;
		*) continue ;;
		esac
		msg "killing orphaned instance: $cmd(pid $mon)"
		for child in $(ps -o pid= --ppid "$mon"); do
			kill -KILL "$child" 2>/dev/null || true
		done
		sleep 1
		kill -TERM "$mon" 2>/dev/null || true
	done
}

cmd_stop() {
	if [ -n "${LXCM_LXD_SOCKET:-}" ]; then
		msg "LXCM_LXD_SOCKET is set: that LXD was not started by us, not stopping it"
		return 0
	fi
	pid=$(cat "$PIDFILE" 2>/dev/null || true)
	if ! is_our_daemon "$pid"; then
		msg "no LXD started by this script is running"
		rm -f "$PIDFILE"
		kill_orphan_instances
		umount_leftovers
		return 0
	fi
	msg "stopping lxd pid $pid"
	if ! lxd shutdown --timeout 60 >/dev/null 2>&1; then
		msg "lxd shutdown failed; sending SIGTERM to $pid"
		kill -TERM "$pid" 2>/dev/null || true
	fi
	i=0
	while is_our_daemon "$pid" && [ $i -lt 30 ]; do
		sleep 1
		i=$((i + 1))
	done
	if is_our_daemon "$pid"; then
		msg "lxd pid $pid still alive; SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$PIDFILE"
	kill_orphan_instances
	umount_leftovers
}

cmd_status() {
	if answers "$SOCK"; then
		printf 'LXD_SOCKET=%s\n' "$SOCK"
	else
		msg "no LXD answers on $SOCK"
		exit 1
	fi
}

cmd_purge() {
	[ -z "${LXCM_LXD_SOCKET:-}" ] || die "purge is only for our own state directory"
	[ -d "$STATE" ] || return 0
	# Refuse to delete a directory this script did not create.
	[ -f "$MARKER" ] || die "$STATE has no $MARKER; not deleting it"
	cmd_stop
	if awk -v d="$STATE/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
		die "mounts remain under $STATE; not deleting it"
	fi
	rm -rf "$STATE"
	msg "removed $STATE"
}

main() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (lxd needs it)"
	for tool in lxd lxc curl jq flock setsid; do
		command -v "$tool" >/dev/null ||
			die "$tool is missing (scripts/install-deps.sh installs it)"
	done
	case "$STATE" in
	/*) ;;
	*) die "LXCM_LXD_DIR must be an absolute path" ;;
	esac
	[ "$STATE" != / ] || die "LXCM_LXD_DIR must not be /"
	mkdir -p "$STATE"
	setup_client_env

	# One start/stop at a time per state directory (parallel test runs).
	exec 9>"$LOCK"
	flock -w 180 9 || die "timed out waiting for $LOCK"

	case "${1:-}" in
	start) cmd_start ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	purge) cmd_purge ;;
	*) die "usage: $0 start|stop|status|purge" ;;
	esac
}

main "$@"
