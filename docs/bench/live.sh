#!/usr/bin/env bash
# Live sync against polling (issue 18): cmd/synchro-load with devices that
# only pull, once polling every 50 ms (±50%) and once long-polling
# (-wait 20s), for each number of devices, while the SQL writer changes
# 1000 rows a second (busy) and while nothing changes (idle). Each run is
# on its own throwaway PostgreSQL, over HTTP. The JSON reports go to
# docs/bench/data/live-*.json, the table to docs/bench/data/live.tsv, the
# plot to docs/bench/live.png (gnuplot, apt-get install gnuplot-nox).
#
#   docs/bench/live.sh                       # about 8 minutes on 2 cores
#   CLIENTS="50 200" docs/bench/live.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
CLIENTS=${CLIENTS:-"10 50 200 1000"}
DURATION=${DURATION:-20s}
data=docs/bench/data
mkdir -p "$data"

bin=$(mktemp -d "${TMPDIR:-/tmp}/synchro-live.XXXXXX")
trap 'rm -rf "$bin"' EXIT
(cd cmd/synchro-load && "$GO" build -o "$bin/synchro-load" .)

common=(-json -transport http -push-ratio 0 -items 20 -reference=false -duration "$DURATION")
if [ -z "${SKIP_RUNS:-}" ]; then
	for n in $CLIENTS; do
		for mode in poll live; do
			if [ "$mode" = live ]; then how=(-wait 20s); else how=(-think 50ms); fi
			for load in busy idle; do
				if [ "$load" = busy ]; then rate=1000; else rate=0; fi
				echo "live: $n devices, $mode, $load" >&2
				"$bin/synchro-load" "${common[@]}" -clients "$n" "${how[@]}" -write-rate "$rate" \
					>"$data/live-$mode-$load-$n.json" 2>"$data/live-$mode-$load-$n.log"
			done
		done
	done
fi

python3 - "$data" $CLIENTS >"$data/live.tsv" <<'PY'
import json, sys
data, clients = sys.argv[1], sys.argv[2:]
print("# devices\tpoll_c2p_p50_ms\tpoll_c2p_p99_ms\tlive_c2p_p50_ms\tlive_c2p_p99_ms\t"
      "poll_busy_xact_per_s\tlive_busy_xact_per_s\tpoll_idle_xact_per_s\tlive_idle_xact_per_s\t"
      "poll_idle_pulls_per_s\tlive_idle_pulls_per_s")
def load(mode, kind, n):
    with open(f"{data}/live-{mode}-{kind}-{n}.json") as f:
        return json.load(f)
def pulls(r):
    k = r["sync"]["kinds"].get("pull", {})
    return k.get("ops", 0) / r["sync"]["seconds"]
for n in clients:
    pb, lb, pi, li = load("poll", "busy", n), load("live", "busy", n), load("poll", "idle", n), load("live", "idle", n)
    c = lambda r, q: r["sync"]["commit_to_pull"][q]
    row = [n, c(pb, "p50_ms"), c(pb, "p99_ms"), c(lb, "p50_ms"), c(lb, "p99_ms"),
           pb["database_xact_per_sec"], lb["database_xact_per_sec"], pi["database_xact_per_sec"], li["database_xact_per_sec"],
           pulls(pi), pulls(li)]
    print("\t".join(str(v) if isinstance(v, str) else f"{v:.1f}" for v in row))
PY
cat "$data/live.tsv"
gnuplot docs/bench/live.gnuplot
echo "live: wrote docs/bench/live.png" >&2
