#!/bin/sh
# Runs the libFuzzer targets built by the `fuzz` preset, one after the other, each for SECONDS (default 60).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     TARGET without the fuzz_ prefix; default: every target
#
# Seeds come from fuzz/corpus/<target>/ (read only); what the fuzzer finds goes to build/fuzz/corpus/<target>/,
# crash inputs to build/fuzz/artifacts/<target>/. Exits non-zero as soon as a target crashes (or a FUZZ_CHECK
# fails), after the target's own report. fuzz/README.md says how to merge new inputs back into fuzz/corpus/.
set -eu

seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-$(ls fuzz/corpus)}
bin=build/fuzz/fuzz

for t in $targets; do
	if [ ! -x "$bin/fuzz_$t" ]; then
		echo "fuzz.sh: $bin/fuzz_$t is not built (cmake --preset fuzz && cmake --build --preset fuzz)" >&2
		exit 2
	fi
	mkdir -p "build/fuzz/corpus/$t" "build/fuzz/artifacts/$t"
	echo "fuzz.sh: fuzz_$t for $seconds s"
	# -timeout: one input taking over 10 s is a hang, reported as a crash. The work corpus comes first: libFuzzer
	# writes new inputs into the first directory only.
	"$bin/fuzz_$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="build/fuzz/artifacts/$t/" "build/fuzz/corpus/$t" "fuzz/corpus/$t" \
		2>"build/fuzz/artifacts/$t/log" || {
		tail -n 60 "build/fuzz/artifacts/$t/log" >&2
		echo "fuzz.sh: fuzz_$t FAILED; crash input in build/fuzz/artifacts/$t/ (full log: build/fuzz/artifacts/$t/log)" >&2
		exit 1
	}
	# The summary: executions, coverage and corpus size.
	grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "build/fuzz/artifacts/$t/log" || true
done
