#!/usr/bin/env bash
# make demo: builds the example server (examples/todo) and the demo client
# (examples/todo/client), starts the server on a free port of 127.0.0.1 (with
# SYNCHRO_DATABASE_URL when set, else a throwaway local PostgreSQL), waits
# until it serves, runs the client against it and stops the server. Exits
# with the client's status, or 1 when the server failed; the server's log is
# printed when anything failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
readonly ready_timeout=60 # seconds

tmp=$(mktemp -d "${TMPDIR:-/tmp}/synchro-demo.XXXXXX")
tmp=$(cd "$tmp" && pwd -P) # absolute: the build runs in examples/todo
server_pid=""
interrupted=""
cleanup() {
	if [ -n "$server_pid" ]; then
		if [ -n "$interrupted" ]; then
			# A terminal's ^C reached the server too, and a second signal
			# would kill it at once: give it 2s to shut down in order.
			for _ in $(seq 20); do
				kill -0 "$server_pid" 2>/dev/null || break
				sleep 0.1
			done
		fi
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'interrupted=1; exit 130' INT
trap 'interrupted=1; exit 143' TERM

show_server_log() {
	echo "demo: server log:" >&2
	sed 's/^/    /' "$tmp/server.log" >&2
}

# One build for both, so that their packages compile in parallel. Without
# a build cache this takes most of a minute (modernc.org/sqlite is large);
# with one (after make test, say) a few seconds.
echo "demo: building examples/todo and examples/todo/client"
mkdir "$tmp/bin"
# examples/todo is a module of its own (go.mod there): build from its directory.
"$GO" -C examples/todo build -o "$tmp/bin/" . ./client

"$tmp/bin/todo" -addr 127.0.0.1:0 -ready-file "$tmp/ready" 2>"$tmp/server.log" &
server_pid=$!

# The server writes its URL to the ready file once it serves, with its
# change capture streaming.
start=$SECONDS
until [ -s "$tmp/ready" ]; do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		wait "$server_pid" || true
		server_pid=""
		echo "demo: the server exited before serving" >&2
		show_server_log
		exit 1
	fi
	if [ $((SECONDS - start)) -ge "$ready_timeout" ]; then
		echo "demo: the server is not serving after ${ready_timeout}s" >&2
		show_server_log
		exit 1
	fi
	sleep 0.1
done
url=$(cat "$tmp/ready")
echo "demo: the server serves $url (ready in $((SECONDS - start))s); running the client"
echo

client_status=0
"$tmp/bin/client" -server "$url" || client_status=$?
echo

server_status=0
kill -TERM "$server_pid"
wait "$server_pid" || server_status=$?
server_pid=""

if [ "$client_status" -ne 0 ] || [ "$server_status" -ne 0 ]; then
	[ "$server_status" -eq 0 ] || echo "demo: the server failed (status $server_status)" >&2
	show_server_log
	[ "$client_status" -eq 0 ] || exit "$client_status"
	exit 1
fi
echo "demo: passed; the server shut down cleanly"
