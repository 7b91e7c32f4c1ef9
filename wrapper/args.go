// Package wrapper is runc-rt: a runc-compatible command for engines that run an OCI runtime
// binary (Docker's path runtimes, Podman --runtime, CRI-O, containerd's BinaryName). It does
// what the shim does around create, start, exec and delete, and hands every command to the
// real runc.
package wrapper

import "strings"

// Invocation is a runc command line, split the way runc's own parser splits it.
type Invocation struct {
	Args    []string          // everything after the program name, unchanged
	Global  map[string]string // global flags before the command ("root", "systemd-cgroup", ...)
	Command string            // "create", "start", ...; "" for none (runc --version)
	Flags   map[string]string // the command's flags, by long name
	Pos     []string          // the command's positional arguments (the container ID first)
}

// Value flags (those that take an argument) of runc 1.x, by long name; short aliases map to
// their long name. Boolean flags need not be listed.
var (
	globalValueFlags  = map[string]bool{"log": true, "log-format": true, "root": true, "criu": true, "rootless": true}
	commandValueFlags = map[string]bool{
		"bundle": true, "console-socket": true, "pidfd-socket": true, "pid-file": true, "preserve-fds": true,
		"cwd": true, "env": true, "user": true, "additional-gids": true, "process": true, "process-label": true,
		"apparmor": true, "cap": true, "cgroup": true, "signal": true, "format": true,
		"image-path": true, "work-path": true, "parent-path": true, "page-server": true, "manage-cgroups-mode": true,
		"empty-ns": true, "status-fd": true, "lsm-profile": true, "lsm-mount-context": true, "interval": true,
		// update's: containerd 1.7's runc shim (go-runc 1.0, so Docker 27 and 28 as they ship)
		// runs "update --resources - ID", whose "-" would otherwise be taken for the ID, as CRI-O
		// does, and a user's "update --cpu-quota 20000 ID" would name container "20000".
		"resources": true, "blkio-weight": true, "cpu-period": true, "cpu-quota": true, "cpu-burst": true,
		"cpu-share": true, "cpu-rt-period": true, "cpu-rt-runtime": true, "cpuset-cpus": true, "cpuset-mems": true,
		"cpu-idle": true, "kernel-memory": true, "kernel-memory-tcp": true, "memory": true, "memory-reservation": true,
		"memory-swap": true, "pids-limit": true, "l3-cache-schema": true, "mem-bw-schema": true,
	}
	shortFlags = map[string]string{"b": "bundle", "p": "process", "e": "env", "u": "user", "g": "additional-gids",
		"c": "cap", "d": "detach", "t": "tty", "f": "force", "s": "signal", "a": "all", "h": "help", "v": "version",
		"r": "resources"}
)

// Parse splits a runc command line. It never fails: what it does not understand is left to
// the real runc, which reports it.
func Parse(args []string) Invocation {
	inv := Invocation{Args: args, Global: map[string]string{}, Flags: map[string]string{}}
	rest := parseFlags(args, globalValueFlags, inv.Global, true)
	if len(rest) == 0 {
		return inv
	}
	inv.Command = rest[0]
	inv.Pos = parseFlags(rest[1:], commandValueFlags, inv.Flags, inv.Command == "exec")
	return inv
}

// parseFlags reads flags into out and returns the positional arguments. With
// stopAtPositional, everything from the first positional argument on is positional (the
// command after the global flags; exec's command after its container ID); otherwise flags
// may follow positionals, as runc's parser allows ("create ID --bundle B").
func parseFlags(args []string, valueFlags map[string]bool, out map[string]string, stopAtPositional bool) []string {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if stopAtPositional {
				return append(pos, args[i:]...)
			}
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if long, ok := shortFlags[name]; ok {
			name = long
		}
		if !hasValue {
			if valueFlags[name] && i+1 < len(args) {
				i++
				value = args[i]
			} else {
				value = "true"
			}
		}
		out[name] = value
	}
	return pos
}

// ID is the container ID the command acts on.
func (inv Invocation) ID() string {
	if len(inv.Pos) == 0 {
		return ""
	}
	return inv.Pos[0]
}
