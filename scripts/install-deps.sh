#!/bin/sh
# Installs everything lxcm needs to build, run and test, from Debian's packages.
# Idempotent: packages already present are not fetched again.
# systemd (for systemd-analyze: the units are verified offline, no running
# systemd needed), dpkg-dev, debhelper and lintian (`make deb`) and man-db
# (the man page checks) serve `make install`'s tests and the package.
# nodejs runs the test OpenID provider (npm oidc-provider) and the dashboard
# build; prometheus (promtool and the server) checks and scrapes the metrics
# and receives remote writes (protobuf-c and snappy encode them);
# busybox-static makes the test container image for `lxc` through the
# manager; postgresql-15 serves the replica tests; chromium the dashboard's.
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
libuv1-dev libssl-dev node-llhttp libnghttp2-dev libjansson-dev
libsqlite3-dev libcmocka-dev libcurl4-openssl-dev libpq-dev
lxd lxd-client curl jq python3 procps iproute2 openssl
nginx openssh-server openssh-client wrk haproxy
systemd dpkg-dev debhelper lintian man-db
nodejs prometheus protobuf-c-compiler libprotobuf-c-dev libsnappy-dev
busybox-static postgresql-15 chromium python3-cryptography"

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
# The real OpenID provider of the OIDC tests (tests/oidc, npm's
# oidc-provider, pinned by its committed package-lock.json). The nodejs
# package (Debian's, or NodeSource's, which bundles npm) must give node >= 18.
# Debian's nodejs comes without npm (its own package): add it when missing.
if ! command -v npm >/dev/null 2>&1; then
	echo "install-deps: installing: npm"
	export DEBIAN_FRONTEND=noninteractive
	${SUDO-} apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
# npm ci again only when the lock file changed since the last install.
OIDC_DIR="$(dirname "$0")/../tests/oidc"
if [ ! -f "$OIDC_DIR/node_modules/.package-lock.json" ] ||
	[ "$OIDC_DIR/package-lock.json" -nt "$OIDC_DIR/node_modules/.package-lock.json" ]; then
	(cd "$OIDC_DIR" && npm ci --no-audit --no-fund --silent)
fi
echo "install-deps: all dependencies present"
