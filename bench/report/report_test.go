package report

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeSVG(w io.Writer) error {
	_, err := io.WriteString(w, `<svg xmlns="http://www.w3.org/2000/svg"/>`)
	return err
}

func TestAssemble(t *testing.T) {
	in, docs := t.TempDir(), t.TempDir()
	// Saved out of order: the page orders sections by name.
	second := &Section{Name: "20-latency"}
	second.Printf("## Latency\n\ntext\n\n")
	if err := second.Plot("idle", "idle histogram", writeSVG); err != nil {
		t.Fatal(err)
	}
	second.Goal(Goal{Figure: "rt p99 | contention", Measured: "30 µs", Goal: "≤ 40 µs", Verdict: "PASS"})
	first := &Section{Name: "10-lifecycle"}
	first.Printf("## Lifecycle\n")
	first.Goal(Goal{Figure: "rt/runc", Measured: "1.2", Goal: "≤ 1.05", Verdict: "MISS"})
	for _, s := range []*Section{second, first} {
		if err := s.Save(in); err != nil {
			t.Fatal(err)
		}
	}
	// A figure of an earlier run that this one did not make must go.
	out := filepath.Join(docs, "benchmarks.md")
	if err := os.MkdirAll(filepath.Join(docs, "benchmarks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docs, "benchmarks", "stale.svg"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	err := Assemble(in, out, Options{Command: "make bench", Note: "busy host", Host: []string{"CPUs: 2 × x"},
		Now: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{
		"| generated | 2026-01-02 03:04 UTC |",
		"| command | `make bench` |",
		"| CPUs | 2 × x |",
		"> **Note:** busy host",
		"| rt/runc | 1.2 | ≤ 1.05 | **MISS** |",
		`| rt p99 \| contention | 30 µs | ≤ 40 µs | **PASS** |`,
		"![idle histogram](benchmarks/20-latency-idle.svg)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Index(page, "## Lifecycle") > strings.Index(page, "## Latency") {
		t.Error("sections out of name order")
	}
	if strings.Index(page, "| rt/runc |") > strings.Index(page, "| rt p99") {
		t.Error("goals out of section order")
	}
	if strings.Contains(page, PlotsDir) || !strings.HasSuffix(page, "20-latency-idle.svg)\n") {
		t.Errorf("placeholder left or bad ending:\n%q", page)
	}
	ents, _ := os.ReadDir(filepath.Join(docs, "benchmarks"))
	if len(ents) != 1 || ents[0].Name() != "20-latency-idle.svg" {
		t.Errorf("figures: %v, want only 20-latency-idle.svg", ents)
	}
}

func TestAssembleErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Assemble(dir, filepath.Join(dir, "page.md"), Options{}); err == nil {
		t.Error("no sections: want an error")
	}
	s := &Section{Name: "x"}
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := Assemble(dir, filepath.Join(dir, "page.html"), Options{}); err == nil {
		t.Error("a page that is not .md: want an error")
	}
	if err := os.WriteFile(filepath.Join(dir, "x.goals.tsv"), []byte("a\tb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Assemble(dir, filepath.Join(t.TempDir(), "page.md"), Options{}); err == nil {
		t.Error("a malformed goals file: want an error")
	}
	bad := &Section{Name: "y"}
	bad.Goal(Goal{Figure: "tab\there"})
	if err := bad.Save(dir); err == nil {
		t.Error("a tab in a goal: want an error")
	}
	if err := (&Section{Name: "../z"}).Save(dir); err == nil {
		t.Error("a path as section name: want an error")
	}
}

func TestHostInfo(t *testing.T) {
	root := t.TempDir()
	for path, content := range map[string]string{
		"proc/sys/kernel/osrelease":           "6.18.0-rt\n",
		"proc/sys/kernel/version":             "#1 SMP PREEMPT_RT\n",
		"proc/sys/kernel/sched_rt_runtime_us": "950000\n",
		"proc/sys/kernel/sched_rt_period_us":  "1000000\n",
		"proc/cpuinfo":                        "processor\t: 0\nmodel name\t: Test CPU\n",
		"proc/loadavg":                        "1.50 2.00 3.00 2/100 42\n",
		"sys/fs/cgroup/cpu/cpu.rt_runtime_us": "950000\n",
	} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(HostInfo(filepath.Join(root, "proc"), filepath.Join(root, "sys")), "\n")
	for _, want := range []string{"Linux 6.18.0-rt (#1 SMP PREEMPT_RT), PREEMPT_RT", "Test CPU",
		"cgroup v1 with RT group scheduling (root cpu.rt_runtime_us 950000); sched_rt_runtime_us 950000 of sched_rt_period_us 1000000",
		"1.50, 2.00, 3.00"} {
		if !strings.Contains(got, want) {
			t.Errorf("HostInfo lacks %q:\n%s", want, got)
		}
	}
}
