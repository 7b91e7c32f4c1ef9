package cgroupfix

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeV2 is a cgroup v2 unified hierarchy: directories with cpu.max and cgroup.procs.
type fakeV2 struct {
	mu     sync.Mutex
	groups map[string]map[string]string
}

func newFakeV2(cgroups ...string) *fakeV2 {
	f := &fakeV2{groups: map[string]map[string]string{"/": {"cgroup.procs": "1"}}}
	for _, cg := range cgroups {
		for _, a := range append(Ancestors(cg), cg) {
			f.Mkdir(a)
		}
	}
	return f
}

func (f *fakeV2) ReadFile(cg, file string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.groups[path.Clean(cg)][file]
	if !ok {
		return "", os.ErrNotExist
	}
	return v, nil
}

func (f *fakeV2) WriteFile(cg, file, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.groups[path.Clean(cg)]
	if !ok || file != fileCPUMax || cg == "/" {
		return os.ErrNotExist
	}
	// The kernel keeps the period when only the quota is written.
	quota, period, _ := strings.Cut(value, " ")
	if period == "" {
		_, period, _ = strings.Cut(g[file], " ")
	}
	g[file] = quota + " " + period
	return nil
}

func (f *fakeV2) Mkdir(cg string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.groups[path.Clean(cg)]; !ok {
		f.groups[path.Clean(cg)] = map[string]string{fileCPUMax: "max 100000", "cgroup.procs": ""}
	}
	return nil
}

func (f *fakeV2) Rmdir(cg string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.groups, path.Clean(cg))
	return nil
}

