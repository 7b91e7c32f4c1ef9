//go:build linux

package vmtest

// The host tuning for real (package tuning): a cpuset partition, IRQs, resume latency, in the
// guest's kernel, whose settings are the guest's own to change. The guest has 4 CPUs (make
// test-v2 boots it with RTSHIM_VM_CPUS=4); CPUs 1-3 are tunable, CPU 0 stays the host's.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

const tuningConfig = `[limits]
tunable_cpus = "1-3"
allow_exclusive_cpus = true
allow_irq_tuning = true
allow_cstates = true
`

// hostTuning is every host value the tuning may change, read from the guest's own files.
func hostTuning(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	files, _ := filepath.Glob("/proc/irq/*/smp_affinity_list")
	files = append(files, "/proc/irq/default_smp_affinity")
	lat, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/power/pm_qos_resume_latency_us")
	files = append(files, lat...)
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			out[f] = strings.TrimSpace(string(b))
		}
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.cpus.partition", "cpuset.cpus.effective"} {
		out["/rt/"+f] = harness.ReadCgroup(t, "/rt", f)
	}
	return out
}

func diffTuning(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		if after[k] != v {
			d = append(d, fmt.Sprintf("%s: %q before, %q after", k, v, after[k]))
		}
	}
	sort.Strings(d)
	return d
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func writeFile(t *testing.T, p, v string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(v), 0); err != nil {
		t.Fatalf("write %s=%s: %v", p, v, err)
	}
}

// serialIRQ is the IRQ of the serial console (its row in /proc/interrupts names ttyS0 or serial).
func serialIRQ(t *testing.T) string {
	t.Helper()
	for line := range strings.Lines(readFile(t, "/proc/interrupts")) {
		f := strings.Fields(line)
		if len(f) > 0 && (strings.Contains(line, "ttyS") || strings.Contains(line, "serial")) {
			return strings.TrimSuffix(f[0], ":")
		}
	}
	t.Fatalf("no serial IRQ in /proc/interrupts:\n%s", readFile(t, "/proc/interrupts"))
	return ""
}

