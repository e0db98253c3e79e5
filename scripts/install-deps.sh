#!/bin/sh
# Installs everything lxcm needs to build, run and test, from Debian's packages.
# Idempotent: packages already present are not fetched again.
# systemd (for systemd-analyze: the units are verified offline, no running
# systemd needed), dpkg-dev, debhelper and lintian (`make deb`) and man-db
# (the man page checks) serve `make install`'s tests and the package.
# protobuf-c and snappy build Prometheus remote write; prometheus (with
# promtool) is the real Prometheus the metrics tests scrape and write to.
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
libuv1-dev libssl-dev node-llhttp libnghttp2-dev libjansson-dev
libsqlite3-dev libcmocka-dev libcurl4-openssl-dev libpq-dev
lxd lxd-client curl jq python3 procps iproute2 openssl
nginx openssh-server openssh-client wrk haproxy
systemd dpkg-dev debhelper lintian man-db
protobuf-c-compiler libprotobuf-c-dev libsnappy-dev prometheus"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing"
	if [ "$(id -u)" -ne 0 ]; then
		SUDO=sudo
	else
		SUDO=
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "install-deps: all dependencies present"
