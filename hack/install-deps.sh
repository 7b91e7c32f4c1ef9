#!/usr/bin/env bash
# Installs the Debian packages a group of targets needs:
#
#   hack/install-deps.sh [--list] [build|test]...
#
#   build  what `make build tools rootfs` and `make demo` need: make, gcc and libc6-dev
#          (static libc for the test programs, headers for runc's cgo) and busybox-static
#          (the demo's and the tests' rootfs is busybox plus static programs). Optional:
#          libseccomp-dev and pkg-config, so `make tools` builds runc with seccomp support;
#          a failure to install them is only a warning. Nothing of it puts a containerd or a
#          runc on PATH: the demo runs the ones `make tools` builds.
#   test   build's packages, plus what the integration tests and the benchmarks add:
#          libseccomp2 (Debian's runc binary, which `make test-compat` unpacks rather than
#          installs, links it), docker.io (dockerd 20.10, run privately against the tests'
#          containerd) and podman for the Docker and Podman tests, rt-tests (cyclictest and
#          hackbench) and stress-ng, which `make rootfs-bench` copies into the benchmarks'
#          rootfs (the latency benchmark's measurer and loads). docker.io and podman bring
#          Debian's containerd 1.6 and runc 1.1 onto PATH; the tests never use them.
#
# Without a group it installs `test` (everything): what `.ci/run`, `make deps` and
# `make integration` need. --list prints the packages of the groups and changes nothing.
#
# Idempotent: it runs apt-get only when something is missing, and `apt-get update` only before
# an install. Needs root (or nothing to do). The maintainer scripts start no service: a
# policy-rc.d refuses it while they install.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

list=
groups=()
for arg in "$@"; do
	case $arg in
	--list) list=1 ;;
	build | test) groups+=("$arg") ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*)
		echo "install-deps: unknown group $arg: the groups are build (make build, make demo) and test (everything)" >&2
		exit 2
		;;
	esac
done
[[ ${#groups[@]} -gt 0 ]] || groups=(test)

required=() optional=()
for g in "${groups[@]}"; do
	required+=(make gcc libc6-dev busybox-static)
	optional+=(libseccomp-dev pkg-config)
	if [[ $g == test ]]; then
		required+=(libseccomp2 docker.io podman rt-tests stress-ng)
	fi
done
mapfile -t required < <(printf '%s\n' "${required[@]}" | awk '!seen[$0]++')
mapfile -t optional < <(printf '%s\n' "${optional[@]}" | awk '!seen[$0]++')

if [[ -n $list ]]; then
	echo "required: ${required[*]}"
	echo "optional: ${optional[*]}"
	exit 0
fi

missing() {
	local p
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			echo "$p"
		fi
	done
}

mapfile -t need < <(missing "${required[@]}")
mapfile -t want < <(missing "${optional[@]}")

if [[ ${#need[@]} -eq 0 && ${#want[@]} -eq 0 ]]; then
	echo "install-deps: nothing to do (${groups[*]})"
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	if [[ ${#need[@]} -gt 0 ]]; then
		echo "install-deps: missing ${need[*]} and not root: install them with apt-get" >&2
		exit 1
	fi
	echo "install-deps: optional ${want[*]} missing and not root: skipped" >&2
	exit 0
fi

apt_get() {
	apt-get -y -q -o Dpkg::Use-Pty=0 "$@" </dev/null
}

echo "install-deps: installing ${need[*]} ${want[*]}"
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
	printf '#!/bin/sh\n# install-deps: no service starts during the install\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt_get update
if [[ ${#need[@]} -gt 0 ]]; then
	apt_get install --no-install-recommends "${need[@]}"
fi
if [[ ${#want[@]} -gt 0 ]]; then
	apt_get install --no-install-recommends "${want[@]}" ||
		echo "install-deps: optional ${want[*]} not installed: runc builds without seccomp" >&2
fi
