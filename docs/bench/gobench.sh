#!/usr/bin/env bash
# Runs the go test benchmarks of docs/benchmarks.md at their full sizes,
# one after the other (each alone on the machine), and writes their output to
# docs/bench/data/gobench.txt. About 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
out=docs/bench/data/gobench.txt
mkdir -p "$(dirname "$out")"
: >"$out"
run() {
	echo "gobench: go test -run '^\$' $*" | tee -a "$out" >&2
	"$GO" test -run '^$' "$@" 2>/dev/null | grep -E '^(Benchmark|ok|FAIL|---)' | tee -a "$out"
}
run -bench 'BenchmarkPush$' -benchtime 200x .
run -bench 'CaptureThroughput' -benchtime 1x ./wal/
run -bench 'CaptureLatency' -benchtime 1x ./wal/
run -bench 'PullThroughput' -benchtime 3x .
run -bench 'PullBuckets' -benchtime 1x .
run -bench 'EmptyPull' -benchtime 300x .
run -bench 'BenchmarkSnapshot$' -benchtime 2x .
[ -n "${SKIP_COMPACTION:-}" ] || run -bench 'BenchmarkCompaction' -benchtime 1x .
