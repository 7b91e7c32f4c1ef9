package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// containerdExe is the containerd binary: the running daemon's (what it actually resolves
// shims against), else the first on PATH. pid is 0 when no daemon runs.
func (e *env) containerdExe() (exe string, pid int) {
	for _, p := range e.procs["containerd"] {
		target, err := os.Readlink(filepath.Join(e.h.ProcRoot, strconv.Itoa(p), "exe"))
		if err == nil {
			return strings.TrimSuffix(target, " (deleted)"), p
		}
	}
	return lookPath(e.h.PATH, "containerd"), 0
}

// resolveShim looks containerd-shim-rt-v2 up as containerd does (core/runtime/v2
// shim_manager.go): on containerd's PATH first (the running daemon's own PATH when it can be
// read), then next to the containerd binary. found is the path and how it was found, or why
// nothing was; where describes the daemon and PATH used.
func (e *env) resolveShim() (found, where string) {
	exe, pid := e.containerdExe()
	pathList, pathName := e.h.PATH, "PATH"
	switch {
	case pid > 0:
		where = fmt.Sprintf("containerd: running as pid %d from %s", pid, exe)
		if n := len(e.procs["containerd"]); n > 1 {
			where += fmt.Sprintf(" (the first of %d containerd daemons)", n)
		}
		if p, ok := e.containerdEnvOK("PATH"); ok {
			pathList, pathName = p, "containerd's PATH"
		}
	case exe != "":
		where = "containerd: not running; on PATH at " + exe
	default:
		where = "containerd: not running and not on PATH"
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
	// runtime table names the binary by path.
	if byName || len(saw)+len(missing) == 0 {
		if found, where := e.resolveShim(); strings.HasPrefix(found, "/") {
			saw = append(saw, where+"; "+runtimeRT+" resolves to "+found)
		} else {
			missing = append(missing, where+"; "+found)
		}
	}
	f.Saw = strings.Join(append(missing, saw...), "; ")
	if len(missing) == 0 {
		f.Severity = OK
		return f
	}
	f.Severity = Fail
	dir, where := "/usr/local/bin", "on containerd's PATH"
	if exe, _ := e.containerdExe(); exe != "" {
		dir, where = filepath.Dir(exe), "next to containerd"
	}
	f.Fix = fmt.Sprintf("Build and install the shim (%s): make build && install -m 755 _output/bin/%s %s/ "+
		"(or point runtime_path at it). containerd searches its own PATH, which may differ from this shell's.",
		where, shimBinary, dir)
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
