package doctor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestGoodHost: the fake good host is ready, and every check ran exactly once, in order.
func TestGoodHost(t *testing.T) {
	f := goodHost(t)
	r := Run(f.h)
	if !r.Ready || r.Counts[Fail] != 0 || r.Counts[Warn] != 0 {
		t.Fatalf("good host not ready: %+v", r)
	}
	want := []string{"cgroup.version", "cgroup.driver", "rt.group-sched", "rt.throttling", "kernel.preempt-rt",
		"cpu.isolation", "irq.balance", "cpu.governor", "cpu.cstates", "cpu.tuning", "containerd.version", "containerd.runtime", "shim.binary",
		"shim.config", "rtshim.orphans"}
	if len(r.Findings) != len(want) {
		t.Fatalf("%d findings, want %d", len(r.Findings), len(want))
	}
	for i, id := range want {
		if r.Findings[i].ID != id {
			t.Errorf("finding %d is %s, want %s", i, r.Findings[i].ID, id)
		}
	}
}

func TestReadyOnlyWithoutFail(t *testing.T) {
	f := goodHost(t)
	f.write("proc/sys/kernel/sched_rt_runtime_us", "-1\n") // a warning only
	if r := Run(f.h); !r.Ready || r.Counts[Warn] != 1 {
		t.Errorf("a warning must not make the host not ready: %+v", r.Counts)
	}
	f.remove("usr/bin/" + shimBinary)
	if r := Run(f.h); r.Ready || r.Counts[Fail] != 1 {
		t.Errorf("a failure must make the host not ready: %+v", r.Counts)
	}
}

// TestJSONShape pins the field names scripts rely on.
func TestJSONShape(t *testing.T) {
	f := goodHost(t)
	f.remove("usr/bin/" + shimBinary)
	var b bytes.Buffer
	if err := Run(f.h).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Ready    *bool          `json:"ready"`
		Counts   map[string]int `json:"counts"`
		Findings []map[string]any
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Ready == nil || *got.Ready || got.Counts["fail"] != 1 || len(got.Counts) != 4 {
		t.Errorf("ready/counts: %s", b.String())
	}
	for _, fd := range got.Findings {
		for _, k := range []string{"id", "title", "severity", "saw", "why"} {
			if s, _ := fd[k].(string); s == "" {
				t.Errorf("finding without %s: %v", k, fd)
			}
		}
		if fd["severity"] == "fail" && fd["fix"] == nil {
			t.Errorf("fail without fix: %v", fd)
		}
	}
}

func TestWriteText(t *testing.T) {
	r := Report{Ready: false, Counts: map[Severity]int{Fail: 1}, Findings: []Finding{{
		ID: "x.y", Title: "X", Severity: Fail, Saw: strings.Repeat("word ", 30),
		Why: "because", Fix: "run " + strings.Repeat("a-long-command ", 10),
	}}}
	var b bytes.Buffer
	if err := r.WriteText(&b, 60); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, "rtshim doctor: NOT READY") || !strings.Contains(out, "[FAIL] x.y: X") {
		t.Errorf("header or label missing:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "word") && len(line) > 60 {
			t.Errorf("saw not wrapped at 60: %q", line)
		}
	}
	if !strings.Contains(out, "fix: run "+strings.TrimSpace(strings.Repeat("a-long-command ", 10))+"\n") {
		t.Errorf("fix must stay on one line so it pastes intact:\n%s", out)
	}
}
