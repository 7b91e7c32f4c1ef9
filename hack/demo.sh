#!/usr/bin/env bash
# make demo: a private containerd (temp dirs, its own socket), one container run through
# rtshim and the same container through the stock runc shim, side by side. Needs root and the
# binaries `make build tools rootfs` puts in _output. Leaves nothing behind.
set -euo pipefail

out=${OUTPUT:-_output}
bin=$(realpath "$out/bin") tools=$(realpath "$out/tools/bin") rootfs=$(realpath "$out/rootfs")
dir=$(mktemp -d /tmp/rtshim-demo-XXXXXX)
ns=$(basename "$dir")
export PATH="$bin:$tools:$PATH"

ctr() { command ctr --address "$dir/containerd.sock" --namespace "$ns" "$@" 2> >(grep -v 'cgroup v1' >&2); }

# containerd and its shims make these if missing; the demo removes the ones it made.
created=()
for d in /run/containerd/fifo /run/containerd/runc /run/containerd/s /run/containerd; do
	[ -e "$d" ] || created+=("$d")
done

cleanup() {
	for id in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s SIGKILL "$id" || true; ctr tasks delete -f "$id" || true; done
	for id in $(ctr containers ls -q 2>/dev/null); do ctr containers delete "$id" || true; done
	[ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
	for h in /sys/fs/cgroup/*/; do [ -d "$h$ns" ] && rmdir "$h$ns" 2>/dev/null || true; done
	rm -rf "$dir" "/run/containerd/runc/$ns"
	for d in "${created[@]}"; do rmdir "$d" 2>/dev/null || true; done
}
trap cleanup EXIT

cat > "$dir/config.toml" <<TOML
version = 3
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
TOML
containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done

# The same container twice: asks for SCHED_FIFO 80, prints the policy its first instruction
# ran with, then tries to switch to FIFO itself.
run() {
	local runtime=$1
	shift
	ctr run --rm --runtime "$runtime" "$@" \
		--annotation rtshim.io/policy=SCHED_FIFO --annotation rtshim.io/priority=80 \
		--rootfs "$rootfs" "demo-${runtime//./-}" /bin/schedinfo -set fifo 80 || true
}

echo "== containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'), $(uname -r)"
echo "== io.containerd.rt.v2 (rtshim), unprivileged container:"
run io.containerd.rt.v2 | sed 's/^/   /'
echo "== io.containerd.runc.v2 (stock runc shim), even --privileged:"
run io.containerd.runc.v2 --privileged | sed 's/^/   /'
echo "== rtshim, while an RT container runs: its cgroup's RT budget, and its namespace's:"
ctr run -d --runtime io.containerd.rt.v2 --annotation rtshim.io/policy=SCHED_FIFO \
	--rootfs "$rootfs" demo-budget /bin/sleep 60 >/dev/null
for cg in "$ns/demo-budget" "$ns"; do
	echo "   /sys/fs/cgroup/cpu/$cg/cpu.rt_runtime_us = $(cat "/sys/fs/cgroup/cpu/$cg/cpu.rt_runtime_us" 2>/dev/null || echo n/a)"
done
ctr tasks kill -s SIGKILL demo-budget && ctr tasks delete demo-budget >/dev/null && ctr containers delete demo-budget
echo "   after delete: /sys/fs/cgroup/cpu/$ns/cpu.rt_runtime_us = $(cat "/sys/fs/cgroup/cpu/$ns/cpu.rt_runtime_us" 2>/dev/null || echo n/a)"
echo "== rtshim: policy=SCHED_FIFO priority=80 from the first instruction; stock: SCHED_OTHER, and"
echo "   set=error (EPERM) where the kernel has cgroup v1 RT group scheduling (the container's"
echo "   cgroup has cpu.rt_runtime_us = 0)."
