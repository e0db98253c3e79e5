#!/bin/sh
# Builds the libFuzzer targets (clang, -DLXCM_FUZZ=ON) and runs each one for
# SECONDS, FUZZ_JOBS at a time (default: the number of CPUs).
#
# Usage: scripts/run-fuzz.sh SECONDS [FUZZ_BUILD_DIR [TARGET...]]
#   TARGET is a name like http or fuzz_http; default: every fuzz/fuzz_*.c.
#
# Each target starts from its committed seeds (fuzz/corpus/NAME, never
# written to) plus what earlier runs found (fuzz/out/corpus/NAME), with
# fuzz/NAME.dict when there is one. A crash, leak, timeout or out-of-memory
# input is kept as fuzz/out/NAME/crash-* (or leak-*, timeout-*, oom-*), the
# log as fuzz/out/NAME.log; fuzz/out/ is not committed. The last line says
# "N passed, N failed"; the exit status is non-zero if any target failed.
#
# Reproduce a finding:  FUZZ_BUILD/fuzz/fuzz_NAME fuzz/out/NAME/crash-...
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SECONDS_EACH=${1:?usage: scripts/run-fuzz.sh SECONDS [FUZZ_BUILD_DIR [TARGET...]]}
BUILD=${2:-build-fuzz}
[ $# -ge 2 ] && shift 2 || shift $#
JOBS=${FUZZ_JOBS:-$(nproc)}
OUT=$ROOT/fuzz/out

if ! command -v clang >/dev/null 2>&1; then
	echo "run-fuzz: clang is needed (scripts/install-deps.sh installs it)" >&2
	exit 1
fi
if [ ! -f "$BUILD/CMakeCache.txt" ] || ! grep -q '^LXCM_FUZZ:BOOL=ON' "$BUILD/CMakeCache.txt"; then
	CC=clang cmake -S . -B "$BUILD" -DLXCM_FUZZ=ON >/dev/null || exit 1
fi
echo "run-fuzz: building the fuzz targets in $BUILD"
if ! cmake --build "$BUILD" --target fuzzers -j "$(nproc)" >"$BUILD/fuzz-build.log" 2>&1; then
	tail -40 "$BUILD/fuzz-build.log"
	echo "run-fuzz: the fuzz targets do not build (log: $BUILD/fuzz-build.log)" >&2
	exit 1
fi

if [ $# -gt 0 ]; then
	TARGETS=""
	for t in "$@"; do TARGETS="$TARGETS ${t#fuzz_}"; done
else
	TARGETS=$(for f in fuzz/fuzz_*.c; do n=${f#fuzz/fuzz_}; echo "${n%.c}"; done)
fi

# Runs one target; writes OUT/NAME.log and OUT/NAME.status (0 = passed).
run_one() {
	name=$1
	bin=$BUILD/fuzz/fuzz_$name
	log=$OUT/$name.log
	mkdir -p "$OUT/$name" "$OUT/corpus/$name"
	set -- -max_total_time="$SECONDS_EACH" -timeout=30 -rss_limit_mb=3072 \
		-print_final_stats=1 -artifact_prefix="$OUT/$name/"
	[ -f "fuzz/$name.dict" ] && set -- "$@" -dict="fuzz/$name.dict"
	set -- "$@" "$OUT/corpus/$name"
	[ -d "fuzz/corpus/$name" ] && set -- "$@" "fuzz/corpus/$name"
	# A hard stop well past max_total_time, in case an input wedges the process.
	ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1} \
		UBSAN_OPTIONS=${FUZZ_UBSAN_OPTIONS:-print_stacktrace=1} \
		timeout -k 10 $((SECONDS_EACH + 180)) "$bin" "$@" >"$log" 2>&1
	echo $? >"$OUT/$name.status"
}

mkdir -p "$OUT"
echo "run-fuzz: $(echo $TARGETS | wc -w) targets, $SECONDS_EACH s each, $JOBS at a time"
running=0
for name in $TARGETS; do
	if [ ! -x "$BUILD/fuzz/fuzz_$name" ]; then
		echo "run-fuzz: no target fuzz_$name" >&2
		echo 127 >"$OUT/$name.status"
		continue
	fi
	rm -f "$OUT/$name.status"
	run_one "$name" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then
		wait
		running=0
	fi
done
wait

# field VALUE of libFuzzer's final stats in a log
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }

passed=0
failed=0
for name in $TARGETS; do
	log=$OUT/$name.log
	rc=$(cat "$OUT/$name.status" 2>/dev/null || echo 127)
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		printf 'run-fuzz: PASS %-16s %9s runs %7s/s  %4s new  cov %s\n' "$name" \
			"$(stat number_of_executed_units "$log")" "$(stat average_exec_per_sec "$log")" \
			"$(stat new_units_added "$log")" \
			"$(sed -n 's/.*DONE *cov: \([0-9]*\).*/\1/p' "$log" | tail -1)"
	else
		failed=$((failed + 1))
		echo "run-fuzz: FAIL $name (exit $rc); end of $log:"
		grep -v '^INFO:\|^#[0-9]' "$log" 2>/dev/null | tail -60 | sed 's/^/    /'
		for a in "$OUT/$name"/crash-* "$OUT/$name"/leak-* "$OUT/$name"/timeout-* \
			"$OUT/$name"/oom-*; do
			[ -f "$a" ] && echo "    reproduce: $BUILD/fuzz/fuzz_$name $a"
		done
	fi
done
echo "run-fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