// interruptsOn counts IRQ irq's interrupts on cpu (/proc/interrupts' column CPU<cpu>).
func interruptsOn(t *testing.T, irq string, cpu int) int64 {
	t.Helper()
	for line := range strings.Lines(readFile(t, "/proc/interrupts")) {
		f := strings.Fields(line)
		if len(f) > cpu+1 && f[0] == irq+":" {
			n, err := strconv.ParseInt(f[cpu+1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("IRQ %s not in /proc/interrupts", irq)
	return 0
}

// serialLoad makes the serial console interrupt: lines written to it raise its
// transmit-empty interrupt, on whichever CPU the IRQ's affinity lets the kernel deliver it to.
// It returns how many of them CPU cpu took meanwhile.
func serialLoad(t *testing.T, irq string, cpu int) int64 {
	t.Helper()
	tty, err := os.OpenFile("/dev/ttyS0", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	before := interruptsOn(t, irq, cpu)
	for i := range 60 {
		fmt.Fprintf(tty, "vmtest: serial load %02d %s\r\n", i, strings.Repeat(".", 60))
	}
	time.Sleep(500 * time.Millisecond)
	return interruptsOn(t, irq, cpu) - before
}

// shimOf is the PID of the shim serving container id (its command line names the ID).
func shimOf(t *testing.T, id string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		args := strings.Split(string(b), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-rt-v2") && strings.Contains(string(b), "\x00"+id+"\x00") {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	t.Fatalf("no shim for %s", id)
	return 0
}

// TestV2Tuning: exclusive CPUs (a cpuset partition) with a pinned SCHED_DEADLINE policy, IRQs
// off the container's CPUs (the serial console's interrupts stop reaching CPU 2 while it runs,
// and reach it again after), C-states, CRI-O's annotations, overlapping containers, a refused
// conflict naming both containers, a SIGKILLed shim; afterwards the guest's values are
// exactly what they were.
func TestV2Tuning(t *testing.T) {
	d := guest(t)
	if n, _ := os.ReadFile("/sys/devices/system/cpu/online"); strings.TrimSpace(string(n)) != "0-3" {
		t.Fatalf("the tuning test needs 4 CPUs (RTSHIM_VM_CPUS=4), online: %s", n)
	}
	if err := os.MkdirAll("/etc/containerd", 0o755); err != nil {
		t.Fatal(err)
	}
	suite := readFile(t, shimConfig)
	writeFile(t, shimConfig, tuningConfig)
	t.Cleanup(func() { writeFile(t, shimConfig, suite) })

	// Linux 6.1 has no remote partitions: the operator's parent cgroup /rt is a partition root
	// holding the tunable CPUs (docs/tuning.md).
	if err := os.Mkdir(filepath.Join(harness.CgroupRoot, "rt"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := harness.RemoveCgroup(filepath.Join(harness.CgroupRoot, "rt")); err != nil {
			t.Error(err)
		}
	})
	writeFile(t, filepath.Join(harness.CgroupRoot, "rt", "cpuset.cpus"), "1-3")
	writeFile(t, filepath.Join(harness.CgroupRoot, "rt", "cpuset.cpus.partition"), "root")
	if p := harness.ReadCgroup(t, "/rt", "cpuset.cpus.partition"); p != "root" {
		t.Fatalf("/rt partition %q", p)
	}
	// The serial console's IRQ where an unlucky layout (or irqbalance) put it: on CPU 2.
	irq := serialIRQ(t)
	irqFile := "/proc/irq/" + irq + "/smp_affinity_list"
	old := readFile(t, irqFile)
	writeFile(t, irqFile, "2")
	t.Cleanup(func() { _ = os.WriteFile(irqFile, []byte(old), 0) })
	before := hostTuning(t)
	t.Logf("serial IRQ %s, affinity %s; /rt cpus %s", irq, before[irqFile], before["/rt/cpuset.cpus.effective"])

	sleep := []string{"/bin/schedinfo", "-sleep", "600"}
	// Control: a container pinned to CPU 2 without tuning: the serial IRQ keeps hitting CPU 2.
	d.Start(t, harness.RunOpts{ID: "tune-control", Cgroup: "/rt/tune-control", CPUSetCPUs: "2", Args: sleep}, "policy=")
	control := serialLoad(t, irq, 2)
	d.Remove(t, "tune-control")

	// A: CPU 2 exclusive, SCHED_DEADLINE pinned to it, no IRQs, no C-states. Every thread of the
	// paused runc init gets the policy, and the root domain is one CPU now (95% of it for
	// DEADLINE): 5% per thread leaves room for all of them.
	dl := map[string]string{"rtshim.io/policy": "deadline", "rtshim.io/deadline": "runtime=50us,deadline=1ms,period=1ms",
		"rtshim.io/cpus": "2", "rtshim.io/irq-load-balancing": "disable", "rtshim.io/cpu-c-states": "disable"}
	d.Start(t, harness.RunOpts{ID: "tune-a", Cgroup: "/rt/tune-a", Annotations: dl, Args: sleep}, "policy=")
	out, _ := os.ReadFile(d.OutputFile("tune-a"))
	if s := harness.ParseSched(t, string(out)); s["policy"] != "SCHED_DEADLINE" || s["runtime_ns"] != "50000" {
		t.Errorf("pinned DEADLINE container on its own partition: %v", s)
	}
	expectFile(t, filepath.Join(harness.CgroupRoot, "rt/tune-a/cpuset.cpus.partition"), "root")
	expectFile(t, filepath.Join(harness.CgroupRoot, "rt/tune-a/cpuset.cpus.effective"), "2")
	expectFile(t, "/sys/devices/system/cpu/cpu2/power/pm_qos_resume_latency_us", "n/a")
	expectFile(t, irqFile, "0-1,3")
	isolated := serialLoad(t, irq, 2)
	t.Logf("serial IRQ %s interrupts on CPU 2 during a burst of console output: %d with a control container pinned to CPU 2, "+
		"%d with tune-a holding CPU 2 (irq-load-balancing=disable)", irq, control, isolated)
	// x86 moves an IRQ at its next interrupt: one may still land on the old CPU.
	if control < 100 || isolated*100 > control {
		t.Errorf("interrupts on CPU 2: control %d (want >= 100), tuned %d (want under 1%% of it)", control, isolated)
	}

	// B: CRI-O's annotations on CPU 3, shared (its cpuset, not exclusive), overlapping nothing
	// exclusive; C: CPU 2 again, refused, naming tune-a.
	crio := map[string]string{"cpu-c-states.crio.io": "max_latency:20", "irq-load-balancing.crio.io": "true"}
	d.Start(t, harness.RunOpts{ID: "tune-b", Cgroup: "/rt/tune-b", CPUSetCPUs: "3", Annotations: crio, Args: sleep}, "policy=")
	expectFile(t, "/sys/devices/system/cpu/cpu3/power/pm_qos_resume_latency_us", "20")
	expectFile(t, irqFile, "0-1")
	_, _, err := d.Run(t, harness.RunOpts{ID: "tune-c", Cgroup: "/rt/tune-c", Annotations: map[string]string{"rtshim.io/cpus": "2"}, Args: sleep})
	d.Ctr(t, "containers", "delete", "tune-c")
	if err == nil || !strings.Contains(err.Error(), "container v2/tune-c asks for CPUs 2") || !strings.Contains(err.Error(), "container v2/tune-a holds CPUs 2 exclusively") {
		t.Errorf("a second container on tune-a's CPU: %v", err)
	}

	// SIGKILL tune-a's shim: containerd's cleanup (containerd-shim-rt-v2 delete) gives its
	// tuning back; tune-b's stays.
	if err := syscall.Kill(shimOf(t, "tune-a"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "tune-a's tuning given back after its shim was killed", func() bool {
		return readFileQuiet(filepath.Join(harness.StateDir, "tuning", "v2.tune-a.json")) == "" &&
			readFileQuiet("/sys/devices/system/cpu/cpu2/power/pm_qos_resume_latency_us") == before["/sys/devices/system/cpu/cpu2/power/pm_qos_resume_latency_us"]
	})
	_ = d.RemoveErr("tune-a")
	expectFile(t, irqFile, "2") // its baseline: tune-b bans only CPU 3, which it never had
	expectFile(t, "/sys/devices/system/cpu/cpu3/power/pm_qos_resume_latency_us", "20")
	d.Remove(t, "tune-b")

	after := hostTuning(t)
	if diff := diffTuning(before, after); len(diff) > 0 {
		t.Errorf("the guest's values changed:\n  %s", strings.Join(diff, "\n  "))
	}
	back := serialLoad(t, irq, 2)
	t.Logf("serial IRQ %s interrupts on CPU 2 after the tuned containers are gone: %d; values before and after identical "+
		"in %d files (IRQ affinities, default_smp_affinity, pm_qos_resume_latency_us, /rt's cpuset)", irq, back, len(before))
	if back == 0 {
		t.Errorf("the serial IRQ does not reach CPU 2 again after the containers are gone")
	}
	if recs, _ := filepath.Glob(filepath.Join(harness.StateDir, "tuning*", "*")); len(recs) > 0 {
		t.Errorf("tuning records left: %v", recs)
	}
	assertNoResidue(t, "tune-control", "tune-a", "tune-b", "tune-c")
}

func expectFile(t *testing.T, p, want string) {
	t.Helper()
	if got := readFileQuiet(p); got != want {
		t.Errorf("%s = %q, want %q", p, got, want)
	}
}

func readFileQuiet(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(harness.VMTimeouts.Output)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, harness.VMTimeouts.Output)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
