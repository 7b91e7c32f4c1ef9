package cgroupfix

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestGuardPod: the kubelet writes the pod cgroup's quota itself on an in-place resize; the
// guard lifts it again within its interval and keeps the kubelet's value as the one the last
// release puts back.
func TestGuardPod(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	f.add("/kubepods/pod1", 0)
	pod, _ := f.get("/kubepods/pod1")
	pod.quota = "50000"
	c := claim("c1", "/kubepods/pod1/c1", 100000)
	c.Pod, c.ExemptQuota = "/kubepods/pod1", true
	if err := m.Grant(ctx, c); err != nil {
		t.Fatal(err)
	}
	gctx, stop := context.WithCancel(ctx)
	m.GuardPod(gctx, "/kubepods/pod1", "ns", "c1")
	resized := func() string {
		f.mu.Lock()
		defer f.mu.Unlock()
		return pod.quota
	}
	f.WriteFile("/kubepods/pod1", fileQuotaV1, "30000") // the kubelet, after a resize
	deadline := time.Now().Add(3 * guardInterval)
	for resized() != "-1" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if q := resized(); q != "-1" {
		t.Fatalf("pod quota %q after the kubelet's write, want -1 again", q)
	}
	stop()
	if err := m.Release(ctx, "ns", "c1"); err != nil {
		t.Fatal(err)
	}
	if q := resized(); q != "30000" {
		t.Errorf("pod quota %q after the release, want the kubelet's 30000", q)
	}
	assertNoState(t, m)
}

// TestGuardPodStopsWithItsClaim: a guard whose container's claim was released by someone else
// (its own delete failed, a sweep finished the job) does not lift the quota again, nor leave a
// record: the kubelet's later writes (pod termination) are the kubelet's.
func TestGuardPodStopsWithItsClaim(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	f.add("/kubepods/pod1", 0)
	pod, _ := f.get("/kubepods/pod1")
	pod.quota = "50000"
	c := claim("c1", "/kubepods/pod1/c1", 100000)
	c.Pod, c.ExemptQuota = "/kubepods/pod1", true
	if err := m.Grant(ctx, c); err != nil {
		t.Fatal(err)
	}
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	m.GuardPod(gctx, "/kubepods/pod1", "ns", "c1")
	if err := m.Release(ctx, "ns", "c1"); err != nil { // not through the guard's container
		t.Fatal(err)
	}
	f.WriteFile("/kubepods/pod1", fileQuotaV1, "20000") // the kubelet, terminating the pod
	time.Sleep(3 * guardInterval)
	f.mu.Lock()
	q := pod.quota
	f.mu.Unlock()
	if q != "20000" {
		t.Errorf("pod quota %q: the guard of a released claim lifted it again", q)
	}
	assertNoState(t, m)
}

// TestDirFSWatch: inotify reports a write to a file (on cgroupfs as on any file system).
func TestDirFSWatch(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "pod"), 0o755)
	os.WriteFile(filepath.Join(dir, "pod", fileQuotaV1), []byte("-1\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := DirFS{Root: dir}.Watch(ctx, "/pod", fileQuotaV1)
	if err != nil {
		t.Fatal(err)
	}
	if err := (DirFS{Root: dir}).WriteFile("/pod", fileQuotaV1, "20000"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-events:
	case <-time.After(2 * time.Second):
		t.Fatal("no event for a write")
	}
}
