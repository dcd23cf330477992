#!/usr/bin/env bash
# What row images in the changelog would give a pull and cost capture
# (issue 14, item 4; docs/benchmarks.md, "Eighth round"): creates the
# fixture of rowimages/setup.sql in the schema ri of the scratch database
# DATABASE_URL (dropping what it held there), then runs the engine's page
# statement with rows and the same page read from a changelog with row
# images under pgbench (prepared, the pull's planner settings), and times
# writing 20,000 changelog entries into both changelogs.
#
#   docs/bench/rowimages.sh postgres://postgres@127.0.0.1:5432/scratch
#
# pgbench and psql come from PATH, else from /usr/lib/postgresql/15/bin.
set -euo pipefail
cd "$(dirname "$0")/rowimages"
url=${1:?usage: rowimages.sh DATABASE_URL}
SECONDS_EACH=${SECONDS_EACH:-20}
ROUNDS=${ROUNDS:-5}
PATH=$PATH:/usr/lib/postgresql/15/bin

psql -X -q -v ON_ERROR_STOP=1 "$url" -f setup.sql
psql -X -q -v ON_ERROR_STOP=1 "$url" -c 'VACUUM ANALYZE ri.items, ri.changelog, ri.changelog_img'
psql -X -At "$url" -c "SELECT 'heap of the changelog: ' || pg_size_pretty(pg_relation_size('ri.changelog')) ||
       ', with images: ' || pg_size_pretty(pg_relation_size('ri.changelog_img')) ||
       '; with indexes: ' || pg_size_pretty(pg_total_relation_size('ri.changelog')) ||
       ', ' || pg_size_pretty(pg_total_relation_size('ri.changelog_img'))"

# The pull's settings (pullPageSettingsSQL).
export PGOPTIONS='-c enable_hashjoin=off -c enable_mergejoin=off -c enable_seqscan=off -c enable_bitmapscan=off -c jit=off -c DateStyle=ISO'
for r in $(seq 1 "$ROUNDS"); do
	for f in page_rows page_images; do
		lat=$(pgbench -n -M prepared -T "$SECONDS_EACH" -f "$f.sql" \
			-D buckets='{team:0,client:00000000-0000-0000-0000-000000000000}' -D subs='{team:0}' "$url" |
			sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p')
		echo "round $r $f: $lat ms a page of 1000"
	done
done
unset PGOPTIONS

# 20,000 entries written by INSERT ... SELECT, each time in a transaction
# rolled back. The consumer writes by COPY, which writes less WAL for the
# heap; what counts here is the difference between the two changelogs.
for r in $(seq 1 "$ROUNDS"); do
	for t in plain img; do
		cols='bucket_id, table_name, record_id, operation'; into=ri.changelog
		if [ $t = img ]; then
			cols="$cols, image"; into=ri.changelog_img
		fi
		ms=$(psql -X -q -v ON_ERROR_STOP=1 "$url" -c '\timing on' -c 'BEGIN' \
			-c "INSERT INTO $into ($cols) SELECT $cols FROM ri.copy_$t" -c 'ROLLBACK' |
			sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sed -n 2p)
		echo "round $r write 20,000 entries ($t): $ms ms"
	done
done
