#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# make test-docker, .ci/run: the tests through the harness's container
# backend (testcontainers-go, run by internal/pgcontainer) on a machine with
# no Docker engine and no registry, as root:
#
#   1. podman, runc and debootstrap from apt when missing;
#   2. a private Podman (scripts/podman/lib.sh: storage and configuration
#      under ~/.cache/synchro-podman, containers.conf with runc and cgroupfs)
#      and the image localhost/synchro-postgres:15, built when missing
#      (scripts/podman-image.sh), reused when present;
#   3. `podman system service` on a unix socket, in the background;
#   4. the tests of the library's module and of internal/sqlitecheck with
#      DOCKER_HOST at that socket, TESTCONTAINERS_RYUK_DISABLED=true,
#      SYNCHRO_TEST_BACKEND=docker and SYNCHRO_TEST_POSTGRES_IMAGE at the
#      image (without -race: make test runs them with it, on the local
#      binaries); then a check that no container is left;
#   5. the fallback: with the backend not forced and an image that does not
#      exist, internal/pgtest's tests must say why in one message and pass
#      on the local binaries;
#   6. the service and whatever it started are stopped, whatever happened.
#
# It prints the time of each step. Runs on one machine take turns (a lock
# in the Podman directory).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
# shellcheck source=podman/lib.sh
. scripts/podman/lib.sh

podman_need_root
podman_install
podman_configure

exec 9>"$podman_dir/lock"
if ! flock -n 9; then
	echo "test-docker: another run uses $podman_dir; waiting"
	flock -w 1800 9
fi

step() { echo "test-docker: $*"; }
t0=$SECONDS

# 2. The image.
start=$SECONDS
if pm image exists "$podman_image"; then
	step "image $podman_image present: reused"
else
	scripts/podman-image.sh
	step "image built in $((SECONDS - start))s"
fi

# 3. The service. Containers of an earlier run that died are removed first.
service_pid=""
stop_service() {
	local status=$?
	if [ -n "$service_pid" ]; then
		local left
		left=$(pm ps -aq | wc -l)
		if [ "$left" -gt 0 ]; then
			echo "test-docker: removing $left container(s) left behind" >&2
			pm rm -af >/dev/null 2>&1 || true
		fi
		kill "$service_pid" 2>/dev/null || true
		wait "$service_pid" 2>/dev/null || true
		rm -f "$podman_socket"
		# conmon processes of this Podman's storage that outlived their
		# containers (exec sessions do in Podman 4.3): ours, the lock says.
		local stray
		stray=$(ps -eo pid=,args= | awk -v dir="$podman_dir/" '$2 ~ /(^|\/)conmon$/ && index($0, dir) { print $1 }')
		if [ -n "$stray" ]; then
			echo "test-docker: stopping $(wc -w <<<"$stray") conmon process(es) left by Podman" >&2
			# shellcheck disable=SC2086 # a list of pids
			kill $stray 2>/dev/null || true
		fi
	fi
	exit "$status"
}
trap stop_service EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pm rm -af >/dev/null 2>&1 || true
rm -f "$podman_socket"
start=$SECONDS
# Not through pm: $! must be podman's own pid, and the service must not
# inherit the lock (fd 9), which it would hold after this script ended.
podman --root "$podman_dir/root" --runroot "$podman_dir/runroot" --tmpdir "$podman_dir/tmp" \
	system service --time=0 "unix://$podman_socket" >"$podman_dir/service.log" 2>&1 9>&- &
service_pid=$!
until podman --url "unix://$podman_socket" version >/dev/null 2>&1; do
	if ! kill -0 "$service_pid" 2>/dev/null; then
		cat "$podman_dir/service.log" >&2
		echo "test-docker: podman system service exited" >&2
		exit 1
	fi
	if [ $((SECONDS - start)) -ge 30 ]; then
		echo "test-docker: podman system service does not answer after 30s" >&2
		exit 1
	fi
	sleep 0.2
