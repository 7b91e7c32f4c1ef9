//go:build linux

package vmtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// vmConfig is how TestVM boots the VM; `make test-v2` sets it in the environment.
type vmConfig struct {
	qemu, kernel, initrd, consoleLog string
	memoryMiB, cpus                  int
	timeout                          time.Duration
	appendArgs                       string
}

func vmConfigFromEnv(t *testing.T) vmConfig {
	t.Helper()
	c := vmConfig{
		qemu:       envOr("RTSHIM_QEMU", "qemu-system-x86_64"),
		kernel:     os.Getenv("RTSHIM_VM_KERNEL"),
		initrd:     os.Getenv("RTSHIM_VM_INITRD"),
		consoleLog: os.Getenv("RTSHIM_VM_CONSOLE_LOG"),
		appendArgs: os.Getenv("RTSHIM_VM_APPEND"),
	}
	if c.kernel == "" || c.initrd == "" {
		t.Skip("boots a VM: run by `make test-v2`, which sets RTSHIM_VM_KERNEL and RTSHIM_VM_INITRD")
	}
	var err error
	if c.memoryMiB, err = strconv.Atoi(envOr("RTSHIM_VM_MEMORY_MIB", "3072")); err != nil {
		t.Fatalf("RTSHIM_VM_MEMORY_MIB: %v", err)
	}
	if c.cpus, err = strconv.Atoi(envOr("RTSHIM_VM_CPUS", "2")); err != nil {
		t.Fatalf("RTSHIM_VM_CPUS: %v", err)
	}
	if c.timeout, err = time.ParseDuration(envOr("RTSHIM_VM_TIMEOUT", "11m")); err != nil {
		t.Fatalf("RTSHIM_VM_TIMEOUT: %v", err)
	}
	for _, f := range []string{c.kernel, c.initrd} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// args is qemu's command line: software emulation (no KVM here), the kernel's serial console
// on stdout, no network, no reboot (a guest panic or poweroff ends qemu).
func (c vmConfig) args() []string {
	cmdline := "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=4 random.trust_cpu=on"
	if c.appendArgs != "" {
		cmdline += " " + c.appendArgs
	}
	return []string{
		"-accel", "tcg,thread=multi", "-cpu", "max",
		"-smp", strconv.Itoa(c.cpus), "-m", strconv.Itoa(c.memoryMiB),
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", c.kernel, "-initrd", c.initrd, "-append", cmdline,
	}
}

// guestTests lists the TestV2 tests of the binary the VM runs (RTSHIM_VM_TEST_BINARY, else
// this one: both are built from this package) that RTSHIM_VM_RUN selects (the initramfs's
// -test.run, make test-v2's VM_RUN), so a test that never reported is a failure.
func guestTests(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(envOr("RTSHIM_VM_TEST_BINARY", os.Args[0]), "-test.list", envOr("RTSHIM_VM_RUN", "^TestV2")).Output()
	if err != nil {
		t.Fatalf("list the guest's tests: %v", err)
	}
	return strings.Fields(string(out))
}

// TestVM boots the cgroup v2 VM, which runs the TestV2 tests, and reports their results as
// its subtests.
func TestVM(t *testing.T) {
	if os.Getenv(envGuest) != "" {
		t.Skip("runs on the host")
	}
	cfg := vmConfigFromEnv(t)

	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cfg.qemu, cfg.args()...)
	// qemu goes with the test binary, whatever kills it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var logFile io.Writer = io.Discard
	if cfg.consoleLog != "" {
		f, err := os.Create(cfg.consoleLog)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		logFile = f
	}

	t.Logf("booting %s: %s %s", cfg.kernel, cfg.qemu, strings.Join(cfg.args(), " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		waited <- err
	}()

	var c console
	var nriLines []string
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := clean(sc.Text())
		fmt.Fprintln(logFile, line)
		fmt.Println(line)
		c.feed(line)
		if rest, ok := strings.CutPrefix(line, nriReport); ok {
			nriLines = append(nriLines, rest)
		}
	}
	if err := sc.Err(); err != nil {
		t.Errorf("read the console: %v", err)
		_, _ = io.Copy(io.Discard, pr) // keep qemu from blocking on a full pipe
	}
	err := <-waited
	elapsed := time.Since(start).Round(100 * time.Millisecond)

	for _, r := range c.results {
		t.Run(r.name, func(t *testing.T) {
			switch r.status {
			case "FAIL":
				t.Errorf("failed in the VM after %s (its output is above)", r.elapsed)
			case "SKIP":
				t.Errorf("skipped in the VM (its reason is above): every check must run there")
			}
		})
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		load, _ := os.ReadFile("/proc/loadavg")
		t.Errorf("the VM did not finish within %v (RTSHIM_VM_TIMEOUT); killed. Host load average: %s"+
			"(software emulation slows down with every runnable task on the host)", cfg.timeout, load)
	case err != nil:
		t.Errorf("qemu: %v", err)
	}
	if p := c.problems(guestTests(t)); len(p) > 0 {
		t.Errorf("the VM run did not pass:\n  %s\nlast console lines:\n%s", strings.Join(p, "\n  "), strings.Join(c.lines, "\n"))
	}
	t.Logf("VM: boot, tests and poweroff took %v", elapsed)
	saveNRIReport(t, c, nriLines)
}

// saveNRIReport writes TestV2NRIRoute's figures to RTSHIM_VM_NRI_REPORT (make test-v2 sets
// it), dated, for BenchmarkNRIRoute to include: only from a run where that test passed, and
// a failed run removes an older file, so the report never shows stale figures as the last.
func saveNRIReport(t *testing.T, c console, lines []string) {
	path := os.Getenv("RTSHIM_VM_NRI_REPORT")
	if path == "" {
		return
	}
	passed := slices.ContainsFunc(c.results, func(r result) bool { return r.name == "TestV2NRIRoute" && r.status == "PASS" })
	if !passed || len(lines) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Error(err)
		}
		return
	}
	out := "date " + time.Now().UTC().Format(time.RFC3339) + "\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Errorf("save the NRI route's figures: %v", err)
	}
}
