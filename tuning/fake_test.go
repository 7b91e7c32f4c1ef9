package tuning

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/cpulist"
)

// fakeHost is a /proc, /sys and cgroup v2 tree in a temp dir whose writes are checked the way
// the kernel checks them: a per-CPU IRQ refuses a new affinity with EIO, an empty affinity or
// an unknown resume latency or governor is EINVAL, and a cpuset partition whose CPUs a sibling
// lists, or that is not below a partition (without remote partitions), is EINVAL.
type fakeHost struct {
	t            *testing.T
	root, cgroup string
	perCPU       map[int]bool // IRQs the kernel will not move
	remote       bool         // cpuset.cpus.exclusive exists (Linux >= 6.7)
	v1           bool
	mu           sync.Mutex
	writes       []string
}

func newFakeHost(t *testing.T, cpus int) *fakeHost {
	root := t.TempDir()
	f := &fakeHost{t: t, root: filepath.Join(root, "host"), cgroup: filepath.Join(root, "cgroup"), perCPU: map[int]bool{}, remote: true}
	all := cpulist.Of(seq(cpus)...)
	f.file("/sys/devices/system/cpu/online", all.String())
	for c := 0; c < cpus; c++ {
		f.file(cpuPath(c, latencyFile), "0")
		f.file(cpuPath(c, governorFile), "schedutil")
		f.file(cpuPath(c, availableFile), "performance schedutil powersave")
		f.file(cpuPath(c, "topology/thread_siblings_list"), strconv.Itoa(c))
	}
	f.file(irqDefaultPath, all.Mask(cpus))
	for _, n := range []int{0, 9, 24, 25} {
		f.file(fmt.Sprintf("/proc/irq/%d/smp_affinity_list", n), all.String())
	}
	f.perCPU[0] = true             // the timer
	f.file(irqRootFile("25"), "2") // an IRQ pinned to CPU 2 alone
	f.cgroupDir("/")
	return f
}

