#!/usr/bin/env bash
# Builds the cgroup v2 test VM's initramfs (an uncompressed newc cpio: unpacking it is faster
# than decompressing under software emulation):
#
#   /init                 hack/vm/init.sh
#   /bin, /sbin, /usr     busybox and its applets
#   /usr/local/bin        containerd, ctr, containerd-shim-runc-v2, runc, containerd-shim-rt-v2, runc-rt,
#                         and the files named in $DOCKER_BINS (make test-v2: dockerd, docker)
#                         and $NRI_BINS (make test-v2: hack/nri-sched, the NRI peer's plugin)
#   /lib*, /usr/lib*      the shared libraries runc needs (ldd)
#   /rootfs               the test container rootfs (make rootfs)
#   /boot/config-<rel>    the kernel's config, where the shim looks for it
#   /vmtest.test          the test binary (package vmtest), /vmtest.timeout and /vmtest.run
#                         (its -test.run: $VM_RUN, default ^TestV2)
#
# usage: initramfs.sh OUT BIN_DIR TOOLS_DIR ROOTFS VMTEST_BINARY KERNEL_IMAGE [GUEST_TIMEOUT]
set -euo pipefail

[[ $# -ge 6 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
out=$1 bin_dir=$2 tools_dir=$3 rootfs=$4 vmtest=$5 kernel=$6 guest_timeout=${7:-10m}
busybox=${BUSYBOX:-/bin/busybox}
here=$(dirname "$0")

stage=$(mktemp -d "$(dirname "$out")/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,proc,sys,dev,run,tmp,etc,root,boot,var/lib}
cp "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list-full); do
	[[ -e $stage/$applet ]] || ln -s /bin/busybox "$stage/$applet"
done
for f in "$tools_dir"/{containerd,ctr,containerd-shim-runc-v2,runc} "$bin_dir"/{containerd-shim-rt-v2,runc-rt} ${DOCKER_BINS:-} ${NRI_BINS:-}; do
	install -m 0755 "$f" "$stage/usr/local/bin/"
done
# Shared libraries of the dynamically linked binaries (runc: libc, libseccomp), at the paths
# the loader looks for them.
for f in "$stage"/usr/local/bin/*; do
	{ ldd "$f" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | sort -u | while read -r lib; do
	mkdir -p "$stage$(dirname "$lib")"
	cp -L "$lib" "$stage$lib"
done
cp -a "$rootfs" "$stage/rootfs"
rm -f "$stage/rootfs.stamp"
config=$(dirname "$kernel")/config-$(basename "$kernel" | sed 's/^vmlinuz-//')
cp "$config" "$stage/boot/"
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
printf '%s\n' 'root:x:0:' >"$stage/etc/group"
# CRI's host-network sandboxes copy these (TestV2NRIRoute).
printf '%s\n' '127.0.0.1 localhost' >"$stage/etc/hosts"
: >"$stage/etc/resolv.conf"
install -m 0755 "$here/init.sh" "$stage/init"
install -m 0755 "$vmtest" "$stage/vmtest.test"
echo "$guest_timeout" >"$stage/vmtest.timeout"
echo "${VM_RUN:-^TestV2}" >"$stage/vmtest.run"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) >"$out.tmp"
mv "$out.tmp" "$out"
echo "initramfs: $out ($(du -h "$out" | cut -f1))"