func (f *fakeV2) Children(cg string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for p := range f.groups {
		if p != "/" && path.Dir(p) == path.Clean(cg) {
			out = append(out, path.Base(p))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (f *fakeV2) Exists(cg string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.groups[path.Clean(cg)]
	return ok
}

func (f *fakeV2) cpuMax(t *testing.T, cg string) string {
	t.Helper()
	v, err := f.ReadFile(cg, fileCPUMax)
	if err != nil {
		t.Fatalf("cpu.max of %s: %v", cg, err)
	}
	return v
}

func TestParseProcCgroupV2(t *testing.T) {
	for _, tc := range []struct{ name, in, want, err string }{
		{"cgroupfs", "0::/k8s/pod1/abc\n", "/k8s/pod1/abc", ""},
		{"systemd scope", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope\n",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope", ""},
		{"hybrid host: the v2 line", "12:cpu,cpuacct:/default/c1\n1:name=systemd:/default/c1\n0::/default/c1\n", "/default/c1", ""},
		{"v1 only", "4:cpu,cpuacct:/default/c1\n", "", "no cgroup v2 line"},
		{"outside the cgroup namespace", "0::/../../other/c1\n", "", "not below"},
		{"root cgroup", "0::/\n", "", "root cgroup"},
		{"empty", "", "", "no cgroup v2 line"},
		{"not clean", "0::/a//b\n", "", "not below"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcCgroupV2(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want an error about %q, got %q, %v", tc.err, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestProcCgroupMatchesResolvePath: for both cgroup drivers, the path the shim resolves from
// linux.cgroupsPath before create is the one the kernel reports for the container's init
// after create, so LocateV2 normally has nothing to do.
func TestProcCgroupMatchesResolvePath(t *testing.T) {
	for _, tc := range []struct {
		cgroupsPath, procLine string
		systemd               bool
	}{
		{"/k8s.io/abc", "0::/k8s.io/abc", false},
		{"/kubepods/burstable/pod1/abc", "0::/kubepods/burstable/pod1/abc", false},
		{"kubepods-burstable-pod1.slice:cri-containerd:abc",
			"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope", true},
		{"system.slice:docker:abc", "0::/system.slice/docker-abc.scope", true},
	} {
		proc := t.TempDir()
		os.MkdirAll(filepath.Join(proc, "42"), 0o755)
		os.WriteFile(filepath.Join(proc, "42", "cgroup"), []byte(tc.procLine+"\n"), 0o644)
		got, err := ProcCgroupV2(proc, 42)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ResolvePath(tc.cgroupsPath, !strings.HasPrefix(tc.cgroupsPath, "/"))
		if err != nil || got != want {
			t.Errorf("%s: /proc says %q, ResolvePath says %q (%v)", tc.cgroupsPath, got, want, err)
		}
	}
	if _, err := ProcCgroupV2(t.TempDir(), 42); err == nil || !strings.Contains(err.Error(), "process 42") {
		t.Errorf("missing process: %v", err)
	}
}

func TestLocateV2(t *testing.T) {
	ctx := context.Background()
	const guessed, real = "/pods/guess/c1", "/pods/real/c1"
	setup := func(t *testing.T) (*Manager, *fakeV2) {
		f := newFakeV2(guessed, real)
		for _, pod := range []string{"/pods/guess", "/pods/real"} {
			f.WriteFile(pod, fileCPUMax, "50000 100000")
		}
		m := &Manager{CPU: f, V2: true, State: State{Dir: t.TempDir()}, ProcRoot: "/proc"}
		c := &Claim{Namespace: "ns", ID: "c1", Leaf: guessed, Pod: path.Dir(guessed), ExemptQuota: true, Owner: self()}
		if err := m.Grant(ctx, c); err != nil {
			t.Fatal(err)
		}
		if got := f.cpuMax(t, "/pods/guess"); got != "max 100000" {
			t.Fatalf("guessed pod not exempt after Grant: %s", got)
		}
		return m, f
	}

	t.Run("same cgroup", func(t *testing.T) {
		m, f := setup(t)
		moved, err := m.LocateV2(ctx, "ns", "c1", guessed)
		if err != nil || moved {
			t.Fatalf("LocateV2 = %v, %v; want nothing to do", moved, err)
		}
		if got := f.cpuMax(t, "/pods/guess"); got != "max 100000" {
			t.Errorf("pod cpu.max %s", got)
		}
	})
	t.Run("elsewhere: the exemption follows", func(t *testing.T) {
		m, f := setup(t)
		moved, err := m.LocateV2(ctx, "ns", "c1", real)
		if err != nil || !moved {
			t.Fatalf("LocateV2 = %v, %v; want moved", moved, err)
		}
		if got := f.cpuMax(t, "/pods/guess"); got != "50000 100000" {
			t.Errorf("guessed pod not restored: %s", got)
		}
		if got := f.cpuMax(t, "/pods/real"); got != "max 100000" {
			t.Errorf("real pod not exempt: %s", got)
		}
		c, err := m.State.LoadClaim("ns", "c1")
		if err != nil || c.Leaf != real || c.Pod != "/pods/real" {
			t.Fatalf("claim %+v, %v", c, err)
		}
		if err := m.Release(ctx, "ns", "c1"); err != nil {
			t.Fatal(err)
		}
		if got := f.cpuMax(t, "/pods/real"); got != "50000 100000" {
			t.Errorf("real pod not restored after Release: %s", got)
		}
		assertNoState(t, m)
	})
	t.Run("no claim", func(t *testing.T) {
		m := &Manager{CPU: newFakeV2(), V2: true, State: State{Dir: t.TempDir()}, ProcRoot: "/proc"}
		if moved, err := m.LocateV2(ctx, "ns", "none", real); err != nil || moved {
			t.Errorf("LocateV2 = %v, %v", moved, err)
		}
	})
	t.Run("not a pod container", func(t *testing.T) {
		f := newFakeV2(guessed, real)
		m := &Manager{CPU: f, V2: true, State: State{Dir: t.TempDir()}, ProcRoot: "/proc"}
		if err := m.Grant(ctx, &Claim{Namespace: "ns", ID: "c1", Leaf: guessed, ExemptQuota: true, Owner: self()}); err != nil {
			t.Fatal(err)
		}
		if moved, err := m.LocateV2(ctx, "ns", "c1", real); err != nil || !moved {
			t.Fatalf("LocateV2 = %v, %v", moved, err)
		}
		if c, _ := m.State.LoadClaim("ns", "c1"); c.Leaf != real || c.Pod != "" {
			t.Errorf("claim %+v", c)
		}
	})
}

// FuzzParseProcCgroupV2: whatever /proc holds, a path it returns is absolute, clean, not the
// root and cannot climb out of the hierarchy.
func FuzzParseProcCgroupV2(f *testing.F) {
	for _, s := range []string{"0::/a/b\n", "1:cpu:/x\n0::/../y\n", "0::/\n", "0::a\n", "0::/a/..\n", "0::" + strconv.Itoa(1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseProcCgroupV2(strings.NewReader(in))
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "/") || got == "/" || path.Clean(got) != got || strings.Contains(got+"/", "/../") {
			t.Fatalf("parseProcCgroupV2(%q) = %q", in, got)
		}
	})
}