done
step "podman service on $podman_socket in $((SECONDS - start))s"

export DOCKER_HOST=unix://$podman_socket
export TESTCONTAINERS_RYUK_DISABLED=true
unset SYNCHRO_TEST_DATABASE_URL

# The program the harness runs with go run: compiled once here, so the
# test binaries do not all compile it at once.
start=$SECONDS
"$GO" -C internal/pgcontainer build -o /dev/null .
step "internal/pgcontainer compiled in $((SECONDS - start))s"

# One container by hand, timed: go run to the printed URL.
start_ns=$(date +%s%N)
coproc PGC { "$GO" -C internal/pgcontainer run . -image "$podman_image" 2>"$podman_dir/pgcontainer.log" 9>&-; }
url=""
read -r url <&"${PGC[0]}" || true
ready_ns=$(date +%s%N)
pgc_in=${PGC[1]}
exec {pgc_in}>&- # end of its standard input: it removes the container
wait "$PGC_PID" || { cat "$podman_dir/pgcontainer.log" >&2; exit 1; }
case $url in
postgres://*) ;;
*) cat "$podman_dir/pgcontainer.log" >&2; echo "test-docker: internal/pgcontainer printed no URL" >&2; exit 1 ;;
esac
step "a container: started and ready in $(((ready_ns - start_ns) / 1000000)) ms (go run internal/pgcontainer to its URL), removed in $((($(date +%s%N) - ready_ns) / 1000000)) ms"

# 4. The tests, forced onto the container backend.
since=$(date --iso-8601=seconds)
start=$SECONDS
log=$podman_dir/test.log
: >"$log"
status=0
for dir in . internal/sqlitecheck; do
	# -v for the harness's "pgtest: using ..." lines; the summary below.
	SYNCHRO_TEST_BACKEND=docker SYNCHRO_TEST_POSTGRES_IMAGE=$podman_image \
		"$GO" -C "$dir" test -count=1 -v ./... >>"$log" 2>&1 || { status=$?; break; }
done
grep -E '^(ok|FAIL|--- FAIL|panic:)' "$log" || true
if [ "$status" -ne 0 ]; then
	echo "test-docker: the tests failed on the container backend; the output of the failing tests:" >&2
	grep -E -B2 -A30 '^--- FAIL' "$log" | head -200 >&2 || tail -100 "$log" >&2
	exit "$status"
fi
containers=$(pm events --stream=false --since "$since" --filter event=start --format '{{.Image}}' | grep -cxF "$podman_image" || true)
used=$(grep -c '^pgtest: using PostgreSQL in container' "$log" || true)
left=$(pm ps -aq | wc -l)
step "tests passed on the container backend in $((SECONDS - start))s: $used test binaries used a container, $containers containers started, $left left"
if [ "$left" -ne 0 ]; then
	pm ps -a >&2
	echo "test-docker: containers left behind after the tests" >&2
	exit 1
fi

# 5. The fallback, with the engine up and an image it does not have.
start=$SECONDS
out=$(SYNCHRO_TEST_POSTGRES_IMAGE=localhost/synchro-missing:0 "$GO" test -count=1 -v -run '^TestDSNs$' ./internal/pgtest 2>&1) || {
	echo "$out" >&2
	echo "test-docker: the fallback to the local binaries failed" >&2
	exit 1
}
if ! grep -q '^pgtest: docker: .*synchro-missing.*; using the local PostgreSQL binaries$' <<<"$out" ||
	! grep -q '^pgtest: using local PostgreSQL' <<<"$out"; then
	echo "$out" >&2
	echo "test-docker: no fallback message, or no fallback" >&2
	exit 1
fi
step "fallback checked in $((SECONDS - start))s; the harness said:"
grep '^pgtest: docker: ' <<<"$out" | sed 's/^/    /'

step "done in $((SECONDS - t0))s"
