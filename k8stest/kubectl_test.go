//go:build linux

package k8stest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// kubectl runs kubectl as the cluster admin, with its caches in the cluster's dir, and returns
// stdout; err quotes stderr.
func (c *cluster) kubectl(args ...string) (string, error) {
	return c.kubectlIn("", args...)
}

// kubectlIn is kubectl with stdin (e.g. a manifest for `apply -f -`).
func (c *cluster) kubectlIn(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(k8sDir, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "KUBECACHEDIR="+filepath.Join(c.dir, "kubectl-cache"),
		"HOME="+filepath.Join(c.dir, "home"))
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func (c *cluster) mustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.kubectl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apply applies manifest (JSON or YAML) from stdin.
func (c *cluster) apply(t testing.TB, manifest string) {
	t.Helper()
	if _, err := c.kubectlIn(manifest, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// pod is the part of a v1 Pod the tests read.
type pod struct {
	Metadata struct {
		Name string `json:"name"`
		UID  string `json:"uid"`
	} `json:"metadata"`
	Spec struct {
		NodeName   string `json:"nodeName"`
		Containers []struct {
			Name string `json:"name"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		Phase string `json:"phase"`
		// Reason and Message say why a pod failed as a whole (e.g. the kubelet's admission).
		Reason            string `json:"reason"`
		Message           string `json:"message"`
		QOSClass          string `json:"qosClass"`
		ContainerStatuses []struct {
			Name         string `json:"name"`
			ContainerID  string `json:"containerID"`
			RestartCount int    `json:"restartCount"`
			State        struct {
				Running *struct{} `json:"running"`
				Waiting *struct {
					Reason, Message string
				} `json:"waiting"`
			} `json:"state"`
			Resources *struct {
				Limits map[string]string `json:"limits"`
			} `json:"resources"`
		} `json:"containerStatuses"`
		Conditions []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
	} `json:"status"`
}

func (c *cluster) getPod(name string) (*pod, error) {
	out, err := c.kubectl("get", "pod", name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var p pod
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return nil, fmt.Errorf("pod %s: %w", name, err)
	}
	return &p, nil
}

// waitRunning waits until every container of pod name runs, and returns the pod.
func (c *cluster) waitRunning(t testing.TB, name string) *pod {
	t.Helper()
	var p *pod
	err := waitFor("pod "+name+" running", 90*time.Second, nil, func() (err error) {
		if p, err = c.getPod(name); err != nil {
			return err
		}
		if len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
			return fmt.Errorf("phase %s, %d of %d container statuses", p.Status.Phase, len(p.Status.ContainerStatuses), len(p.Spec.Containers))
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running == nil {
				return fmt.Errorf("container %s: %+v", cs.Name, cs.State.Waiting)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, c.describePod(name))
	}
	return p
}

// describePod is `kubectl describe pod`'s output, or the error.
func (c *cluster) describePod(name string) string {
	out, err := c.kubectl("describe", "pod", name)
	if err != nil {
		return err.Error()
	}
	return out
}

// containerID is container name's ID in pod p (without "containerd://").
func (p *pod) containerID(name string) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == name {
			_, id, _ := strings.Cut(cs.ContainerID, "://")
			return id
		}
	}
	return ""
}

// podCgroup is the pod-level cgroup the kubelet made for p (cgroupfs driver), relative to a
// hierarchy's root: /kubepods/pod<uid> (Guaranteed) or /kubepods/<qos>/pod<uid>.
func (p *pod) podCgroup() string {
	switch q := strings.ToLower(p.Status.QOSClass); q {
	case "guaranteed":
		return "/kubepods/pod" + p.Metadata.UID
	default:
		return "/kubepods/" + q + "/pod" + p.Metadata.UID
	}
}

// initPID is the PID of container name's init, from its cgroup, seen from the host.
func (p *pod) initPID(t testing.TB, name string) int {
	t.Helper()
	id := p.containerID(name)
	if id == "" {
		t.Fatalf("pod %s: no container %s", p.Metadata.Name, name)
	}
	dir := cpuCgroup(p.podCgroup() + "/" + id)
	pids := harness.CgroupProcs(dir)
	if len(pids) == 0 {
		t.Fatalf("pod %s container %s: no process in %s", p.Metadata.Name, name, dir)
	}
	// The init is the oldest process: the lowest start time in /proc/<pid>/stat.
	slices.SortFunc(pids, func(a, b int) int { return int(startTime(a) - startTime(b)) })
	return pids[0]
}

// startTime is field 22 of /proc/<pid>/stat (clock ticks after boot).
func startTime(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseInt(f[19], 10, 64)
	return v
}

// event is the part of a v1 Event the tests read.
type event struct {
	Reason, Message, Type string
	InvolvedObject        struct{ Name string } `json:"involvedObject"`
}

// eventsOf lists the events of pod name.
func (c *cluster) eventsOf(name string) ([]event, error) {
	out, err := c.kubectl("get", "events", "--field-selector", "involvedObject.name="+name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct{ Items []event }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// deletePods deletes pods by name with a 1 s grace period (their sleep, as PID 1, ignores
// SIGTERM) and waits until they are gone.
func (c *cluster) deletePods(t testing.TB, names ...string) {
	t.Helper()
	if len(names) == 0 {
		return
	}
	args := append([]string{"delete", "pod", "--grace-period=1", "--wait=true", "--timeout=90s", "--ignore-not-found"}, names...)
	if _, err := c.kubectl(args...); err != nil {
		t.Fatal(err)
	}
}
