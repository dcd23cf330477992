# shellcheck shell=bash
# Sourced by scripts/podman-image.sh and scripts/podman-test.sh: one private
# Podman (its own storage, state and configuration, nothing of the
# machine's) that serves the Docker API to the tests' container backend
# where no Docker engine runs. Facts behind the settings: see the README's
# Tests section.
#
#   SYNCHRO_PODMAN_DIR    where it lives (default ~/.cache/synchro-podman);
#                         kept between runs, so the image is built once
#   SYNCHRO_PODMAN_IMAGE  the image (default localhost/synchro-postgres:15)

podman_dir=${SYNCHRO_PODMAN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/synchro-podman}
# shellcheck disable=SC2034 # used by the scripts that source this file
podman_image=${SYNCHRO_PODMAN_IMAGE:-localhost/synchro-postgres:15}
# shellcheck disable=SC2034
podman_socket=$podman_dir/podman.sock

# podman_need_root exits unless the script runs as root: debootstrap, and
# Podman with runc and cgroupfs as set up here, need it.
podman_need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "$(basename "$0"): needs root (debootstrap, rootful Podman); try sudo" >&2
		exit 1
	fi
}

# podman_install installs podman, runc and debootstrap with apt when one is
# missing.
podman_install() {
	local missing=()
	command -v podman >/dev/null 2>&1 || missing+=(podman)
	command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || missing+=(runc)
	command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
	[ ${#missing[@]} -gt 0 ] || return 0
	echo "podman: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
}

# podman_configure writes containers.conf and points CONTAINERS_CONF at it
# (then Podman reads no other): runc, because crun 1.8 fails here on
# setrlimit and hybrid cgroups; cgroupfs and file events, since systemd
# does not run; nofile and nproc no higher than this shell's hard limits.
podman_configure() {
	mkdir -p "$podman_dir/root" "$podman_dir/runroot" "$podman_dir/tmp"
	local nofile nproc
	nofile=$(ulimit -Hn)
	nproc=$(ulimit -Hu)
	[ "$nofile" != unlimited ] && [ "$nofile" -le 65536 ] || nofile=65536
	[ "$nproc" != unlimited ] && [ "$nproc" -le 32768 ] || nproc=32768
	cat >"$podman_dir/containers.conf" <<-CONF
		# Written by scripts/podman/lib.sh.
		[containers]
		default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

		[engine]
		runtime = "runc"
		cgroup_manager = "cgroupfs"
		events_logger = "file"
	CONF
	export CONTAINERS_CONF=$podman_dir/containers.conf
}

# pm runs podman on the private storage.
pm() {
	podman --root "$podman_dir/root" --runroot "$podman_dir/runroot" --tmpdir "$podman_dir/tmp" "$@"
}
