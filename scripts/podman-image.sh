#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the PostgreSQL image of the tests' container backend without a
# registry: localhost/synchro-postgres:15 in the private Podman storage of
# scripts/podman/lib.sh, unless it is there already (then it says so and
# exits). Root only; make test-docker runs it.
#
#   debootstrap --variant=minbase --include=postgresql-15 bookworm ROOTFS MIRROR
#   (MIRROR: $DEBIAN_MIRROR, else the Debian mirror apt uses), then the
#   cluster Debian creates, documentation, caches and logs removed, our
#   entrypoint (scripts/podman/entrypoint.sh, the official image's contract)
#   added, and `podman import` with ENTRYPOINT, CMD, ENV and STOPSIGNAL.
#
#   scripts/podman-image.sh           # build when missing
#   scripts/podman-image.sh -force    # build again
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
# shellcheck source=podman/lib.sh
. "$here/podman/lib.sh"
podman_need_root
podman_install
podman_configure

if [ "${1:-}" != -force ] && pm image exists "$podman_image"; then
	echo "podman-image: $podman_image is there; not building"
	exit 0
fi

# debian_mirror prints the first Debian archive URL of apt's sources (not
# the security archive), for the suite bookworm.
debian_mirror() {
	local f uri
	shopt -s nullglob
	for f in /etc/apt/sources.list.d/*.sources; do
		# deb822: a stanza with "Suites: bookworm ..." and "URIs: ...".
		uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
			/(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ && /(^|\n)Types:[^\n]*deb([ \t]|\n|$)/ {
				for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); print a[2]; exit }
			}' "$f")
		[ -z "$uri" ] || { echo "$uri"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		uri=$(awk '$1 == "deb" { u = $2; if (u ~ /^\[/) u = $3; for (i = 2; i <= NF; i++) if ($i == "bookworm") { print u; exit } }' "$f")
		[ -z "$uri" ] || { echo "$uri"; return; }
	done
	echo http://deb.debian.org/debian
}
mirror=${DEBIAN_MIRROR:-$(debian_mirror)}

rootfs=$(mktemp -d /var/tmp/synchro-rootfs.XXXXXX)
cleanup() {
	# debootstrap mounts /proc and /sys in the root while it works; a
	# failed run may leave them.
	umount -R "$rootfs/proc" "$rootfs/sys" 2>/dev/null || true
	rm -rf --one-file-system "$rootfs"
}
trap cleanup EXIT

start=$SECONDS
echo "podman-image: debootstrap bookworm (minbase, postgresql-15) from $mirror"
if ! debootstrap --variant=minbase --include=postgresql-15 bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
	tail -20 "$rootfs.log" >&2
	rm -f "$rootfs.log"
	echo "podman-image: debootstrap failed" >&2
	exit 1
fi
rm -f "$rootfs.log"
debootstrap_s=$((SECONDS - start))

# The cluster and configuration postgresql-common created (the entrypoint
# runs initdb itself), what a server needs no copy of.
rm -rf "$rootfs/var/lib/postgresql/15" "$rootfs/etc/postgresql/15" \
	"$rootfs/usr/share/doc" "$rootfs/usr/share/man" "$rootfs/usr/share/info" \
	"$rootfs/var/cache/apt" "$rootfs/var/lib/apt/lists" "$rootfs/var/cache/debconf/"*-old
find "$rootfs/var/log" -type f -delete
install -m 0755 "$here/podman/entrypoint.sh" "$rootfs/usr/local/bin/docker-entrypoint.sh"

tar -C "$rootfs" -c . | pm import \
	--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
	--change 'CMD ["postgres"]' \
	--change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'ENV PGDATA=/var/lib/postgresql/data' \
	--change 'ENV LANG=C.UTF-8' \
	--change 'EXPOSE 5432' \
	--change 'STOPSIGNAL SIGINT' \
	--quiet - "$podman_image" >/dev/null
echo "podman-image: built $podman_image in $((SECONDS - start))s (debootstrap ${debootstrap_s}s); $(pm image inspect --format '{{.Size}}' "$podman_image" | awk '{ printf "%d MB", $1 / 1e6 }')"
