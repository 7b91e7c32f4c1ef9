package cgroupfix

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"
)

// Manager grants and gives back what real-time containers need on one host.
type Manager struct {
	// CPU is the cgroup v1 cpu hierarchy, or the cgroup v2 unified hierarchy when V2.
	CPU      FS
	V2       bool
	State    State
	ProcRoot string
	// Hook, when set, runs before the named steps of a grant (StepGrantClaimed,
	// StepGrantAncestors); an error fails the grant there. Only the crash-safety tests set it.
	Hook func(step string) error

	cost Cost // of the last Grant or Release
}

// Steps of a grant at which Hook runs.
const (
	StepGrantClaimed   = "grant-claimed"   // claim recorded, nothing written yet
	StepGrantAncestors = "grant-ancestors" // ancestors raised, container cgroup not yet created
)

func (m *Manager) hook(step string) error {
	if m.Hook == nil {
		return nil
	}
	return m.Hook(step)
}

// RTGroupSched reports whether the hierarchy has cgroup v1 RT group scheduling, i.e. whether
// containers need an RT budget at all.
func (m *Manager) RTGroupSched() bool {
	if m.V2 {
		return false
	}
	_, err := m.CPU.ReadFile("/", fileRTRuntime)
	return err == nil
}

// Grant records the claim, then grants its RT budget (cgroup v1: ancestors top-down, then the
// leaf, which it creates so runc finds its budget already in place) and lifts the pod-level
// CFS quota. It changes nothing when the budget does not fit. On error nothing it did remains.
func (m *Manager) Grant(ctx context.Context, c *Claim) (retErr error) {
	if c.Owner.PID <= 0 || c.Owner.StartTime == 0 {
		// An owner that cannot be told apart from a reused PID would keep the claim forever.
		return fmt.Errorf("%w: claim of %s: owner pid %d has no start time in /proc/<pid>/stat", errdefs.ErrFailedPrecondition, c.ID, c.Owner.PID)
	}
	m.cost = Cost{}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()

	if err := m.checkLeafFree(c); err != nil {
		return err
	}
	var plan grantPlan
	if c.RuntimeUS > 0 {
		plan, err = m.planV1(c, true)
		var nf *noFit
		if errors.As(err, &nf) && plan.fromRecords {
			// A record may count budget a sibling gave back outside rtshim: ask the children.
			plan, err = m.planV1(c, false)
		}
		if errors.As(err, &nf) && m.reconcile(ctx) > 0 {
			// Crashed shims' leftovers are cleared on every Release, and here only when
			// they stand in the way: reading every claim on every create would make creates
			// cost more the more containers run.
			plan, err = m.planV1(c, false)
		}
		if errors.As(err, &nf) {
			return m.refusal(c, nf)
		}
		if err != nil {
			return err
		}
		c.CreatedLeaf = !m.CPU.Exists(c.Leaf)
	}
	if err := m.State.SaveClaim(c); err != nil {
		return fmt.Errorf("save claim of %s: %w", c.ID, err)
	}
	defer func() {
		if retErr != nil {
			m.forgetSums(c.Leaf) // the rollback reads the children: whatever was written, the records no longer say
			if err := m.release(ctx, c); err != nil {
				m.State.MarkDirty()
				log.G(ctx).WithError(err).WithField("id", c.ID).Warn("roll back RT budget")
			}
		}
	}()
	if err := m.hook(StepGrantClaimed); err != nil {
		return err
	}
	if err := m.apply(c, plan); err != nil {
		return err
	}
	if c.ExemptQuota && c.Pod != "" {
		return m.exemptPod(c.Pod)
	}
	return nil
}

