//go:build linux

package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// stopProcesses stops every process whose command line mentions a path under dir (the
// daemon, its shims, runc): SIGTERM, then SIGKILL after 10s. daemon, when known, is our child
// and is reaped by whoever Waits for it.
func stopProcesses(dir string, daemon *os.Process) []error {
	pids := ProcessesUnder(dir)
	if daemon != nil && !slices.Contains(pids, daemon.Pid) && ProcessAlive(daemon.Pid) {
		pids = append(pids, daemon.Pid)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		for _, pid := range pids {
			_ = syscall.Kill(pid, sig)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(pids) > 0 && time.Now().Before(deadline) {
			pids = slices.DeleteFunc(pids, func(pid int) bool { return !ProcessAlive(pid) })
			time.Sleep(20 * time.Millisecond)
		}
		if len(pids) == 0 {
			return nil
		}
	}
	return []error{fmt.Errorf("processes %v of %s survived SIGKILL", pids, dir)}
}

// ProcessesUnder returns the pids (not ours) whose command line mentions a path under dir:
// a daemon's --config, its shims' -address, runc's --log.
func ProcessesUnder(dir string) []int {
	s := dir + "/"
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ProcessAlive reports whether pid exists and is not a zombie.
func ProcessAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may hold spaces and
	// parentheses itself.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
