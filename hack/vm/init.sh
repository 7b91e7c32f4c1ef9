#!/bin/busybox sh
# /init of the cgroup v2 test VM (hack/vm/initramfs.sh puts it in the initramfs). Runs the
# TestV2 tests of package vmtest with cgroup v2 mounted and every controller enabled, prints
# "rtshim-vm: exit status N" and powers off. The host side (vmtest's TestVM) reads the serial
# console.
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

fail() {
	echo "rtshim-vm: FAIL: $*"
	echo "rtshim-vm: exit status 1"
	poweroff -f
}

# runc's pivot_root fails on the initramfs (rootfs cannot be pivoted): first move everything
# into a tmpfs and make that the root.
if [ ! -e /.tmpfs-root ]; then
	mkdir -p /newroot
	mount -t tmpfs -o mode=0755 tmpfs /newroot || fail "mount tmpfs"
	for f in /*; do
		[ "$f" = /newroot ] || cp -a "$f" /newroot/ || fail "copy $f to tmpfs"
	done
	touch /newroot/.tmpfs-root
	exec switch_root /newroot /init
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
for c in cpu cpuset memory pids io; do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || fail "enable the $c controller"
done
hostname rtshim-vm
echo "rtshim-vm: $(uname -r), cgroup v2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"

cd /
RTSHIM_VM_GUEST=1 /vmtest.test -test.v -test.count=1 -test.run "$(cat /vmtest.run)" -test.timeout "$(cat /vmtest.timeout)"
echo "rtshim-vm: exit status $?"
sync
poweroff -f
