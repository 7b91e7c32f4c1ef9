//go:build linux

package bench

import (
	"fmt"
	"os"
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
// host-wide lock included) of one size's probes.
type probeTimes struct {
	running        int // rt shim containers running meanwhile
	grant, release []float64
}

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
	if len(p.grant) != scaleProbes || len(p.release) != scaleProbes {
		b.Fatalf("the daemon's log has %d grant and %d release times (took=) of %d probes at %d running",
			len(p.grant), len(p.release), scaleProbes, running)
	}
	return p
}

// shimTook finds, in a containerd log, the took= of the shim's "granted real-time
// resources" and "released real-time resources" lines of containers ids (of namespace ns).
func shimTook(log, ns string, ids map[string]bool) (grant, release []float64) {
	for _, line := range strings.Split(log, "\n") {
		var list *[]float64
		switch {
		case strings.Contains(line, `msg="granted real-time resources"`):
			list = &grant
		case strings.Contains(line, `msg="released real-time resources"`):
			list = &release
		default:
			continue
		}
		cg := strings.TrimPrefix(logField(line, "cgroup"), "/"+ns+"/")
		took, err := time.ParseDuration(logField(line, "took"))
		if !ids[cg] || err != nil {
			continue
		}
		*list = append(*list, ms(took))
	}
	return grant, release
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
	log := `time="x" level=info msg="granted real-time resources" cgroup=/bench/probe-10-0 mode=apply took=1.5ms
time="x" level=info msg="granted real-time resources" cgroup=/bench/other took=9ms
time="x" level=info msg="released real-time resources" cgroup=/bench/probe-10-0 id=probe-10-0 took=750µs
time="x" level=info msg="released real-time resources" cgroup=/bench/probe-10-0 id=probe-10-0 runtime=io.containerd.rt.v2`
	g, r := shimTook(log, "bench", map[string]bool{"probe-10-0": true})
	if fmt.Sprint(g, r) != "[1.5] [0.75]" {
		t.Errorf("grant %v, release %v", g, r)
	}
}
