#!/bin/sh
# Runs every test of the project: unit tests (cmocka) and integration tests
# (real binaries on loopback, real LXD started by scripts/lxd-test-env.sh).
# Usage: scripts/run-tests.sh [BUILD_DIR]
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$(pwd)

status=0
(cd "$BUILD" && ctest --output-on-failure --timeout 900) || status=$?

# Stop the LXD the integration tests started (only the one they started).
if [ -x "$ROOT/scripts/lxd-test-env.sh" ]; then
	"$ROOT/scripts/lxd-test-env.sh" stop >/dev/null 2>&1 || true
fi
exit $status
