#!/usr/bin/env bash
# make modgraph, .ci/run: how many modules an application sees in `go list -m
# all` when it imports synchro, wal, synchrohttp and migrations (the issue 17
# figure). It builds a throwaway module in a temporary directory (a replace
# directive to this repository), counts, and fails above the target.
#
# The target is 25 modules, but the library's own direct dependencies
# (pgx, pglogrepl, semver, the OpenTelemetry metric API) already bring more:
# the script also counts a throwaway module importing just the third-party
# packages synchro imports, at the versions of synchro's go.mod (the floor),
# and each of those modules alone. It fails when the figure is above both
# the target and the floor plus one (synchro itself): anything synchro's
# go.mod adds beyond what its imports need fails it.
#
#   scripts/modgraph.sh        # prints the figures; MODGRAPH_LIMIT=N changes the target
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
GO=${GO:-go}
limit=${MODGRAPH_LIMIT:-25}
export GOWORK=off GOFLAGS=${GOFLAGS:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/synchro-modgraph.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
goversion=$(awk '$1 == "go" { print $2; exit }' "$root/go.mod")

# count DIR: the lines of `go list -m all` (the module itself included, as
# the issue counts) after go mod tidy.
count() {
	if ! (cd "$1" && "$GO" mod tidy) >"$tmp/tidy.log" 2>&1; then
		cat "$tmp/tidy.log" >&2
		exit 1
	fi
	(cd "$1" && "$GO" list -m all) | wc -l | tr -d ' '
}

# module DIR NAME REQUIRES PACKAGES...: a main package importing PACKAGES.
module() {
	local dir=$1 name=$2 requires=$3
	shift 3
	mkdir -p "$dir"
	{
		printf 'module %s\n\ngo %s\n\n%s\n' "$name" "$goversion" "$requires"
	} >"$dir/go.mod"
	{
		echo "package main"
		echo
		echo "import ("
		for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
		echo ")"
		echo
		echo "func main() {}"
	} >"$dir/main.go"
}

# The importer.
module "$tmp/importer" example.com/importer "replace github.com/synchrosync/synchro => $root" \
	github.com/synchrosync/synchro \
	github.com/synchrosync/synchro/wal \
	github.com/synchrosync/synchro/synchrohttp \
	github.com/synchrosync/synchro/migrations
figure=$(count "$tmp/importer")

# The floor: the third-party packages synchro's packages import, at the
# versions synchro requires.
mapfile -t imports < <(cd "$tmp/importer" && "$GO" list -deps \
	-f '{{if .Module}}{{if eq .Module.Path "github.com/synchrosync/synchro"}}{{join .Imports "\n"}}{{end}}{{end}}' . |
	grep -v '^github.com/synchrosync/synchro' | grep '^[^/]*\.' | sort -u)
requires=$(awk '/^require[ (]/,/^\)/' "$root/go.mod")
module "$tmp/floor" example.com/floor "$requires" "${imports[@]}"
floor=$(count "$tmp/floor")

# Each direct requirement of synchro alone, for the record.
mapfile -t direct < <(cd "$root" && "$GO" list -m -f '{{if not .Indirect}}{{if not .Main}}{{.Path}}{{end}}{{end}}' all)
alone=()
for m in "${direct[@]}"; do
	pkgs=()
	for p in "${imports[@]}"; do
		case $p in "$m" | "$m"/*) pkgs+=("$p") ;; esac
	done
	# A module none of whose packages synchro imports directly (otel, for
	# otel/metric's attribute) is counted with what imports it.
	[ ${#pkgs[@]} -gt 0 ] || continue
	module "$tmp/alone-${#alone[@]}" example.com/alone "$requires" "${pkgs[@]}"
	alone+=("${m#github.com/} $(count "$tmp/alone-${#alone[@]}")")
done

echo "modgraph: an importer of synchro, wal, synchrohttp and migrations sees $figure modules (go list -m all, its own line included; target $limit)"
each=$(IFS=,; echo "${alone[*]}")
echo "modgraph: floor, the third-party packages synchro imports without synchro: $floor; each alone: ${each//,/, }"
bound=$limit
if [ $((floor + 1)) -gt "$bound" ]; then
	bound=$((floor + 1))
	echo "modgraph: the target $limit is below the floor plus synchro itself ($bound): checking against $bound"
fi
if [ "$figure" -gt "$bound" ]; then
	echo "modgraph: FAIL: $figure > $bound; the importer's modules:" >&2
	(cd "$tmp/importer" && "$GO" list -m all | sed 's/^/    /') >&2
	exit 1
fi
