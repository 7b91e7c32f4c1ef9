#!/usr/bin/env bash
# Installs the Debian packages the build and the integration tests need.
#
# Idempotent: it runs apt-get only when something is missing, and
# `apt-get update` only before an install. Needs root (or nothing to do).
#
# Required: make, libc6-dev (static libc for the test programs, headers for
# runc's cgo), busybox-static (the test rootfs is busybox plus static test
# programs) and libseccomp2 (Debian's runc binary, which `make test-compat`
# unpacks rather than installs, links it). Optional: libseccomp-dev and
# pkg-config, so `make tools` builds runc with seccomp support; a failure to
# install them is only a warning.
# Required for the Docker and Podman integration tests: docker.io (dockerd 20.10,
# run privately against the tests' containerd) and podman. Their maintainer
# scripts start no service: a policy-rc.d refuses it while they install.
# Required for `make bench` and `make bench-smoke`: rt-tests (cyclictest, which
# `make rootfs-bench` copies with its libraries into the benchmarks' rootfs).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

required=(make libc6-dev busybox-static libseccomp2)
required+=(docker.io podman)
required+=(rt-tests)
optional=(libseccomp-dev pkg-config)

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
	echo "install-deps: nothing to do"
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
