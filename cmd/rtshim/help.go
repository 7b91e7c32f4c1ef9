package main

// The help texts read like a man page: `rtshim --help` is the whole page, `rtshim <command>
// --help` the command's part of it plus the exit statuses.

const helpHead = `NAME
    rtshim - check a host for real-time containers, and list the ones it runs

SYNOPSIS
    rtshim doctor [--json] [--address SOCKET] [--config FILE] [--containerd-config FILE]...
    rtshim status [--json] [--address SOCKET] [--config FILE] [--containerd-config FILE]...
                  [--state-dir DIR]
    rtshim help [COMMAND]
    rtshim --version

DESCRIPTION
    rtshim goes with containerd-shim-rt-v2, the containerd shim (runtime type
    io.containerd.rt.v2) that gives containers real-time scheduling. It only reads:
    it never changes a host setting. Run it as root on the host, not in a container.

COMMANDS
`

const helpDoctor = `    doctor
        Check whether this host is ready to run real-time containers. For each
        finding it prints what it saw, why it matters and the exact fix:

          cgroup.version      cgroup v1, v2 or hybrid, from mountinfo
          cgroup.driver       systemd or cgroupfs driver of the rt runtimes, against
                              whether systemd runs
          rt.group-sched      v1: RT budget left at the root cgroup for new containers;
                              v2: whether the kernel refuses RT in child cgroups
          rt.throttling       kernel.sched_rt_runtime_us and sched_rt_period_us
          kernel.preempt-rt   PREEMPT_RT kernel or not
          cpu.isolation       isolcpus, nohz_full, rcu_nocbs on the command line
          irq.balance         irqbalance running without banned or isolated CPUs
          cpu.governor        cpufreq governors (performance is good)
          cpu.cstates         enabled idle states with an exit latency above 10 us
          containerd.version  every running containerd (or the one at --address), asked
                              its version: 2.0 or newer starts the shim
          containerd.runtime  an rt runtime in containerd's config, and its
                              annotation filters
          shim.binary         containerd-shim-rt-v2 next to containerd or on PATH
          shim.config         the rtshim config(s) in use: valid, or the error

        Severities: ok, info, warn (costs latency), fail (RT containers will not
        run). The host is ready when nothing fails.

        --json
            Print the report as one JSON object: {"ready", "counts", "findings":
            [{"id", "title", "severity", "saw", "why", "fix"}]}.
        --address SOCKET
            Check the containerd serving this gRPC socket (its [grpc] address, e.g.
            /run/containerd/containerd.sock) instead of every running containerd: ask
            it its version, and read the config file (--config) and environment (PATH,
            RTSHIM_CONFIG) of the process holding the socket.
        --config FILE
            Check this rtshim config instead of the ones containerd's config names
            (ConfigPath or the options table of an io.containerd.rt.v2 runtime) or
            /etc/containerd/rtshim.toml.
        --containerd-config FILE
            Also read this containerd config (repeatable), besides
            /etc/containerd/config.toml. Unlike the default file, it must exist.

`

const helpStatus = `    status
        List the real-time containers on this host: the claims in the rtshim state
        dir, each with what the kernel says now: the processes in the container's
        cgroup and their policy/priority (sched_getattr), the cgroup v1 RT budget
        (cpu.rt_runtime_us/cpu.rt_period_us), the CFS quota of the container and of
        its pod ("max" means none), and whether the shim that owns the claim is alive.

        --json
            Print {"state_dir", "cgroup_mount", "cgroup_v2", "containers": [...]}.
        --state-dir DIR
            Read the claims in DIR instead of the config's state_dir; DIR must exist.
        --config FILE, --containerd-config FILE, --address SOCKET
            Where the state_dir comes from, as for doctor.

`

const helpHelp = `    help [COMMAND]
        Print this page, or the part about COMMAND.

    version, --version
        Print rtshim's version, the git commit it was built from, and the containerd
        module and Go release it was built with.

`

const helpExit = `EXIT STATUS
    0   doctor: ready (no finding failed); status: listed
    1   doctor: not ready (a finding failed); status: the state dir or the config
        could not be read, or the --state-dir named does not exist
    2   usage error: unknown command or flag
`

const helpRest = `
FILES
    /etc/containerd/rtshim.toml   rtshim config (reference: contrib/rtshim.toml)
    /etc/containerd/config.toml   containerd config
    /run/rtshim/claims/           one claim per RT container (the state_dir)

EXAMPLES
    Check the host:
        rtshim doctor
    Show only what is not ok:
        rtshim doctor --json | jq '.findings[] | select(.severity != "ok")'
    Check the containerd that serves a socket (its version, config and environment):
        rtshim doctor --address /run/containerd/containerd.sock
    Check a containerd config and a new rtshim config before installing them:
        rtshim doctor --containerd-config /tmp/ctrd/config.toml --config ./rtshim.toml
    Gate a deployment on it:
        rtshim doctor >/dev/null || echo "host not ready for RT containers"
    List the RT containers and their policies:
        rtshim status
        rtshim status --json | jq -r '.containers[] | "\(.id) \(.processes[0].sched.policy)"'

SEE ALSO
    docs/doctor.md, containerd-shim-rt-v2, chrt(1), sched(7), the kernel's
    Documentation/scheduler/sched-rt-group.rst
`

const helpPage = helpHead + helpDoctor + helpStatus + helpReap + helpDevicePlugin + helpHelp + helpExit + helpRest
