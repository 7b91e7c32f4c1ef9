package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// resolveShim looks containerd-shim-rt-v2 up as a containerd daemon does (core/runtime/v2
// shim_manager.go): on its PATH first, then next to its binary. d nil means no daemon runs:
// this shell's PATH and the containerd on it stand in. found is the path and how it was
// found, or why nothing was; where describes the daemon and PATH used.
func (e *env) resolveShim(d *daemon) (found, where string) {
	pathList, pathName, exe := e.h.PATH, "PATH", ""
	if d == nil {
		exe = lookPath(e.h.PATH, "containerd")
		where = "containerd: not running and not on PATH"
		if exe != "" {
			where = "containerd: not running; on PATH at " + exe
		}
	} else {
		exe, where = d.Exe, d.describe()
		switch p, ok := d.Env["PATH"]; {
		case ok:
			pathList, pathName = p, "containerd's PATH"
		case d.PID == 0:
			where += "; this shell's PATH stands in"
		default:
			where += ", environment unreadable: this shell's PATH stands in"
		}
	}
	if p := lookPath(pathList, shimBinary); p != "" {
		return p + " (on " + pathName + ")", where
	}
	if exe != "" {
		if p := filepath.Join(filepath.Dir(exe), shimBinary); isExecutable(p) {
			return p + " (next to containerd)", where
		}
	}
	return shimBinary + " is neither on " + pathName + " (" + pathList + ") nor next to containerd", where
}

// shimBinary checks what containerd would run: an RT runtime's absolute runtime_path as it
// is, otherwise containerd-shim-rt-v2 next to the containerd binary, then on PATH.
func (e *env) shimBinary() Finding {
	f := Finding{ID: "shim.binary", Title: "shim binary " + shimBinary}
	f.Why = "containerd starts the shim binary for every container of the runtime; if it cannot find it, every " +
		"container of the runtime fails with \"binary not installed\"."
	var saw, missing []string
	byName := false
	for _, r := range e.runtimes {
		switch {
		case !r.isRT():
		case filepath.IsAbs(r.Path) && isExecutable(r.Path):
			saw = append(saw, fmt.Sprintf("runtime %s: runtime_path %s is executable", r.Name, r.Path))
		case filepath.IsAbs(r.Path):
			missing = append(missing, fmt.Sprintf("runtime %s: runtime_path %s is %s", r.Name, r.Path, notExecutable(r.Path)))
		default:
			byName = true
		}
	}
	// ctr and Docker name the runtime type directly, so the name lookup matters even when no
	// runtime table names the binary by path. Every daemon checked must find it.
	if byName || len(saw)+len(missing) == 0 {
		daemons := e.targets
		if len(daemons) == 0 {
			daemons = []*daemon{nil}
		}
		for _, d := range daemons {
			if found, where := e.resolveShim(d); strings.HasPrefix(found, "/") {
				saw = append(saw, where+"; "+runtimeRT+" resolves to "+found)
			} else {
				missing = append(missing, where+"; "+found)
			}
		}
	}
	f.Saw = strings.Join(append(missing, saw...), "; ")
	if len(missing) == 0 {
		f.Severity = OK
		return f
	}
	f.Severity = Fail
	dir, where := "/usr/local/bin", "on containerd's PATH"
	exe := lookPath(e.h.PATH, "containerd")
	if len(e.targets) > 0 {
		exe = e.targets[0].Exe
	}
	if exe != "" {
		dir, where = filepath.Dir(exe), "next to containerd"
	}
	f.Fix = fmt.Sprintf("Build and install the shim (%s): make build && install -m 755 _output/bin/%s %s/ "+
		"(or point runtime_path at it). containerd searches its own PATH, which may differ from this shell's.",
		where, shimBinary, dir)
	if len(e.targets) > 1 {
		f.Fix += " To check only the containerd that runs your RT containers: rtshim doctor --address <its socket>."
	}
	return f
}

func notExecutable(p string) string {
	st, err := os.Stat(p)
	switch {
	case err != nil:
		return "missing"
	case !st.Mode().IsRegular():
		return "not a regular file"
	}
	return "not executable (chmod 755 it)"
}
