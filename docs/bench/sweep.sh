#!/usr/bin/env bash
# Runs the load runs of docs/benchmarks.md and draws its plot:
#   - the default run (50 devices, 30 s, raw reference), in-process and over HTTP;
#   - the commit-to-pull run (50 devices that only pull, every 50 ms ±50%,
#     while the SQL writer changes 1000 rows a second; 30 s);
#   - devices: 1, 10, 50, 200 (20 s each, with the raw PostgreSQL reference);
#   - changelog size: 10k, 100k, 1M, 10M rows before the run (50 devices, 20 s).
# Each run is cmd/synchro-load on its own throwaway PostgreSQL; the JSON
# reports go to docs/bench/data, the plot to docs/bench/load.png (gnuplot,
# apt-get install gnuplot-nox), the tables to standard output.
#
#   docs/bench/sweep.sh              # all (about 10 minutes on 2 cores)
#   SIZES="10000 100000" docs/bench/sweep.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
CLIENTS=${CLIENTS:-"1 10 50 200"}
SIZES=${SIZES:-"10000 100000 1000000 10000000"}
DURATION=${DURATION:-20s}
data=docs/bench/data
mkdir -p "$data"

bin=$(mktemp -d "${TMPDIR:-/tmp}/synchro-sweep.XXXXXX")
trap 'rm -rf "$bin"' EXIT
"$GO" -C cmd/synchro-load build -o "$bin/synchro-load" . # a module of its own

if [ -z "${SKIP_RUNS:-}" ]; then
	echo "sweep: default run" >&2
	"$bin/synchro-load" -json -duration 30s >"$data/default.json" 2>"$data/default.log"
	echo "sweep: default run over HTTP" >&2
	"$bin/synchro-load" -json -duration 30s -transport http >"$data/default-http.json" 2>"$data/default-http.log"
	echo "sweep: commit-to-pull run" >&2
	"$bin/synchro-load" -json -duration 30s -push-ratio 0 -think 50ms -write-rate 1000 >"$data/commit-to-pull.json" 2>"$data/commit-to-pull.log"
fi
for n in $CLIENTS; do
	echo "sweep: $n devices" >&2
	"$bin/synchro-load" -json -clients "$n" -duration "$DURATION" >"$data/clients-$n.json" 2>"$data/clients-$n.log"
done
for size in $SIZES; do
	echo "sweep: changelog of $size rows" >&2
	# The seed and the bootstrap add about 10k rows of their own (50
	# devices of 200 items): the prefill makes up the rest.
	prefill=$((size > 10200 ? size - 10200 : 0))
	"$bin/synchro-load" -json -clients 50 -duration "$DURATION" -reference=false -changelog-rows "$prefill" \
		>"$data/changelog-$size.json" 2>"$data/changelog-$size.log"
done

args=()
for f in "$data"/clients-*.json; do args+=("clients=$f"); done
for f in "$data"/changelog-*.json; do args+=("changelog=$f"); done
"$GO" run ./internal/benchreport -out "$data" "${args[@]}"
gnuplot docs/bench/load.gnuplot
echo "sweep: wrote docs/bench/load.png" >&2
