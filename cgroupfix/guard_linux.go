package cgroupfix

import (
	"context"
	"os"
	"time"

	"github.com/containerd/log"
	"golang.org/x/sys/unix"
)

// Watcher is an FS that can tell when a cgroup file is written.
type Watcher interface {
	// Watch sends on the returned channel after file of cgroup was written (writes may be
	// coalesced), until ctx is done.
	Watch(ctx context.Context, cgroup, file string) (<-chan struct{}, error)
}

// Watch uses inotify: a write to a cgroupfs file through write(2) raises IN_MODIFY on it, as on
// any file, whoever writes (the kubelet, systemd, a person).
func (d DirFS) Watch(ctx context.Context, cgroup, file string) (<-chan struct{}, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	if _, err := unix.InotifyAddWatch(fd, d.path(cgroup, file), unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "inotify_add_watch", Path: d.path(cgroup, file), Err: err}
	}
	// Through os.File the read blocks in the runtime's poller, so Close ends it.
	f := os.NewFile(uintptr(fd), "inotify")
	events := make(chan struct{}, 1)
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case events <- struct{}{}:
			default: // one pending event stands for any number of writes
			}
		}
	}()
	return events, nil
}

// guardInterval is how often GuardPod looks even without an event: a safety net, should a
// write not raise one.
const guardInterval = time.Second

// GuardPod keeps the CFS quota of pod, the pod-level cgroup of the exempted container ns/id,
// lifted until ctx is done or that container's claim is gone. The kubelet writes that cgroup itself, not through the runtime (an
// in-place resize; on a decrease after the containers, so the exemption the grant made would
// silently be gone): GuardPod notices the write at once (inotify) or within guardInterval,
// takes the kubelet's value as the one to put back when the pod's last exempted container goes,
// and lifts the quota again.
func (m *Manager) GuardPod(ctx context.Context, pod, ns, id string) {
	file := fileQuotaV1
	if m.V2 {
		file = fileCPUMax
	}
	var events <-chan struct{}
	if w, ok := m.CPU.(Watcher); ok {
		var err error
		if events, err = w.Watch(ctx, pod, file); err != nil {
			log.G(ctx).WithError(err).WithField("cgroup", pod).Warn("watch pod CFS quota; looking every second instead")
		}
	}
	tick := time.NewTicker(guardInterval)
	go func() {
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-events:
			case <-tick.C:
			}
			switch done, err := m.reexemptPod(ctx, pod, file, ns, id); {
			case err != nil:
				log.G(ctx).WithError(err).WithField("cgroup", pod).Warn("keep pod CFS quota lifted")
			case done:
				return
			}
		}
	}()
}

// reexemptPod lifts pod's quota again if something else set one, keeping that value as the one
// to restore. done: the container's claim is gone (released, whatever released it), so the
// guard has nothing left to keep.
func (m *Manager) reexemptPod(ctx context.Context, pod, file, ns, id string) (done bool, err error) {
	if cur, err := m.CPU.ReadFile(pod, file); err != nil || isUnlimited(cur) {
		return false, nil // gone (the pod is being removed), or still lifted
	}
	unlock, err := m.State.Lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	if ctx.Err() != nil {
		return true, nil // the guard was stopped while it waited: the release owns the quota now
	}
	// Only while the claim that exempts the pod stands: once it is released (by the shim's
	// delete, or by another process after a failure) the restored value is the kubelet's.
	if c, err := m.State.LoadClaim(ns, id); err != nil || c == nil || c.Pod != pod || !c.ExemptQuota {
		return true, err
	}
	cur, err := m.CPU.ReadFile(pod, file)
	if err != nil || isUnlimited(cur) {
		return false, nil
	}
	if err := m.State.UpdateBaseline(pod, file, cur); err != nil {
		return false, err
	}
	unlimited := "-1"
	if m.V2 {
		unlimited = "max"
	}
	if err := m.CPU.WriteFile(pod, file, unlimited); err != nil {
		return false, err
	}
	log.G(ctx).WithField("cgroup", pod).WithField("quota", cur).
		Info("pod CFS quota was set again (kubelet resize?): lifted, the new value kept to restore")
	return false, nil
}

var _ Watcher = DirFS{}
