//go:build linux

package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// soakCycles is how many lifecycles TestSoak runs: $RTSHIM_SOAK_N (make soak N=500), else a
// short run that fits in CI.
func soakCycles(t *testing.T) int {
	if s := os.Getenv("RTSHIM_SOAK_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("RTSHIM_SOAK_N=%q: want a positive number", s)
		}
		return n
	}
	return 40
}

// TestSoak runs many create/start/delete cycles of RT containers (mixed policies and budgets,
// execs into some, bad input in some) and checks the host is exactly as before: every RT
// budget and CFS quota under the cpu hierarchy, the daemon's cgroups, the shims, the claims.
func TestSoak(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	n := soakCycles(t)
	seed := rand.Uint64()
	t.Logf("%d cycles, seed %d", n, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	before := harness.SnapshotCPUTree(t)
	policies := []map[string]string{
		{"rtshim.io/policy": "SCHED_FIFO"},
		{"rtshim.io/policy": "rr", "rtshim.io/priority": "7"},
		{"rtshim.io/policy": "fifo", "rtshim.io/reset-on-fork": "true", "rtshim.io/exec-policy": "rr"},
		{"rtshim.io/policy": "fifo", "rtshim.io/mode": "grant"},
		{"rtshim.io/policy": "deadline", "rtshim.io/deadline": "runtime=100us,deadline=1ms,period=1ms"},
		{"rtshim.io/policy": "batch", "rtshim.io/nice": "3"},
		nil,
	}
	var bad, execs int
	for i := range n {
		id := fmt.Sprintf("soak-%d", i)
		ann := map[string]string{}
		for k, v := range policies[rng.IntN(len(policies))] {
			ann[k] = v
		}
		if p := strings.ToLower(ann["rtshim.io/policy"]); (p == "rr" || p == "sched_fifo" || p == "fifo") && rng.IntN(2) == 0 {
			ann["rtshim.io/rt-runtime-us"] = strconv.Itoa(1000 * (1 + rng.IntN(200)))
		}
		switch {
		case i%10 == 9: // bad input: refused, nothing left
			bad++
			ann["rtshim.io/priority"] = []string{"0", "100", "x", "", "99999999999999999999"}[rng.IntN(5)]
			ann["rtshim.io/policy"] = "fifo"
			if _, _, err := d.Run(t, harness.RunOpts{ID: id, Annotations: ann, Args: []string{"/bin/true"}}); err == nil ||
				!strings.Contains(err.Error(), "invalid argument") {
				t.Fatalf("cycle %d: bad priority %q: want invalid argument, got %v", i, ann["rtshim.io/priority"], err)
			}
			d.Ctr(t, "containers", "delete", id)
		case rng.IntN(3) == 0: // detached, exec into it, delete
			execs++
			d.Start(t, harness.RunOpts{ID: id, Annotations: ann, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=")
			d.MustCtr(t, "tasks", "exec", "--exec-id", "x", id, "/bin/schedinfo")
			d.Remove(t, id)
		default:
			d.MustRun(t, harness.RunOpts{ID: id, Annotations: ann, Args: []string{"/bin/schedinfo"}})
		}
	}
	t.Logf("%d cycles: %d with bad input, %d with an exec", n, bad, execs)
	d.AssertRestored(t, before)
	if dirs, err := harness.CgroupTree(d.CgroupPath("")); err != nil || len(dirs) > 10 {
		// Only the namespace's own cgroup (one per hierarchy) may remain, as with runc.
		t.Errorf("cgroups left: %v %v", dirs, err)
	}
	for i := range n {
		if pid := d.FindShim(fmt.Sprintf("soak-%d", i)); pid != 0 {
			t.Errorf("shim of soak-%d still runs: pid %d", i, pid)
		}
	}
}