// apply writes a grant's plan and keeps its records. A plan made from records that the kernel
// refuses (EINVAL: a sibling took budget from outside rtshim, which no record shows) is made
// again from the children and written with the retries of writeRuntime.
func (m *Manager) apply(c *Claim, plan grantPlan) error {
	err := m.applyV1(plan.writes, !plan.fromRecords)
	if err != nil && plan.fromRecords && errors.Is(err, unix.EINVAL) {
		m.forgetSums(c.Leaf)
		var nf *noFit
		if plan, err = m.planV1(c, false); errors.As(err, &nf) {
			return m.refusal(c, nf)
		}
		if err == nil {
			err = m.applyV1(plan.writes, true)
		}
	}
	if err != nil {
		return err
	}
	m.keepSums(plan.sums)
	return nil
}

// checkLeafFree refuses a leaf that is already in use: a cgroup with child cgroups (an ancestor
// of other containers, a pod), with processes, or with an RT budget is another container's. A
// grant there would change that container's budget before runc failed. A leaf this container's
// own earlier claim names (a retried create) is its own.
func (m *Manager) checkLeafFree(c *Claim) error {
	if !m.CPU.Exists(c.Leaf) {
		return nil
	}
	if own, err := m.State.LoadClaim(c.Namespace, c.ID); err == nil && own != nil && own.Leaf == c.Leaf {
		return nil
	}
	var holds []string
	if children, _ := m.CPU.Children(c.Leaf); len(children) > 0 {
		holds = append(holds, fmt.Sprintf("child cgroups (%s)", strings.Join(children[:min(len(children), 3)], ", ")))
	}
	if m.hasTasks(c.Leaf) {
		holds = append(holds, "processes")
	}
	if !m.V2 {
		if rt, err := m.readInt(c.Leaf, fileRTRuntime); err == nil && rt != 0 {
			holds = append(holds, fmt.Sprintf("an RT budget (%s=%d)", fileRTRuntime, rt))
		}
	}
	if len(holds) == 0 {
		return nil
	}
	return fmt.Errorf("%w: linux.cgroupsPath names cgroup %s, which already has %s: the cgroup of another container or an "+
		"ancestor of one; a container needs a cgroup of its own", errdefs.ErrInvalidArgument, c.Leaf, strings.Join(holds, " and "))
}

// Release gives back everything the container's claim holds and forgets the claim. It is
// idempotent: a container that holds nothing returns nil. It then looks for claims that
// crashed shims left (see Reconcile), when one may be there: after something failed on this
// host (the dirty mark), and at least every sweepInterval otherwise. A shim killed while its
// container runs is cleaned up by containerd's `containerd-shim-rt-v2 delete`, which
// reconciles at once; a grant that does not fit reconciles before it refuses. Reading every
// claim on every release would make deletes cost more the more containers run.
func (m *Manager) Release(ctx context.Context, namespace, id string) error {
	start := time.Now()
	m.cost = Cost{}
	var held *Claim
	err := m.withClaim(namespace, id, func(c *Claim) error {
		held = c
		return m.release(ctx, c)
	})
	if err != nil {
		m.State.MarkDirty()
	}
	if m.State.Dirty() || m.State.SinceSweep() >= sweepInterval {
		m.sweep(ctx)
	}
	if held != nil && err == nil {
		// took includes the wait for the host-wide lock and a sweep: what a delete paid.
		entry := log.G(ctx)
		if log.GetLevel() >= log.DebugLevel {
			entry = entry.WithFields(m.cost.LogFields())
		}
		entry.WithField("took", time.Since(start).Round(time.Microsecond)).WithField("id", id).
			WithField("cgroup", held.Leaf).WithField("rt_runtime_us", held.RuntimeUS).Info("released real-time resources")
	}
	return err
}

// sweepInterval bounds how long a leftover no failure announced waits for a release to look.
const sweepInterval = 10 * time.Second

// withClaim runs f on the container's claim under the lock; nothing when it has none.
func (m *Manager) withClaim(namespace, id string, f func(*Claim) error) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	c, err := m.State.LoadClaim(namespace, id)
	if err != nil || c == nil {
		return err
	}
	return f(c)
}

