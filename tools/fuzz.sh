#!/usr/bin/env bash
# tools/fuzz.sh - run every libFuzzer target in tests/fuzz/ over its corpus,
# merge what it found into a minimized corpus written back to
# tests/fuzz/corpus/NAME, and keep any crash as tests/fuzz/crash-NAME-*.
# Once the bug is fixed, move the crash to tests/fuzz/regress/NAME/: every
# run replays those first (a fixed bug stays fixed) and seeds with them, and
# the merge never drops them, as it would a seed that adds no coverage.
#
#   tools/fuzz.sh --minutes N        N minutes per target (default 1)
#   tools/fuzz.sh --seconds N        N seconds per target (CI: 15)
#   tools/fuzz.sh --runs N           N executions per target instead
#   tools/fuzz.sh --targets a,b      only these targets (default: every fuzz_*.c)
#   tools/fuzz.sh --build DIR        the fuzz build directory (default build-fuzz)
#   tools/fuzz.sh --no-merge         leave the corpus in the repo as it is
#
# One target at a time, one job, under nice -n 19: a long run shares the
# machine (so the per-input timeout is 30 s: a niced run on a loaded machine
# once stalled 6 s on an input that takes 10 ms).  Prints one line per target: executions, seconds, corpus before
# and after, crashes.  Exits 1 if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60 runs="" targets="" build=build-fuzz merge=1
while [ $# -gt 0 ]; do
	case $1 in
	--minutes) seconds=$(($2 * 60)); shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--targets) targets=${2//,/ }; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--no-merge) merge=0; shift ;;
	*) echo "usage: $0 [--minutes N | --seconds N | --runs N] [--targets a,b] [--build DIR] [--no-merge]" >&2
	   exit 2 ;;
	esac
done
[ -n "$targets" ] || targets=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
if [ ! -d "$build" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
nice -n 19 ninja -C "$build" >/dev/null
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
crashed=0
for t in $targets; do
	bin=$build/tests/fuzz/fuzz_$t corpus=tests/fuzz/corpus/$t
	[ -x "$bin" ] || { echo "fuzz_$t: not built (is it in tests/fuzz/meson.build?)" >&2; exit 1; }
	mkdir -p "$corpus"
	work=$(mktemp -d) log=$(mktemp)
	cp "$corpus"/* "$work"/ 2>/dev/null || true
	# regression inputs (fixed crashes) and crashes not yet fixed: replayed
	# first, then seeds
	regress=()
	for c in tests/fuzz/regress/"$t"/* tests/fuzz/crash-"$t"-*; do [ -e "$c" ] && regress+=("$c"); done
	if [ ${#regress[@]} -gt 0 ]; then
		if ! "$bin" -runs=0 "${regress[@]}" >/dev/null 2>&1; then
			echo "fuzz_$t: a regression input crashes again: ${regress[*]}" >&2
			crashed=$((crashed + 1))
		fi
		cp "${regress[@]}" "$work"/
	fi
	before=$(ls "$corpus" | wc -l)
	if [ -n "$runs" ]; then limit=(-runs="$runs"); else limit=(-max_total_time="$seconds"); fi
	start=$(date +%s) rc=0
	nice -n 19 "$bin" "${limit[@]}" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix=tests/fuzz/crash-"$t"- "$work" >"$log" 2>&1 || rc=$?
	secs=$(( $(date +%s) - start ))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	if [ "$rc" -ne 0 ]; then
		crashed=$((crashed + 1))
		grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5 >&2
	fi
	if [ "$merge" = 1 ]; then
		fresh=$(mktemp -d)
		nice -n 19 "$bin" -merge=1 -timeout=30 -rss_limit_mb=2048 "$fresh" "$corpus" "$work" \
			>/dev/null 2>&1 || true
		if [ -n "$(ls "$fresh")" ]; then
			rm -f "$corpus"/*
			cp "$fresh"/* "$corpus"/
		fi
		rm -rf "$fresh"
	fi
	after=$(ls "$corpus" | wc -l)
	printf 'fuzz_%-9s %12s executions %6s s  corpus %4s -> %4s  %s\n' "$t" "${execs:-?}" \
		"$secs" "$before" "$after" "$([ "$rc" = 0 ] && echo '0 crashes' || echo "CRASH (rc $rc)")"
	rm -rf "$work" "$log"
done
exit $((crashed > 0))
