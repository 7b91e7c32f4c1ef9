package cgroupfix

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeCPU is a cgroup v1 cpu hierarchy that enforces the kernel's RT group scheduling rules
// (Documentation/scheduler/sched-rt-group.rst, tg_rt_schedulable()): a group's ratio may not
// exceed the global one, children's ratios must fit in their parent's (EINVAL), a group with RT
// tasks may not drop to 0 (EBUSY), and a cgroup with children or tasks cannot be removed.
type fakeCPU struct {
	t      *testing.T
	mu     sync.Mutex
	groups map[string]*fakeGroup
	writes []string // "cgroup file=value", in order
	reads  int      // ReadFile calls
	// failWrite makes the next write of "cgroup file" fail with the given errno, failAlways
	// every write but of 0 (a kernel that keeps refusing a budget, rather than a removed
	// child's budget that lingers for an RCU grace period).
	failWrite, failAlways map[string]error
}

type fakeGroup struct {
	runtime, period int64
	quota           string
	procs           string
	rtTasks         bool
}

func newFakeCPU(t *testing.T) *fakeCPU {
	return &fakeCPU{t: t, failWrite: map[string]error{}, failAlways: map[string]error{}, groups: map[string]*fakeGroup{
		"/": {runtime: 950000, period: 1000000, quota: "-1"},
	}}
}

func (f *fakeCPU) get(cg string) (*fakeGroup, error) {
	g, ok := f.groups[path.Clean(cg)]
	if !ok {
		return nil, os.ErrNotExist
	}
	return g, nil
}

func (f *fakeCPU) ReadFile(cg, file string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	g, err := f.get(cg)
	if err != nil {
		return "", err
	}
	switch file {
	case fileRTRuntime:
		return strconv.FormatInt(g.runtime, 10), nil
	case fileRTPeriod:
		return strconv.FormatInt(g.period, 10), nil
	case fileQuotaV1:
		return g.quota, nil
	case "cgroup.procs":
		return g.procs, nil
	}
	return "", os.ErrNotExist
}

func (f *fakeCPU) WriteFile(cg, file, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cg = path.Clean(cg)
	if cg == "/" {
		f.t.Errorf("wrote %s=%s of the root cgroup: host-global settings must never change", file, value)
		return unix.EPERM
	}
	if err := f.failAlways[cg+" "+file]; err != nil && value != "0" {
		return err
	}
	if err := f.failWrite[cg+" "+file]; err != nil {
		delete(f.failWrite, cg+" "+file)
		return err
	}
	g, err := f.get(cg)
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil && file != fileQuotaV1 {
		return unix.EINVAL
	}
	switch file {
	case fileRTRuntime, fileRTPeriod:
		old := *g
		if file == fileRTRuntime {
			if v == 0 && g.rtTasks {
				return unix.EBUSY
			}
			g.runtime = v
		} else {
			g.period = v
		}
		if err := f.schedulable(); err != nil {
			*g = old
			return err
		}
	case fileQuotaV1:
		g.quota = value
	default:
		return os.ErrNotExist
	}
	f.writes = append(f.writes, fmt.Sprintf("%s %s=%s", cg, file, value))
	return nil
}

// schedulable is tg_rt_schedulable() for every group.
func (f *fakeCPU) schedulable() error {
	root := f.groups["/"]
	global := toRatio(root.period, root.runtime)
	for cg, g := range f.groups {
		if g.runtime > g.period {
			return unix.EINVAL
		}
		total := toRatio(g.period, g.runtime)
		if total > global {
			return unix.EINVAL
		}
		sum := int64(0)
		for _, c := range f.children(cg) {
			cgc := f.groups[path.Join(cg, c)]
			sum += toRatio(cgc.period, cgc.runtime)
		}
		if sum > total {
			return unix.EINVAL
		}
	}
	return nil
}

func (f *fakeCPU) children(cg string) []string {
	var out []string
	for p := range f.groups {
		if p != "/" && path.Dir(p) == cg {
			out = append(out, path.Base(p))
		}
	}
	sort.Strings(out)
	return out
}

func (f *fakeCPU) Mkdir(cg string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cg = path.Clean(cg)
	if _, ok := f.groups[cg]; ok {
		return nil
	}
	if _, ok := f.groups[path.Dir(cg)]; !ok {
		return os.ErrNotExist
	}
	f.groups[cg] = &fakeGroup{period: f.groups["/"].period, quota: "-1"}
	return nil
}

func (f *fakeCPU) Rmdir(cg string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cg = path.Clean(cg)
	g, err := f.get(cg)
	if err != nil {
		return err
	}
	if g.procs != "" || len(f.children(cg)) > 0 {
		return unix.EBUSY
	}
	delete(f.groups, cg)
	return nil
}

func (f *fakeCPU) Children(cg string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(cg); err != nil {
		return nil, err
	}
	return f.children(path.Clean(cg)), nil
}

func (f *fakeCPU) Exists(cg string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.get(cg)
	return err == nil
}

// add creates a cgroup (and its parents) with a runtime, as another program would.
func (f *fakeCPU) add(cg string, runtime int64) {
	f.t.Helper()
	parts := strings.Split(strings.Trim(cg, "/"), "/")
	for i := range parts {
		if err := f.Mkdir("/" + strings.Join(parts[:i+1], "/")); err != nil {
			f.t.Fatal(err)
		}
	}
	if runtime > 0 {
		if err := f.WriteFile(cg, fileRTRuntime, strconv.FormatInt(runtime, 10)); err != nil {
			f.t.Fatalf("set up %s with runtime %d: %v", cg, runtime, err)
		}
	}
	f.writes = nil
}

// snapshot is every cgroup with its runtime and quota, for before/after comparisons.
func (f *fakeCPU) snapshot() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for cg, g := range f.groups {
		lines = append(lines, fmt.Sprintf("%s rt=%d/%d quota=%s", cg, g.runtime, g.period, g.quota))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (f *fakeCPU) runtime(cg string) int64 {
	f.t.Helper()
	g, err := f.get(cg)
	if err != nil {
		f.t.Fatalf("cgroup %s: %v", cg, err)
	}
	return g.runtime
}