// sweep reconciles when a claim looks stale. It looks without the lock (claims are written by
// atomic rename, so a read sees a whole one): reading every claim is the one step of a
// release whose cost grows with the number of containers on the host, and every create and
// delete waits for the lock's holder.
func (m *Manager) sweep(ctx context.Context) {
	m.State.Swept() // first: a sweep that fails must not run on every release after it
	m.recount(ctx)
	claims, ok := m.claims(ctx)
	if !ok {
		return
	}
	if !slices.ContainsFunc(claims, m.stale) {
		m.State.ClearDirty()
		return
	}
	if err := m.Reconcile(ctx); err != nil {
		log.G(ctx).WithError(err).Warn("release claims of crashed shims")
	}
}

// Adopt hands a claim to another owner: the runc wrapper exits after `runc create`, so the
// container's init owns its claim from then on.
func (m *Manager) Adopt(namespace, id string, owner Owner) error {
	return m.withClaim(namespace, id, func(c *Claim) error {
		c.Owner = owner
		return m.State.SaveClaim(c)
	})
}

// Reconcile finishes what crashed shims and failed releases left: claims whose owner is gone
// and whose cgroup holds no process, and budget claims whose cgroup is gone (runc delete
// removed it; a grant creates the cgroup before it returns), are released. Release runs it
// when it sees such a claim, and so does a Grant whose budget does not fit.
func (m *Manager) Reconcile(ctx context.Context) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	m.reconcile(ctx)
	if claims, ok := m.claims(ctx); ok && !slices.ContainsFunc(claims, m.stale) {
		m.State.ClearDirty() // everything stale is gone: nothing left for releases to look for
	}
	return nil
}

// reconcile returns how many claims it released.
func (m *Manager) reconcile(ctx context.Context) (released int) {
	claims, ok := m.claims(ctx)
	if !ok {
		return 0
	}
	for _, c := range claims {
		if !m.stale(c) {
			continue
		}
		log.G(ctx).WithField("id", c.ID).WithField("cgroup", c.Leaf).Info("releasing budget of a container whose shim is gone")
		if err := m.release(ctx, c); err != nil {
			log.G(ctx).WithError(err).WithField("id", c.ID).Warn("release stale claim")
			continue
		}
		released++
	}
	return released
}

// claims lists the claims for reconciling; corrupt records are logged and left alone.
func (m *Manager) claims(ctx context.Context) ([]*Claim, bool) {
	claims, err := m.State.Claims()
	var corrupt *CorruptError
	switch {
	case errors.As(err, &corrupt):
		log.G(ctx).WithError(err).Warn("rtshim claims")
	case err != nil:
		log.G(ctx).WithError(err).Warn("list rtshim claims")
		return nil, false
	}
	return claims, true
}

// Stale reports whether claim c is left over (see stale): its container's front door may
// release it, for its owner will not.
func (m *Manager) Stale(c *Claim) bool { return m.stale(c) }

// stale says whether a claim is left over: its cgroup, which the grant created, is gone (runc
// delete removed it), or its owner is gone and its cgroup holds no process.
func (m *Manager) stale(c *Claim) bool {
	if c.CreatedLeaf && !m.CPU.Exists(c.Leaf) {
		return true
	}
	return !c.Owner.Alive(m.ProcRoot) && !m.hasTasks(c.Leaf)
}

func (m *Manager) hasTasks(cg string) bool {
	procs, err := m.CPU.ReadFile(cg, "cgroup.procs")
	return err == nil && procs != ""
}

// release undoes a claim, bottom-up, and deletes it when nothing of it is left.
func (m *Manager) release(ctx context.Context, c *Claim) error {
	var errs []error
	if c.RuntimeUS > 0 {
		err := m.releaseLeaf(c)
		errs = append(errs, err)
		// The leaf's part, as the grant counted it in its ancestors' records.
		child := change{old: group{c.RuntimeUS, c.PeriodUS}, new: group{0, c.PeriodUS}, known: err == nil}
		for _, a := range reverse(Ancestors(c.Leaf)) {
			child, err = m.settleV1(a, child)
			errs = append(errs, err)
		}
	}
	if c.ExemptQuota && c.Pod != "" {
		errs = append(errs, m.restorePod(ctx, c))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release RT resources of %s: %w", c.ID, err)
	}
	return m.State.DeleteClaim(c.Namespace, c.ID)
}

