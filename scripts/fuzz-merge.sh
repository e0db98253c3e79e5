#!/bin/sh
# Grows the committed seed corpora from what `make fuzz` runs found, and
# minimizes them: for each target, libFuzzer's -merge=1 picks the smallest
# set of inputs (from the committed seeds and fuzz/out/corpus/NAME) that
# covers everything they cover. Seeds with a name of their own (written by
# hand, or a regression input such as issue17-*) are always kept as they
# are; the merged inputs, named by their SHA-1 as libFuzzer names them,
# replace the earlier merged ones. So the short runs of `make check` start
# from the coverage of the long ones.
#
# Usage: scripts/fuzz-merge.sh [FUZZ_BUILD_DIR [TARGET...]]
#   Default: build-fuzz and every target with a fuzz/out/corpus/NAME.
# Prints one line per target: seeds before and after, coverage after.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build-fuzz}
[ $# -ge 1 ] && shift
if [ $# -gt 0 ]; then
	TARGETS=$(for t in "$@"; do echo "${t#fuzz_}"; done)
else
	TARGETS=$(for d in fuzz/out/corpus/*/; do [ -d "$d" ] && basename "$d"; done)
fi
for name in $TARGETS; do
	bin=$BUILD/fuzz/fuzz_$name
	if [ ! -x "$bin" ]; then
		echo "fuzz-merge: no $bin" >&2
		exit 1
	fi
	new=$(mktemp -d)
	before=$(find "fuzz/corpus/$name" -type f 2>/dev/null | wc -l)
	set -- "fuzz/corpus/$name"
	[ -d "fuzz/out/corpus/$name" ] && set -- "$@" "fuzz/out/corpus/$name"
	log=fuzz/out/$name.merge.log
	mkdir -p fuzz/out
	if ! ASAN_OPTIONS=detect_leaks=1 "$bin" -merge=1 -timeout=30 -rss_limit_mb=3072 \
		"$new" "$@" >"$log" 2>&1; then
		echo "fuzz-merge: $name: merge failed (log: $log)" >&2
		rm -rf "$new"
		exit 1
	fi
	# Hand-named seeds stay; libFuzzer's copies of them are dropped.
	for f in "fuzz/corpus/$name"/*; do
		[ -f "$f" ] || continue
		base=$(basename "$f")
		if echo "$base" | grep -Eq '^[0-9a-f]{40}$'; then
			rm -f "$f"
		else
			rm -f "$new/$(sha1sum <"$f" | cut -c1-40)"
		fi
	done
	cp "$new"/* "fuzz/corpus/$name"/ 2>/dev/null || true
	rm -rf "$new"
	after=$(find "fuzz/corpus/$name" -type f | wc -l)
	cov=$(sed -n 's/.*MERGE-OUTER: .* \([0-9]*\) new coverage edges.*/\1/p' "$log" | tail -1)
	printf 'fuzz-merge: %-16s %5s seeds -> %5s  (%s)\n' "$name" "$before" "$after" \
		"$(grep -m1 'MERGE-OUTER: [0-9]* new files' "$log" || echo "$cov")"
done
