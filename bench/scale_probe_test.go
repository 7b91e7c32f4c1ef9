//go:build linux

package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// scaleProbes is how many containers BenchmarkScale creates and deletes one by one at each
// size, to time the shim's grant and release there.
const scaleProbes = 20

// probeSettle is how long the probes wait for the host to settle after a burst of creates.
const probeSettle = 3 * time.Second

// probeTimes are the grant and release times (ms, the shim's own took=, the wait for the
// host-wide lock included) of one size's probes, and the part of each that was the kernel's
// RT writes.
type probeTimes struct {
	running        int // rt shim containers running meanwhile
	grant, release shimOps
}

// shimOps are the shim's grants or releases, from its log lines: took= (ms) and, at debug
// level, rt_write_time= (ms; the kernel's RT writes, see cgroupfix.Cost) and rt_writes=.
type shimOps struct{ took, rt, writes []float64 }

// probeAt creates and deletes scaleProbes rt shim containers one after the other, while
// running others run, and reads what their grants and releases took from the daemon's log.
func probeAt(b *testing.B, d *harness.Daemon, stage string, running int, ann map[string]string) probeTimes {
	b.Helper()
	p := probeTimes{running: running}
	time.Sleep(probeSettle)
	ids := make(map[string]bool)
	for k := range scaleProbes {
		id := fmt.Sprintf("probe-%s-%d", stage, k)
		ids[id] = true
		if _, _, err := d.Run(b, harness.RunOpts{ID: id, Runtime: harness.RTRuntime, Annotations: ann, Detach: true,
			Args: []string{"/bin/schedinfo", "-sleep", "3600"}}); err != nil {
			b.Fatalf("probe %s: %v", id, err)
		}
		if err := d.RemoveErr(id); err != nil {
			b.Fatalf("probe %s: %v", id, err)
		}
	}
	log, err := os.ReadFile(d.LogPath())
	if err != nil {
		b.Fatal(err)
	}
	p.grant, p.release = shimTook(string(log), d.Namespace, ids)
	if len(p.grant.took) != scaleProbes || len(p.release.took) != scaleProbes ||
		len(p.grant.rt) != scaleProbes || len(p.release.rt) != scaleProbes {
		b.Fatalf("the daemon's log has %d grant and %d release times (took=), %d and %d RT write times (rt_write_time=) "+
			"of %d probes at %d running", len(p.grant.took), len(p.release.took), len(p.grant.rt), len(p.release.rt), scaleProbes, running)
	}
	return p
}

// shimTook finds, in a containerd log, the took=, rt_write_time= and rt_writes= of the shim's
// "granted real-time resources" and "released real-time resources" lines of containers ids
// (of namespace ns).
func shimTook(log, ns string, ids map[string]bool) (grant, release shimOps) {
	for _, line := range strings.Split(log, "\n") {
		var ops *shimOps
		switch {
		case strings.Contains(line, `msg="granted real-time resources"`):
			ops = &grant
		case strings.Contains(line, `msg="released real-time resources"`):
			ops = &release
		default:
			continue
		}
		cg := strings.TrimPrefix(logField(line, "cgroup"), "/"+ns+"/")
		took, err := time.ParseDuration(logField(line, "took"))
		if !ids[cg] || err != nil {
			continue
		}
		ops.took = append(ops.took, ms(took))
		if rt, err := time.ParseDuration(logField(line, "rt_write_time")); err == nil {
			n, _ := strconv.Atoi(logField(line, "rt_writes"))
			ops.rt, ops.writes = append(ops.rt, ms(rt)), append(ops.writes, float64(n))
		}
	}
	return grant, release
}

// rest is took less the kernel's RT writes, op by op (ms).
func (o shimOps) rest() []float64 {
	out := make([]float64, len(o.took))
	for i := range o.took {
		out[i] = o.took[i]
		if i < len(o.rt) {
			out[i] -= o.rt[i]
		}
	}
	return out
}

