// Command nri-sched is the benchmarks' NRI plugin: it does what a scheduling class of
// containers/nri-plugins (balloons, topology-aware ≥ v0.14) does to a container, and nothing
// else, so that bench's NRI route measures NRI's mechanism rather than a policy. On
// CreateContainer it answers with a process.scheduler adjustment (and, if asked, the
// container's own cgroup v1 RT budget) taken from the container's annotations:
//
//	nri-sched.rtshim.io/policy         SCHED_FIFO or SCHED_RR
//	nri-sched.rtshim.io/priority       1..99
//	nri-sched.rtshim.io/rt-runtime-us  the container cgroup's cpu.rt_runtime_us (v1 only)
//
// NRI cannot grant the ancestors' budgets: nor can this plugin. The nri-plugins release the Go
// module proxy serves (v0.10.1) predates scheduling classes and does not build outside its
// repository (tools/nri-plugins), hence this stand-in.
//
// containerd starts it from its NRI plugin_path (as "NN-nri-sched"); run by hand it connects
// to -socket.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// Annotation keys the plugin reads, on the container or, failing that, on its pod.
const (
	keyPolicy    = "nri-sched.rtshim.io/policy"
	keyPriority  = "nri-sched.rtshim.io/priority"
	keyRTRuntime = "nri-sched.rtshim.io/rt-runtime-us"
	// keyAdjusted is the annotation the plugin adds to what it adjusted: proof in the
	// container's spec that the adjustment went through containerd.
	keyAdjusted = "nri-sched.rtshim.io/adjusted"
)

type plugin struct{}

// The stub finds the events a plugin handles by their interfaces.
var _ stub.CreateContainerInterface = plugin{}

// CreateContainer adjusts the container's OCI spec before containerd hands it to the runtime:
// runc then applies process.scheduler in `runc init`.
func (plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	get := func(key string) string {
		if v, ok := c.GetAnnotations()[key]; ok {
			return v
		}
		return pod.GetAnnotations()[key]
	}
	adj, err := adjustment(get)
	if err != nil {
		return nil, nil, fmt.Errorf("container %s: %w", c.GetName(), err)
	}
	return adj, nil, nil
}

// adjustment is the adjustment the annotations ask for; nil when they ask for none.
func adjustment(get func(string) string) (*api.ContainerAdjustment, error) {
	policy := get(keyPolicy)
	budget := get(keyRTRuntime)
	if policy == "" && budget == "" {
		return nil, nil
	}
	adj := &api.ContainerAdjustment{}
	if policy != "" {
		p, ok := map[string]api.LinuxSchedulerPolicy{
			"SCHED_FIFO": api.LinuxSchedulerPolicy_SCHED_FIFO,
			"SCHED_RR":   api.LinuxSchedulerPolicy_SCHED_RR,
		}[policy]
		if !ok {
			return nil, fmt.Errorf("%s=%q: want SCHED_FIFO or SCHED_RR", keyPolicy, policy)
		}
		prio, err := strconv.Atoi(get(keyPriority))
		if err != nil || prio < 1 || prio > 99 {
			return nil, fmt.Errorf("%s=%q: want 1..99", keyPriority, get(keyPriority))
		}
		adj.SetLinuxScheduler(&api.LinuxScheduler{Policy: p, Priority: int32(prio)})
		adj.AddAnnotation(keyAdjusted, policy+" "+strconv.Itoa(prio))
	}
	if budget != "" {
		us, err := strconv.ParseInt(budget, 10, 64)
		if err != nil || us < 1 {
			return nil, fmt.Errorf("%s=%q: want a positive number of µs", keyRTRuntime, budget)
		}
		adj.SetLinuxCPURealtimeRuntime(us)
	}
	return adj, nil
}

func main() {
	socket := flag.String("socket", "", "NRI socket to connect to when not started by containerd")
	flag.Parse()
	// Started by containerd, the plugin has its name, index and connection from the
	// environment (setting the index again is an error).
	var opts []stub.Option
	if *socket != "" {
		opts = []stub.Option{stub.WithPluginName("nri-sched"), stub.WithPluginIdx("10"), stub.WithSocketPath(*socket)}
	}
	s, err := stub.New(plugin{}, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nri-sched: %v\n", err)
		os.Exit(1)
	}
	if err := s.Run(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "nri-sched: %v\n", err)
		os.Exit(1)
	}
}