// Quiesce takes the budget back from the cgroup of a container whose processes are gone,
// before runc removes the cgroup: a removed cgroup's budget lingers in the kernel for a grace
// period, while a cgroup at 0 never stands in the way of its parent being lowered. It does
// nothing while processes remain. It takes no lock: a cgroup going to 0 only makes room (a
// grant planned meanwhile counts the old value and asks its parent for more than it needs,
// which the next release settles), and the cgroup is the caller's own container's (the shim's
// or runc-rt's).
func (m *Manager) Quiesce(ctx context.Context, namespace, id string) {
	c, err := m.State.LoadClaim(namespace, id)
	if err != nil || c == nil || c.RuntimeUS == 0 || !m.CPU.Exists(c.Leaf) || m.hasTasks(c.Leaf) {
		return
	}
	if err := m.writeRT(c.Leaf, fileRTRuntime, 0); err != nil {
		log.G(ctx).WithError(err).WithField("cgroup", c.Leaf).Debug("quiesce RT budget")
	}
}

func (m *Manager) releaseLeaf(c *Claim) error {
	if !m.CPU.Exists(c.Leaf) {
		return nil
	}
	if m.hasTasks(c.Leaf) {
		return fmt.Errorf("cgroup %s still has processes", c.Leaf)
	}
	// BeforeDelete's Quiesce has set it to 0 already, as a rule: a write would make the kernel
	// check the whole task group tree again (see applyV1).
	if rt, err := m.readInt(c.Leaf, fileRTRuntime); err != nil || rt != 0 {
		if err := m.writeRT(c.Leaf, fileRTRuntime, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if c.CreatedLeaf {
		if err := m.CPU.Rmdir(c.Leaf); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove cgroup %s: %w", c.Leaf, err)
		}
	}
	return nil
}

// exemptPod lifts the pod-level quota, remembering what it was.
func (m *Manager) exemptPod(pod string) error {
	file, unlimited := fileQuotaV1, "-1"
	if m.V2 {
		file, unlimited = fileCPUMax, "max"
	}
	cur, err := m.CPU.ReadFile(pod, file)
	if err != nil {
		return fmt.Errorf("read CFS quota of pod cgroup %s: %w", pod, err)
	}
	if isUnlimited(cur) {
		return nil
	}
	if err := m.State.RecordBaseline(pod, file, cur); err != nil {
		return err
	}
	return m.CPU.WriteFile(pod, file, unlimited)
}

// restorePod puts the pod's quota back once no other exempted container of the pod is left.
func (m *Manager) restorePod(ctx context.Context, c *Claim) error {
	claims, err := m.State.Claims()
	if err != nil {
		// A corrupt record might be another exempted container of this pod: putting the quota
		// back could throttle it. The pod stays exempt, and this claim stays for a later try.
		return fmt.Errorf("keep CFS quota of pod cgroup %s lifted: %w", c.Pod, err)
	}
	for _, o := range claims {
		if o.Pod == c.Pod && o.ExemptQuota && (o.ID != c.ID || o.Namespace != c.Namespace) {
			return nil
		}
	}
	file := fileQuotaV1
	if m.V2 {
		file = fileCPUMax
	}
	base, ok, err := m.State.LoadBaseline(c.Pod, file)
	if err != nil || !ok {
		return err
	}
	if m.CPU.Exists(c.Pod) {
		if err := m.CPU.WriteFile(c.Pod, file, base); err != nil {
			return fmt.Errorf("restore CFS quota %q of pod cgroup %s: %w", base, c.Pod, err)
		}
	}
	log.G(ctx).WithField("cgroup", c.Pod).WithField("quota", base).Debug("restored pod CFS quota")
	return m.State.DeleteBaseline(c.Pod, file)
}

func isUnlimited(quota string) bool {
	return quota == "-1" || quota == "max" || strings.HasPrefix(quota, "max ")
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}