func irqRootFile(n string) string { return "/proc/irq/" + n + "/smp_affinity_list" }

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func (f *fakeHost) file(p, v string) {
	f.t.Helper()
	full := filepath.Join(f.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(v+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeHost) read(p string) string {
	f.t.Helper()
	v, err := DirFS{Root: f.root}.ReadFile(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// cgroupDir makes a cgroup with the cpuset files a new cgroup has.
func (f *fakeHost) cgroupDir(cg string) {
	f.t.Helper()
	dir := filepath.Join(f.cgroup, cg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	files := map[string]string{"cgroup.procs": ""}
	if f.v1 {
		files["cpuset.cpu_exclusive"], files["cpuset.sched_load_balance"], files["cpuset.cpus"] = "0", "1", ""
	} else {
		files["cpuset.cpus"], files[filePartition] = "", "member"
		if f.remote {
			files[fileExclusive] = ""
		}
	}
	if cg == "/" {
		files[filePartition] = "root"
		if f.v1 {
			files["cpuset.cpu_exclusive"] = "1"
		}
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

// container makes a container's cgroup with its cpuset, as runc does.
func (f *fakeHost) container(cg, cpus string) {
	f.t.Helper()
	parts := strings.Split(strings.Trim(cg, "/"), "/")
	for i := range parts {
		p := "/" + strings.Join(parts[:i+1], "/")
		if _, err := os.Stat(filepath.Join(f.cgroup, p)); err != nil {
			f.cgroupDir(p)
		}
	}
	if err := os.WriteFile(filepath.Join(f.cgroup, cg, "cpuset.cpus"), []byte(cpus+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// setCg writes a cgroup file as the operator would.
func (f *fakeHost) setCg(cg, file, v string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.cgroup, cg, file), []byte(v+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// removeContainer is runc delete: the cgroup goes, and a partition with it.
func (f *fakeHost) removeContainer(cg string) {
	f.t.Helper()
	if err := os.RemoveAll(filepath.Join(f.cgroup, cg)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeHost) cg(cg, file string) string {
	f.t.Helper()
	v, err := cgroupfix.DirFS{Root: f.cgroup}.ReadFile(cg, file)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// snapshot is every file of the fake host and cgroup tree, for before/after comparisons.
func (f *fakeHost) snapshot() string {
	f.t.Helper()
	var lines []string
	for _, dir := range []string{f.root, f.cgroup} {
		_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				b, _ := os.ReadFile(p)
				lines = append(lines, strings.TrimPrefix(p, dir)+"="+strings.TrimSpace(string(b)))
			}
			return nil
		})
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// sys is the fake /proc and /sys with the kernel's checks.
type sys struct{ f *fakeHost }

func (s sys) ReadFile(p string) (string, error)  { return DirFS{Root: s.f.root}.ReadFile(p) }
func (s sys) ReadDir(p string) ([]string, error) { return DirFS{Root: s.f.root}.ReadDir(p) }
func (s sys) WriteFile(p, v string) error {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	v = strings.TrimSpace(v)
	switch {
	case strings.HasSuffix(p, "/smp_affinity_list"):
		n, _ := strconv.Atoi(path.Base(path.Dir(p)))
		if f.perCPU[n] {
			return &os.PathError{Op: "write", Path: p, Err: unix.EIO}
		}
		if set, err := cpulist.Parse(v); err != nil || set.Empty() {
			return &os.PathError{Op: "write", Path: p, Err: unix.EINVAL}
		}
	case p == irqDefaultPath:
		if _, err := cpulist.ParseMask(v); err != nil {
			return &os.PathError{Op: "write", Path: p, Err: unix.EINVAL}
		}
	case strings.HasSuffix(p, latencyFile):
		if n, err := strconv.ParseInt(v, 10, 32); v != "n/a" && (err != nil || n < 0) {
			return &os.PathError{Op: "write", Path: p, Err: unix.EINVAL}
		}
	case strings.HasSuffix(p, governorFile):
		avail, _ := s.ReadFile(path.Join(path.Dir(p), "scaling_available_governors"))
		if !slices.Contains(strings.Fields(avail), v) {
			return &os.PathError{Op: "write", Path: p, Err: unix.EINVAL}
		}
	default:
		f.t.Errorf("wrote %s=%s: not a file tuning may write", p, v)
		return &os.PathError{Op: "write", Path: p, Err: unix.EPERM}
	}
	f.writes = append(f.writes, p+"="+v)
	// The kernel replaces the value; a plain file needs truncating for that.
	return os.WriteFile(filepath.Join(f.root, p), []byte(v+"\n"), 0o644)
}

// cpuset is the fake cgroup hierarchy with the kernel's partition rules.
type cpuset struct {
	cgroupfix.DirFS
	f *fakeHost
}

func (c cpuset) WriteFile(cg, file, v string) error {
	f := c.f
	v = strings.TrimSpace(v)
	errno := func(e error) error { return &os.PathError{Op: "write", Path: cg + "/" + file, Err: e} }
	list := func(cg, file string) cpulist.Set {
		s, _ := c.ReadFile(cg, file)
		set, _ := cpulist.Parse(s)
		return set
	}
	siblings := func() []string {
		names, _ := c.Children(path.Dir(cg))
		var out []string
		for _, n := range names {
			if p := path.Join(path.Dir(cg), n); p != cg {
				out = append(out, p)
			}
		}
		return out
	}
	switch file {
	case fileExclusive:
		set, err := cpulist.Parse(v)
		if err != nil {
			return errno(unix.EINVAL)
		}
		if parent := path.Dir(cg); parent != "/" && !set.SubsetOf(list(parent, fileExclusive)) {
			return errno(unix.EINVAL)
		}
		for _, s := range siblings() {
			if !set.Intersect(list(s, fileExclusive)).Empty() {
				return errno(unix.EINVAL)
			}
		}
	case filePartition:
		if v != "member" {
			mine := list(cg, fileExclusive)
			if mine.Empty() {
				mine = list(cg, "cpuset.cpus")
			}
			if parent := path.Dir(cg); !f.remote && parent != "/" {
				if p, _ := c.ReadFile(parent, filePartition); p != "root" {
					return errno(unix.EINVAL)
				}
			}
			for _, s := range siblings() {
				if !mine.Intersect(list(s, "cpuset.cpus")).Empty() || !mine.Intersect(list(s, fileExclusive)).Empty() {
					return errno(unix.EINVAL) // not exclusive
				}
			}
		}
	case "cpuset.cpu_exclusive":
		if p, _ := c.ReadFile(path.Dir(cg), "cpuset.cpu_exclusive"); v == "1" && p != "1" {
			return errno(unix.EINVAL)
		}
	case "cpuset.sched_load_balance":
	default:
		f.t.Errorf("wrote %s of cgroup %s: not a file tuning may write", file, cg)
		return errno(unix.EPERM)
	}
	if cg == "/" {
		f.t.Errorf("wrote %s=%s of the root cgroup: host-global", file, v)
	}
	f.mu.Lock()
	f.writes = append(f.writes, cg+" "+file+"="+v)
	f.mu.Unlock()
	if !c.Exists(cg) {
		return errno(os.ErrNotExist)
	}
	return os.WriteFile(filepath.Join(f.cgroup, cg, file), []byte(v+"\n"), 0o644)
}

// fakeIrqbalance is a running irqbalance's banned set.
type fakeIrqbalance struct {
	socket string
	banned cpulist.Set
}

func (b *fakeIrqbalance) Socket() string                          { return b.socket }
func (b *fakeIrqbalance) Banned(string) (cpulist.Set, error)      { return b.banned, nil }
func (b *fakeIrqbalance) SetBanned(_ string, s cpulist.Set) error { b.banned = s; return nil }

// manager is a Manager of the fake host, with a live owner (this test process).
func (f *fakeHost) manager() *Manager {
	return &Manager{Sys: sys{f}, Cpuset: cpuset{cgroupfix.DirFS{Root: f.cgroup}, f}, V2: !f.v1,
		State: cgroupfix.State{Dir: filepath.Join(filepath.Dir(f.root), "state")}, ProcRoot: "/proc"}
}
