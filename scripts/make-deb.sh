#!/bin/sh
# Builds the Debian package of this tree with debhelper: `make deb`.
#
# Usage: scripts/make-deb.sh [OUT_DIR]     (default build/deb)
#
# The tree (git's files, with uncommitted changes; everything but build
# directories outside git) is copied to OUT_DIR/lxcm-VERSION/, with
# packaging/debian/ as its debian/ and a changelog entry for the version in
# src/common/version.h. dpkg-buildpackage then builds the binary package
# (unsigned; the unit tests run unless DEB_BUILD_OPTIONS has nocheck), and
# lintian checks it when installed: errors fail, warnings are printed. The
# .deb is OUT_DIR/lxcm_VERSION_ARCH.deb.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-build/deb}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for tool in dpkg-buildpackage dh; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "make-deb: $tool is missing (scripts/install-deps.sh installs dpkg-dev and debhelper)" >&2
		exit 1
	fi
done
VERSION=$(sed -n 's/^#define LXCM_VERSION "\(.*\)"$/\1/p' src/common/version.h)
[ -n "$VERSION" ] || { echo "make-deb: no LXCM_VERSION in src/common/version.h" >&2; exit 1; }
SRC=$OUT/lxcm-$VERSION
rm -rf "$SRC"
mkdir -p "$SRC"

# The sources, without build trees, fuzz output or other helpers' litter.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# (Files deleted but not yet committed are left out.)
	git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		tar --null -T - -cf - | tar -xf - -C "$SRC"
else
	tar --exclude='./build*' --exclude='./fuzz/out' --exclude='./data' -cf - . | tar -xf - -C "$SRC"
fi
rm -rf "$SRC/debian"
cp -a packaging/debian "$SRC/debian"

# The changelog entry, dated by the last commit (reproducible builds).
DATE=$(git log -1 --format=%cD 2>/dev/null || date -R)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cat >"$SRC/debian/changelog" <<EOC
lxcm ($VERSION) unstable; urgency=medium

  * Built from the lxcm tree at $COMMIT.

 -- lxcm developers <lxcm-devel@lists.example.org>  $DATE
EOC

echo "make-deb: building lxcm $VERSION in $SRC"
(cd "$SRC" && dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1 || {
	tail -40 "$OUT/build.log"
	echo "make-deb: dpkg-buildpackage failed (log: $OUT/build.log)" >&2
	exit 1
}
DEB=$(ls "$OUT"/lxcm_"$VERSION"_*.deb)
echo "make-deb: $DEB"

if command -v lintian >/dev/null 2>&1; then
	# Tags of level error fail (exit status 1 then); the rest are printed.
	lintian --fail-on error --info "$DEB" | tee "$OUT/lintian.log" || {
		echo "make-deb: lintian found errors (log: $OUT/lintian.log)" >&2
		exit 1
	}
	echo "make-deb: lintian: $(grep -c '^E:' "$OUT/lintian.log" || true) errors," \
		"$(grep -c '^W:' "$OUT/lintian.log" || true) warnings"
else
	echo "make-deb: lintian is not installed; not checked" >&2
fi