// logField is the value of key=value in a logfmt line ("" if absent); values here have no spaces.
func logField(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return strings.Trim(v, `"`)
}

func TestShimTook(t *testing.T) {
	log := `time="x" level=info msg="granted real-time resources" cgroup=/bench/probe-10-0 lock_wait=3µs mode=apply rt_write_time=500µs rt_writes=2 took=1.5ms
time="x" level=info msg="granted real-time resources" cgroup=/bench/other took=9ms
time="x" level=info msg="released real-time resources" cgroup=/bench/probe-10-0 id=probe-10-0 took=750µs
time="x" level=info msg="released real-time resources" cgroup=/bench/probe-10-0 id=probe-10-0 runtime=io.containerd.rt.v2`
	g, r := shimTook(log, "bench", map[string]bool{"probe-10-0": true})
	if got := fmt.Sprint(g, r, g.rest()); got != "{[1.5] [0.5] [2]} {[0.75] [] []} [1]" {
		t.Errorf("grant, release, grant less RT writes: %s", got)
	}
}

// shimCleanup finds, in a containerd log, how long containerd's cleanup after each shim's exit
// took (ms) for the containers whose ids match: from "cleaning up dead shim" to the end of
// the shim binary's `delete` ("warnings while cleaning up dead shim", which a shim at debug
// level always has). A task's delete waits for it.
func shimCleanup(log string, match func(id string) bool) []float64 {
	start := make(map[string]time.Time)
	var out []float64
	for _, line := range strings.Split(log, "\n") {
		begin := strings.Contains(line, `msg="cleaning up dead shim"`)
		if !begin && !strings.Contains(line, `msg="warnings while cleaning up dead shim"`) {
			continue
		}
		id := logField(line, "id")
		at, err := time.Parse(time.RFC3339Nano, strings.Trim(strings.TrimPrefix(strings.SplitN(line, " ", 2)[0], "time="), `"`))
		if !match(id) || err != nil {
			continue
		}
		if begin {
			start[id] = at
		} else if t0, ok := start[id]; ok {
			out = append(out, ms(at.Sub(t0)))
			delete(start, id)
		}
	}
	return out
}

func TestShimCleanup(t *testing.T) {
	log := `time="2026-12-01T16:37:50.344022782Z" level=info msg="cleaning up dead shim" id=rt-200 namespace=x
time="2026-12-01T16:37:50.392066574Z" level=info msg="cleaning up dead shim" id=runc-200 namespace=x
time="2026-12-01T16:37:50.469022782Z" level=warning msg="warnings while cleaning up dead shim" id=rt-200 namespace=x warnings="y"
time="2026-12-01T16:37:50.568866574Z" level=warning msg="warnings while cleaning up dead shim" id=runc-200 namespace=x warnings="y"`
	got := shimCleanup(log, func(id string) bool { return strings.HasPrefix(id, "rt-") })
	if fmt.Sprint(got) != "[125]" {
		t.Errorf("rt cleanups %v, want [125]", got)
	}
}

func TestFlatMiss(t *testing.T) {
	at10 := shimOps{took: []float64{1}, rt: []float64{0.1}, writes: []float64{2}}
	kernel := flatMiss("grant", at10, shimOps{took: []float64{2}, rt: []float64{0.9}, writes: []float64{2}}, 10, 400)
	rest := flatMiss("grant", at10, shimOps{took: []float64{2}, rt: []float64{0.2}, writes: []float64{2}}, 10, 400)
	if !strings.Contains(kernel, "writes alone grew by 0.80 ms, more than the 0.20 ms") || !strings.Contains(kernel, "cannot be met") {
		t.Errorf("kernel growth over the allowance: %s", kernel)
	}
	if !strings.Contains(rest, "grew by 0.10 ms, within the 0.20 ms") || !strings.Contains(rest, "0.90 ms and 1.80 ms (× 2.00)") {
		t.Errorf("growth in the rest: %s", rest)
	}
}
