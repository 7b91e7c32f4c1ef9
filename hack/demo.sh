#!/usr/bin/env bash
# make demo: a private containerd (temp dirs, its own socket), one container run through
# rtshim and the same container through the stock runc shim, side by side. Needs root and the
# binaries `make build tools rootfs` puts in _output. Leaves nothing behind.
#
# It runs only those binaries: containerd, ctr, runc and the stock runc shim from _output/tools/bin
# (the versions tools/go.mod pins), the rtshim shim from _output/bin, first on the PATH the
# daemon and its shims get. A containerd or runc elsewhere on PATH (Debian's containerd 1.6 and
# runc 1.1 come with docker.io and podman) is never used, and neither is the host's rtshim config.
set -euo pipefail

out=${OUTPUT:-_output}
bin=$(realpath "$out/bin") tools=$(realpath "$out/tools/bin") rootfs=$(realpath "$out/rootfs")
export PATH="$bin:$tools:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
for b in "$tools/containerd" "$tools/ctr" "$tools/runc" "$tools/containerd-shim-runc-v2" "$bin/containerd-shim-rt-v2"; do
	if [[ $(command -v "$(basename "$b")") != "$b" ]]; then
		echo "demo: $(basename "$b") resolves to $(command -v "$(basename "$b")" || echo nothing), not $b: run make build tools" >&2
		exit 1
	fi
done
dir=$(mktemp -d /tmp/rtshim-demo-XXXXXX)
ns=$(basename "$dir")
# The shim's config: the built-in defaults, whatever /etc/containerd/rtshim.toml says.
: >"$dir/rtshim.toml"
export RTSHIM_CONFIG=$dir/rtshim.toml

ctr() { "$tools/ctr" --address "$dir/containerd.sock" --namespace "$ns" "$@" 2> >(grep -v 'cgroup v1' >&2); }

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
"$tools/containerd" --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
ctr version >/dev/null || { echo "demo: containerd did not start; its log:" >&2; cat "$dir/containerd.log" >&2; exit 1; }

# The same container twice: asks for SCHED_FIFO 80, prints the policy its first instruction
# ran with, then tries to switch to FIFO itself.
run() {
	local runtime=$1
	shift
	ctr run --rm --runtime "$runtime" "$@" \
		--annotation rtshim.io/policy=SCHED_FIFO --annotation rtshim.io/priority=80 \
		--rootfs "$rootfs" "demo-${runtime//./-}" /bin/schedinfo -set fifo 80 || true
}

echo "== containerd $("$tools/containerd" --version | awk '{print $3}'), runc $("$tools/runc" --version | awk 'NR==1{print $3}') (both from $tools), $(uname -r)"
echo "== rtshim $("$bin/containerd-shim-rt-v2" --version | awk '$1 == "Version:" {print $2}'), from $bin"
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
ctr tasks kill -s SIGKILL demo-budget
ctr tasks delete demo-budget 2>&1 >/dev/null | { grep -v "exit code 137" || true; } >&2
ctr containers delete demo-budget
echo "   after delete: /sys/fs/cgroup/cpu/$ns/cpu.rt_runtime_us = $(cat "/sys/fs/cgroup/cpu/$ns/cpu.rt_runtime_us" 2>/dev/null || echo n/a)"
echo "== rtshim: policy=SCHED_FIFO priority=80 from the first instruction; stock: SCHED_OTHER, and"
echo "   set=error (EPERM) where the kernel has cgroup v1 RT group scheduling (the container's"
echo "   cgroup has cpu.rt_runtime_us = 0)."
