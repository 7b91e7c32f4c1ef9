// Package rtcontainer is the lifecycle of a real-time container, the one core behind both front
// doors: the shim (package shim) and runc-rt (package wrapper). Around the OCI runtime's own
// steps it validates the container's request, grants its budget and rewrites its spec (Prepare,
// before `runc create`), finds its cgroup and sets the policy on the paused init (AfterCreate),
// checks it again (BeforeStart), gives exec'd processes the exec policy (Exec), keeps the quota
// exemption across updates (Update), and gives everything back (BeforeDelete, AfterDelete).
// What differs between the front doors is behind Runtime.
package rtcontainer

import (
	"context"
	"os"
	"strconv"
	"strings"

	gorunc "github.com/containerd/go-runc"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/internal/sched"
)

// Host is where procfs, sysfs, /run and the kernel config are; tests point it at fake trees.
type Host struct {
	ProcRoot string
	BootDir  string
	// SysRoot is sysfs ("": /sys); RunRoot is /run, where irqbalance's socket is ("": irqbalance
	// is not told about tuned CPUs).
	SysRoot, RunRoot string
}

// DefaultHost is the real host.
func DefaultHost() Host {
	return Host{ProcRoot: "/proc", BootDir: "/boot", SysRoot: "/sys", RunRoot: "/run"}
}

func (h Host) procs() sched.Procs { return sched.Procs{Root: h.ProcRoot} }

// Cgroups finds the cpu controller's hierarchy and returns the manager of its budgets, with the
// claims in stateDir.
func (h Host) Cgroups(stateDir string) (*cgroupfix.Manager, error) { return h.cgroups(stateDir) }

func (h Host) cgroups(stateDir string) (*cgroupfix.Manager, error) {
	hier, err := cgroupfix.FindCPU(h.ProcRoot)
	if err != nil {
		return nil, err
	}
	return &cgroupfix.Manager{
		CPU: cgroupfix.DirFS{Root: hier.Mount}, V2: hier.V2,
		State: cgroupfix.State{Dir: stateDir}, ProcRoot: h.ProcRoot,
	}, nil
}

// Runtime is what differs between the front doors: where the paused init's PID comes from
// (the shim has it from the stock Create's answer, runc-rt from runc create's --pid-file or
// `runc state`) and which OCI runtime binary runs the container.
type Runtime interface {
	// InitPID is the PID of the container's init, paused after `runc create`.
	InitPID(ctx context.Context) (int, error)
	// Version is what the OCI runtime's `--version` says.
	Version(ctx context.Context) (gorunc.Version, error)
}

// Runc is the Runtime that asks runc itself, through go-runc: runc-rt's.
type Runc struct {
	Runc *gorunc.Runc
	ID   string
	// PidFile is `runc create --pid-file`: runc writes the init's PID there before create
	// returns, so reading it spares a `runc state` (another runc process) per create.
	PidFile string
}

func (r Runc) InitPID(ctx context.Context) (int, error) {
	if r.PidFile != "" {
		if b, err := os.ReadFile(r.PidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid, nil
			}
		}
	}
	st, err := r.Runc.State(ctx, r.ID)
	if err != nil {
		return 0, err
	}
	return st.Pid, nil
}

func (r Runc) Version(ctx context.Context) (gorunc.Version, error) { return r.Runc.Version(ctx) }

// Options describe one container.
type Options struct {
	Namespace, ID, Bundle string
	Config                *config.Config
	Runtime               Runtime
	// SystemdCgroup: runc uses the systemd cgroup driver (linux.cgroupsPath is slice:prefix:name).
	SystemdCgroup bool
	// Detached: the caller exits after create (runc-rt), so the container's init owns its claim
	// from AfterCreate on, and the container is recorded in the state dir for the later
	// commands (Lookup). In apply mode process.scheduler is also left out of the spec: the
	// policy is set on the paused init, and runc's stored config then carries no scheduler for
	// `runc exec` to pass on (runc ≥ 1.3 does that).
	Detached bool
}

func self(procRoot string) cgroupfix.Owner { return cgroupfix.OwnerOf(procRoot, os.Getpid()) }
