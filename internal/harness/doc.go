// Package harness is the test harness of rtshim's real-component tiers: the cgroup v1 host
// tests (integration/), the benchmarks (bench/) and the cgroup v2 tests inside a VM (vmtest/).
// All of them run real containers through a private containerd, so they share one way to
// start it, drive it with ctr, run containers, read cgroups and clean up after themselves.
//
// Only tests import it: it calls testing.TB's Fatal, and no product binary links it (make lint
// checks that).
//
//	Main(m, tier, &env)             TestMain of a host tier: environment, stale-run sweep, checks
//	env.StartContainerd(t, opts)    a private daemon, torn down by t.Cleanup (log printed on failure)
//	env.LaunchContainerd(opts)      the same without a test, for a daemon that outlives one (vmtest)
//	d.Ctr, d.MustCtr, d.CtrContext  ctr against the daemon and its namespace
//	d.Run, d.MustRun, d.Start       ctr run a container from the test rootfs (RunOpts)
//	d.Remove, d.RemoveErr           kill and delete, as docker rm -f
//	d.PID, d.UpdateCPU              containerd's Go client, for what ctr cannot do
//	env.StartDockerd(t, d, opts)    a private dockerd on d (Docker tests, Docker benchmark)
//	ParseSched, HasCap              /bin/schedinfo's output
//	cgroup*.go                      cgroup helpers: both versions, v1 only, v2 only
//	state.go                        rtshim's claims and the shim processes
//
// Files: env.go (what is under test), daemon.go and config.go (the daemon), ctr.go and run.go
// (driving it), teardown.go and stale.go (cleaning up), the rest helpers.
package harness
