#!/bin/sh
# Checks the systemd units of a DESTDIR install with systemd's own verifier,
# offline (no running systemd needed).
#
# Usage: scripts/verify-units.sh DESTDIR [MAX_EXPOSURE]
#
# `systemd-analyze verify` checks that ExecStart's binary exists and that
# the man pages of Documentation= exist, so it runs with --root on a copy of
# DESTDIR (binaries at the paths the units name) to which the host's own
# units are added (sysinit.target and the rest that every service pulls
# in), and with MANPATH set to DESTDIR's man pages. Then
# `systemd-analyze security --offline` must rate each unit's exposure at
# most MAX_EXPOSURE tenths (default 20, i.e. 2.0 of 10: "OK").
set -eu
DEST=${1:?usage: scripts/verify-units.sh DESTDIR [MAX_EXPOSURE]}
MAX=${2:-20}
HOST_UNITS=/usr/lib/systemd/system
[ -d "$HOST_UNITS" ] || HOST_UNITS=/lib/systemd/system

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "verify-units: systemd-analyze is missing (scripts/install-deps.sh installs systemd)" >&2
	exit 1
fi
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/lxcm-verify-units.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
cp -a "$DEST/." "$ROOT/"
mkdir -p "$ROOT/usr/lib/systemd/system"
cp -an "$HOST_UNITS/." "$ROOT/usr/lib/systemd/system/"
MANPATH=$(find "$ROOT" -type d -name man -path '*/share/man' | tr '\n' ':')
export MANPATH
units=$(cd "$ROOT" && find . -name 'lxcm-*.service' -path '*/systemd/system/*' | sed 's|^\.||' | sort)
if [ -z "$units" ]; then
	echo "verify-units: no lxcm-*.service under $DEST" >&2
	exit 1
fi
rc=0
for u in $units; do
	# The verifier's warnings go to stderr with exit status 0: any output fails too.
	out=$(systemd-analyze verify --root="$ROOT" "$u" 2>&1) || rc=1
	if [ -n "$out" ]; then
		printf '%s\n' "$out" >&2
		rc=1
	fi
	sec=0
	report=$(systemd-analyze security --offline=yes --root="$ROOT" --threshold="$MAX" "$u" 2>&1) ||
		sec=$?
	level=$(printf '%s\n' "$report" |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [ "$sec" -ne 0 ] || [ -z "$level" ]; then
		printf '%s\n' "$report" | grep -v '^✓' >&2
		echo "verify-units: $u: exposure ${level:-?} is over $MAX tenths" >&2
		rc=1
	fi
	echo "verify-units: $u: verify ${out:+NOT }clean, exposure $level"
done
exit $rc
