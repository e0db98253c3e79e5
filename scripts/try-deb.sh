#!/bin/sh
# Installs a built lxcm .deb with `dpkg -i` in a throwaway copy of this
# machine, runs the installed binaries, then removes and purges it: the
# machine itself is left unchanged.
#
# Usage (as root): scripts/try-deb.sh build/deb/lxcm_VERSION_ARCH.deb
#
# How: a private mount namespace (unshare -m) in which an overlay file
# system puts a tmpfs over / ; dpkg runs chrooted into the overlay, so every
# write (dpkg's database, /etc/lxcm, the units, deb-systemd-helper's state)
# lands in the tmpfs and disappears with the namespace. The machine must
# already have the package's dependencies (on a clean Debian 12:
# `apt install ./lxcm_VERSION_ARCH.deb` instead of `dpkg -i`). No systemd
# runs, so the units are installed but nothing is started.
set -eu
DEB=$(readlink -f "${1:?usage: scripts/try-deb.sh PACKAGE.deb}")
[ "$(id -u)" -eq 0 ] || { echo "try-deb: run as root" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lxcm-try-deb.XXXXXX")
trap 'rmdir "$WORK" 2>/dev/null || true' EXIT
cat >"$WORK.inside" <<'EOS'
set -eu
deb=/tmp/try.deb
dpkg -i "$deb"
test "$(dpkg-query -W -f '${Status}' lxcm)" = "install ok installed"
lxcm-server --version
lxcm-agent --version
lxcm --version
man -w lxcm-server lxcm-agent lxcm >/dev/null
lxcm-server --config /etc/lxcm/lxcm-server.conf --version
test "$(systemctl is-enabled lxcm-server.service 2>/dev/null || true)" = disabled
dpkg -r lxcm
test -f /etc/lxcm/lxcm-server.conf   # conffiles stay until purge
dpkg --purge lxcm
test ! -e /etc/lxcm
echo "try-deb: installed, ran, removed and purged"
EOS
unshare -m --propagation private sh -eu -c '
	W=$1; DEB=$2
	mount -t tmpfs tmpfs "$W"
	mkdir "$W/upper" "$W/work" "$W/root"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$W/upper,workdir=$W/work" "$W/root"
	mount --bind /proc "$W/root/proc"
	mount --bind /dev "$W/root/dev"
	mount -t tmpfs tmpfs "$W/root/run"
	mount -t tmpfs tmpfs "$W/root/tmp"
	cp "$DEB" "$W/root/tmp/try.deb"
	chroot "$W/root" sh -eu <"$W.inside"
' sh "$WORK" "$DEB"
rm -f "$WORK.inside"
