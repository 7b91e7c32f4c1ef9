// Package vmtest is the cgroup v2 test tier: it proves the shim on a real cgroup v2 kernel
// (Debian's PREEMPT_RT kernel) although the development and CI hosts are cgroup v1, by booting
// that kernel under qemu.
//
// One test binary plays two parts:
//
//   - On the host, TestVM boots qemu with the kernel and an initramfs (built by
//     hack/vm/initramfs.sh) holding busybox, containerd, ctr, runc, both shims, the test rootfs
//     and this binary. It streams the serial console, prints it, and mirrors the guest's
//     results as its own subtests; it fails on any FAIL or SKIP in the guest, a missing final
//     PASS, a non-zero exit or a timeout. `make test-v2` builds everything and runs it.
//   - In the guest, the initramfs's /init (hack/vm/init.sh) mounts cgroup2 with every
//     controller enabled and runs this binary with RTSHIM_VM_GUEST=1 and -test.run '^TestV2':
//     TestMain starts containerd, and the TestV2 tests run containers through the rt shim and
//     the stock runc shim.
//
// Anywhere else (`make test-unit`) both parts skip; the console parser's unit tests run.
package vmtest
