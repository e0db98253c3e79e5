#!/bin/sh
# Runs the tests of the project.
#
# Usage: scripts/run-tests.sh [--asan ASAN_BUILD] [--fuzz FUZZ_BUILD SECONDS] [BUILD]
#
#   BUILD only (default "build"): every test in BUILD, unit (cmocka) and
#   integration (real binaries on loopback, real LXD started by
#   scripts/lxd-test-env.sh).
#
#   --asan ASAN_BUILD (what `make check` does): the unit tests in BUILD, then
#   every test, unit and integration, in ASAN_BUILD (configured with
#   LXCM_SANITIZE=ON) under AddressSanitizer, UndefinedBehaviorSanitizer and
#   LeakSanitizer. The integration tests spawn ASAN_BUILD's binaries; each
#   process writes any sanitizer report to ASAN_BUILD/sanitizer-logs/ (also
#   servers that exit on SIGTERM with a leak, whose stderr no test reads),
#   and any report there fails the run. CHECK_PLAIN_INTEGRATION=1 also runs
#   the integration tests against BUILD.
#
#   --fuzz FUZZ_BUILD SECONDS: then every libFuzzer target for SECONDS
#   (scripts/run-fuzz.sh); 0 skips them.
#
# The last line is "N passed, N failed" over everything that ran; the exit
# status is non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ASAN_BUILD=
FUZZ_BUILD=
FUZZ_SECONDS=0
while [ $# -gt 0 ]; do
	case $1 in
	--asan) ASAN_BUILD=$2; shift 2 ;;
	--fuzz) FUZZ_BUILD=$2; FUZZ_SECONDS=$3; shift 3 ;;
	-*) echo "run-tests: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
BUILD=${1:-build}

total_passed=0
total_failed=0
summary=""

# Adds a line to the summary and the counts to the totals.
record() { # what passed failed
	summary="$summary$(printf '%-58s %s passed, %s failed' "$1" "$2" "$3")
"
	total_passed=$((total_passed + $2))
	total_failed=$((total_failed + $3))
}

# Runs ctest in $1 with the extra arguments; records the counts as $2.
run_ctest() { # dir what ctest-args...
	dir=$1
	what=$2
	shift 2
	log=$(mktemp)
	(cd "$dir" && ctest --output-on-failure --timeout 900 "$@") 2>&1 | tee "$log"
	line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
	if [ -n "$line" ]; then
		failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
		all=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
		record "$what" $((all - failed)) "$failed"
	else
		echo "run-tests: ctest in $dir ran no tests or gave no summary" >&2
		record "$what" 0 1
	fi
	rm -f "$log"
}

if [ -z "$ASAN_BUILD" ]; then
	run_ctest "$BUILD" "tests in $BUILD"
else
	if [ "${CHECK_PLAIN_INTEGRATION:-0}" = 1 ]; then
		run_ctest "$BUILD" "tests in $BUILD"
	else
		run_ctest "$BUILD" "unit tests in $BUILD" -L unit
	fi

	logs=$ROOT/$ASAN_BUILD/sanitizer-logs
	rm -rf "$logs"
	mkdir -p "$logs"
	# LeakSanitizer runs at exit of every instrumented process; a report
	# makes the process fail (abort_on_error) and lands in $logs.
	# Suppressions are for third-party code only (scripts/lsan.supp).
	# A 16 MiB quarantine (not 256) so that freed memory is reused soon and
	# the integration tests that check a server's RSS after load (fault and
	# limit tests) measure lxcm, not ASan; use-after-free of recently freed
	# memory is still caught.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1
	ASAN_OPTIONS=$ASAN_OPTIONS:check_initialization_order=1:strict_init_order=1
	ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=16:thread_local_quarantine_size_kb=256
	ASAN_OPTIONS=$ASAN_OPTIONS:allocator_release_to_os_interval_ms=200
	export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$logs/asan"
	export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0"
	export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
	run_ctest "$ASAN_BUILD" "unit + integration tests under ASan/UBSan/LSan ($ASAN_BUILD)"
	unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

	reports=$(find "$logs" -type f 2>/dev/null | sort)
	if [ -n "$reports" ]; then
		for r in $reports; do
			echo "==== sanitizer report $r"
			cat "$r"
		done
		record "sanitizer reports of spawned processes" 0 "$(echo "$reports" | wc -l)"
	else
		record "sanitizer reports of spawned processes (none)" 1 0
	fi
fi

# Stop the LXD and PostgreSQL the integration tests started (only those).
if [ -x "$ROOT/scripts/lxd-test-env.sh" ]; then
	"$ROOT/scripts/lxd-test-env.sh" stop >/dev/null 2>&1 || true
fi
sh "$ROOT/scripts/pg-test-env.sh" stop >/dev/null 2>&1 || true

if [ -n "$FUZZ_BUILD" ] && [ "$FUZZ_SECONDS" != 0 ]; then
	log=$(mktemp)
	sh scripts/run-fuzz.sh "$FUZZ_SECONDS" "$FUZZ_BUILD" 2>&1 | tee "$log"
	line=$(grep -E '^run-fuzz: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	if [ -n "$line" ]; then
		record "fuzz targets, $FUZZ_SECONDS s each ($FUZZ_BUILD)" \
			"$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')" \
			"$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')"
	else
		record "fuzz targets (did not run: see above)" 0 1
	fi
	rm -f "$log"
fi

echo
echo "==== test summary"
printf '%s' "$summary"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
