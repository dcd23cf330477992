#!/bin/sh
# Entrypoint of localhost/synchro-postgres:15, the image scripts/podman-image.sh
# builds for the tests' container backend where no registry is reachable. It
# keeps the part of the official postgres image's contract the tests use:
#
#   - POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#     POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default the user),
#     PGDATA (default /var/lib/postgresql/data), POSTGRES_INITDB_ARGS;
#   - a command that starts with "-" or is "postgres" runs the server with
#     those arguments (so `postgres -c wal_level=logical ...` passes its -c
#     flags through); any other command is run as is;
#   - on an empty PGDATA: initdb with the password (scram-sha-256 for host
#     connections from anywhere, trust on the local socket), then a
#     temporary server on the socket alone to create POSTGRES_DB, which
#     prints the first "database system is ready to accept connections",
#     then the real server, which prints the second.
#
# Not kept: /docker-entrypoint-initdb.d scripts, POSTGRES_INITDB_WALDIR,
# running as an arbitrary --user.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
export PGDATA

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
	exec "$@"
fi
shift

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		echo "entrypoint: POSTGRES_PASSWORD is empty; set it (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
		exit 1
	fi
	pwfile=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments
	initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
		--auth-host="$POSTGRES_HOST_AUTH_METHOD" ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA"
	rm -f "$pwfile"
	{
		echo
		echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
		echo "host replication all all $POSTGRES_HOST_AUTH_METHOD"
	} >>"$PGDATA/pg_hba.conf"
	echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"

	pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" start
	if [ "$POSTGRES_DB" != postgres ]; then
		# From standard input, where psql substitutes :"db" (quoted).
		echo 'CREATE DATABASE :"db";' |
			psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres -v db="$POSTGRES_DB"
	fi
	pg_ctl -D "$PGDATA" -w -m fast stop
	echo "entrypoint: initialised $PGDATA; starting PostgreSQL"
fi

exec postgres -D "$PGDATA" "$@"
