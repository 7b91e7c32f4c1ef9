#!/usr/bin/env bash
# Installs what `make test-v2` needs on a Debian host, idempotently:
#
#   - qemu-system-x86 (apt-get install; needs root, only when qemu-system-x86_64 is missing);
#   - Debian's PREEMPT_RT kernel, linux-image-<abi>-rt-amd64, the one the metapackage
#     linux-image-rt-amd64 points at today: the .deb is fetched with `apt-get download` and
#     unpacked with `dpkg-deb -x` under $VM_DIR (default _output/vm). It is never installed on
#     the host. Only its boot/ directory (vmlinuz, config) is kept.
#
# Prints the path of the kernel image on its last line.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
vm_dir=${VM_DIR:-_output/vm}
mkdir -p "$vm_dir"
vm_dir=$(realpath "$vm_dir")

log() { echo "vm-deps: $*" >&2; }
apt_get() { apt-get -y -q -o Dpkg::Use-Pty=0 "$@" </dev/null; }

updated=
apt_update() {
	[[ -n $updated ]] && return
	if [[ $(id -u) -ne 0 ]]; then
		log "package lists need 'apt-get update', which needs root"
		return 1
	fi
	apt_get update >&2
	updated=1
}

if ! command -v qemu-system-x86_64 >/dev/null; then
	if [[ $(id -u) -ne 0 ]]; then
		log "qemu-system-x86_64 is missing and not root: run 'apt-get install qemu-system-x86'"
		exit 1
	fi
	log "installing qemu-system-x86"
	apt_update
	apt_get install --no-install-recommends qemu-system-x86 >&2
fi

# The ABI package the metapackage depends on today, e.g. linux-image-6.1.0-47-rt-amd64.
kernel_package() {
	apt-cache depends linux-image-rt-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-.*-rt-amd64(-unsigned)?$/ { print $2; exit }'
}
pkg=$(kernel_package)
if [[ -z $pkg ]]; then
	apt_update
	pkg=$(kernel_package)
fi
[[ -n $pkg ]] || { log "apt-cache knows no linux-image-rt-amd64"; exit 1; }

dest="$vm_dir/kernel/$pkg"
if ! compgen -G "$dest/boot/vmlinuz-*" >/dev/null; then
	log "fetching $pkg (unpacked under $dest, not installed)"
	tmp=$(mktemp -d "$vm_dir/fetch.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || { apt_update && (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); }
	dpkg-deb -x "$tmp"/*.deb "$tmp/root"
	rm -rf "$dest"
	mkdir -p "$dest"
	mv "$tmp/root/boot" "$dest/boot"
	rm -rf "$tmp"
	trap - EXIT
fi
kernel=$(compgen -G "$dest/boot/vmlinuz-*" | head -n1)
log "kernel $kernel"
echo "$kernel"
