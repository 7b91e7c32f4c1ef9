package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// How long doctor waits for a daemon's answer, and for a binary's --version.
const (
	apiTimeout  = 3 * time.Second
	execTimeout = 5 * time.Second
)

// askVersion asks a daemon its version over its socket (the version API every containerd
// since 1.0 serves), else runs its binary with --version.
func askVersion(d *daemon) {
	if d.Address != "" {
		v, err := apiVersion(d.Address)
		if err == nil {
			d.Version, d.VersionFrom = v, "asked at "+d.Address
			return
		}
		d.VersionErr = append(d.VersionErr, fmt.Sprintf("asking at %s: %v", d.Address, err))
	}
	if d.Exe != "" {
		v, err := exeVersion(d.Exe)
		if err == nil {
			d.Version, d.VersionFrom = v, d.Exe+" --version"
			return
		}
		d.VersionErr = append(d.VersionErr, fmt.Sprintf("%s --version: %v", d.Exe, err))
	}
}

// apiVersion calls containerd's Version RPC through containerd's client package, as rtshim
// reap talks to containerd.
func apiVersion(address string) (string, error) {
	// containerd's dialer waits for a missing socket to appear, until the timeout: look first.
	if st, err := os.Stat(address); err != nil {
		return "", err
	} else if st.Mode().Type() != os.ModeSocket {
		return "", fmt.Errorf("%s is not a socket", address)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	c, err := client.New(address, client.WithTimeout(apiTimeout))
	if err != nil {
		return "", err
	}
	defer c.Close()
	v, err := c.Version(ctx)
	if err != nil {
		return "", err
	}
	if v.Version == "" {
		return "", errors.New("the daemon sent an empty version")
	}
	return v.Version, nil
}

// exeVersion runs a containerd binary with --version: "containerd <package> <version>
// <revision>".
func exeVersion(exe string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, "--version").Output()
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(out))
	if len(f) < 3 || f[0] != "containerd" {
		return "", fmt.Errorf("unexpected output %q", strings.TrimSpace(string(out)))
	}
	return f[2], nil
}

// majorMinor parses a containerd version: v2.4.2, 2.2.9+unknown, 1.6.20~ds1, v2.1.0-rc.1.
func majorMinor(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	n := len(parts[1]) - len(strings.TrimLeft(parts[1], "0123456789"))
	minor, err2 := strconv.Atoi(parts[1][:n])
	return major, minor, err1 == nil && err2 == nil
}

// Supported containerd daemons: the shim's containerd 2.x libraries need 2.0 or newer; the
// newest tested is 2.4.
const (
	minMajor                 = 2
	newestMajor, newestMinor = 2, 4
)

func (e *env) containerdVersion() Finding {
	f := Finding{ID: "containerd.version", Title: "containerd version"}
	f.Why = "containerd-shim-rt-v2 is built with containerd's 2.x shim libraries: containerd 2.0 and newer start it; " +
		"containerd 1.x (Debian 12's containerd package is 1.6, Docker 28 and older bundle 1.7) does not speak its " +
		"shim protocol (version 3), and every container of the runtime fails with \"failed to start shim: start " +
		"failed: dial unix ...{\"version\":3,...}: connect: invalid argument\"."
	subjects := e.targets
	if len(subjects) == 0 {
		exe := lookPath(e.h.PATH, "containerd")
		if exe == "" {
			f.Severity = Info
			f.Saw = "no containerd running and none on PATH (" + e.h.PATH + ")"
			f.Fix = "The shim needs containerd 2.0 or newer; runc-rt (Docker path runtimes, Podman) does not need containerd."
			return f
		}
		d := &daemon{Exe: exe, OnPath: true}
		if v, err := exeVersion(exe); err == nil {
			d.Version, d.VersionFrom = v, exe+" --version"
		} else {
			d.VersionErr = []string{fmt.Sprintf("%s --version: %v", exe, err)}
		}
		subjects = []*daemon{d}
	}
	var saw []string
	worst := OK
	raise := func(s Severity) {
		if rank(s) > rank(worst) {
			worst = s
		}
	}
	old := false
	for _, d := range subjects {
		who := d.describe()
		major, minor, ok := majorMinor(d.Version)
		switch {
		case d.Version == "":
			saw = append(saw, who+": version unknown: "+strings.Join(d.VersionErr, "; "))
			if e.h.Address != "" {
				raise(Fail)
			} else {
				raise(Warn)
			}
		case !ok:
			saw = append(saw, fmt.Sprintf("%s: version %q (%s) not understood", who, d.Version, d.VersionFrom))
			raise(Warn)
		case major < minMajor:
			saw = append(saw, fmt.Sprintf("%s: %s (%s), older than 2.0: it cannot start the shim", who, d.Version, d.VersionFrom))
			raise(Fail)
			old = true
		case major > newestMajor || major == newestMajor && minor > newestMinor:
			saw = append(saw, fmt.Sprintf("%s: %s (%s), newer than the newest tested (%d.%d)", who, d.Version, d.VersionFrom, newestMajor, newestMinor))
			raise(Info)
		default:
			saw = append(saw, fmt.Sprintf("%s: %s (%s)", who, d.Version, d.VersionFrom))
		}
	}
	if e.h.Address != "" {
		for _, d := range e.daemons {
			if d != subjects[0] {
				saw = append(saw, "also running, not checked: "+d.describe())
			}
		}
	}
	f.Severity, f.Saw = worst, strings.Join(saw, "; ")
	switch {
	case old:
		f.Fix = "Run containerd 2.0 or newer (2.0-2.4 are tested) and restart it: a containerd 2.x release, or " +
			"make tools, which builds containerd 2.4.2 into _output/tools/bin. If an old daemon does not run your RT " +
			"containers (Docker's own containerd, say), leave it and check the one that does: rtshim doctor --address <its socket>."
	case worst == Fail:
		f.Fix = "Check the socket named with --address (containerd's [grpc] address; the default is " +
			"/run/containerd/containerd.sock) and that containerd runs; run rtshim doctor as root."
	case worst == Warn:
		f.Fix = "Run rtshim doctor as root on the host (a daemon's socket and /proc/<pid>/exe need it), or name the " +
			"daemon's socket with --address."
	case worst == Info:
		f.Fix = "Nothing needed if RT containers start; containerd releases after 2.4 are not tested yet."
	}
	return f
}

func rank(s Severity) int {
	switch s {
	case Info:
		return 1
	case Warn:
		return 2
	case Fail:
		return 3
	}
	return 0
}
