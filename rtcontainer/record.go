package rtcontainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/log"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/failpoint"
	"github.com/rtshim/rtshim/internal/statefile"
	"github.com/rtshim/rtshim/oci"
)

// record is what a detached front door (runc-rt, one process per command) keeps of a container
// between its commands.
type record struct {
	Namespace string       `json:"namespace"`
	ID        string       `json:"id"`
	Bundle    string       `json:"bundle"`
	Request   *oci.Request `json:"request"`
	// Init is the container's init as create found it (PID and start time): start takes its
	// PID from here rather than from `runc state` while that process still runs.
	Init *cgroupfix.Owner `json:"init,omitempty"`
}

func recordPath(stateDir, ns, id string) string {
	return filepath.Join(stateDir, "wrapper", cgroupfix.RecordName(ns, id)+".json")
}

// legacyRecordPath is where rtshim 0.1 kept the record (see cgroupfix.LegacyRecordName).
func legacyRecordPath(stateDir, ns, id string) string {
	return filepath.Join(stateDir, "wrapper", cgroupfix.LegacyRecordName(ns, id)+".json")
}

// readRecord reads ns/id's record, at its legacy name too. A legacy record holds no names to
// check: it is taken when it is the only one (a runc-rt upgraded while a container ran).
func readRecord(stateDir, ns, id string) ([]byte, error) {
	b, err := os.ReadFile(recordPath(stateDir, ns, id))
	if errors.Is(err, os.ErrNotExist) {
		b, err = os.ReadFile(legacyRecordPath(stateDir, ns, id))
	}
	return b, err
}

func (c *Container) save() error {
	r := record{Namespace: c.Namespace, ID: c.ID, Bundle: c.bundle, Request: c.Req}
	if c.Pid > 0 {
		init := cgroupfix.OwnerOf(c.host.ProcRoot, c.Pid)
		r.Init = &init
	}
	if err := statefile.WriteJSON(recordPath(c.stateDir, c.Namespace, c.ID), r); err != nil {
		return fmt.Errorf("record container %s: %w", c.ID, err)
	}
	return nil
}

func removeRecord(stateDir, ns, id string) error {
	for _, p := range []string{recordPath(stateDir, ns, id), legacyRecordPath(stateDir, ns, id)} {
		if err := statefile.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

// Lookup returns the container o names as an earlier, detached Prepare and AfterCreate left it
// (runc-rt's create), or nil when it has no request.
func (h Host) Lookup(ctx context.Context, o Options) (*Container, error) {
	b, err := readRecord(o.Config.StateDir, o.Namespace, o.ID)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("corrupt record of container %s: %w", o.ID, err)
	}
	if r.Request == nil {
		return nil, fmt.Errorf("corrupt record of container %s: no request", o.ID)
	}
	var annotations map[string]string
	if failpoint.Enabled { // decoding the spec is milliseconds of every runc-rt command
		if spec, err := ReadSpec(filepath.Join(r.Bundle, "config.json")); err == nil {
			annotations = spec.Annotations
		}
	}
	// No cgroup manager yet (see manager): of the later commands only delete needs one.
	c := &Container{Namespace: o.Namespace, ID: o.ID, Req: r.Request, host: h, rt: o.Runtime, bundle: r.Bundle,
		stateDir: o.Config.StateDir, detached: true, hook: failpoint.Hook(annotations)}
	if r.Init != nil && r.Init.Alive(h.ProcRoot) {
		// The same process (PID and start time) as at create: still the container's init.
		c.Pid = r.Init.PID
	}
	return c, nil
}

// Knows reports whether stateDir holds container ns/id's record or claim: then it is the state
// dir the container was created with, and its bundle record (which takes `runc state` to find)
// has nothing more to tell.
func (h Host) Knows(stateDir, ns, id string) bool {
	for _, p := range []string{recordPath(stateDir, ns, id), legacyRecordPath(stateDir, ns, id)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return h.Holds(stateDir, ns, id)
}

// A pending mark says that runc-rt is taking container ns/id apart: its delete writes one
// before `runc delete` and removes it once the container's budget, claim and record are given
// back. A runc-rt killed in between (by the engine's timeout, an OOM kill, a dying strace)
// leaves the mark, and the next runc-rt delete on the host finishes the job (SweepRecords):
// no one else reads runc-rt's records.
type pendingMark struct {
	Namespace string          `json:"namespace"`
	ID        string          `json:"id"`
	Owner     cgroupfix.Owner `json:"owner"` // the runc-rt that wrote it
}

func pendingDir(stateDir string) string { return filepath.Join(stateDir, "wrapper", "pending") }

func pendingPath(stateDir, ns, id string) string {
	return filepath.Join(pendingDir(stateDir), cgroupfix.RecordName(ns, id)+".json")
}

// MarkPending writes container ns/id's pending mark, owned by this process.
func (h Host) MarkPending(stateDir, ns, id string) error {
	b, err := json.Marshal(pendingMark{Namespace: ns, ID: id, Owner: self(h.ProcRoot)})
	if err != nil {
		return err
	}
	p := pendingPath(stateDir, ns, id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	// Not renamed into place: a torn mark still names a container in its file name, and
	// SweepRecords takes that one up.
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return fmt.Errorf("mark container %s pending: %w", id, err)
	}
	return nil
}

// ClearPending removes container ns/id's pending mark.
func (h Host) ClearPending(stateDir, ns, id string) {
	_ = os.Remove(pendingPath(stateDir, ns, id))
}

// recordSweepInterval bounds how long a record no pending mark names (one a runc-rt older than
// the marks left, or whose container was deleted with runc itself) waits for a sweep.
const recordSweepInterval = 10 * time.Second

// SweepRecords finishes the cleanup of containers whose runc-rt was killed part-way: every
// container a pending mark names whose writer is gone, and, at most every recordSweepInterval,
// every container runc-rt holds a record of. Such a container's budget, claim and record are
// given back once runc no longer has it (gone reports that; it must say false when it cannot
// tell) and its claim, if any, is stale; a container runc still has, or whose claim is live,
// keeps everything. Without marks and between intervals it costs a directory read and a stat:
// runc-rt's delete runs it after every container.
func (h Host) SweepRecords(ctx context.Context, stateDir string, gone func(ns, id string) bool) {
	dir := filepath.Join(stateDir, "wrapper")
	marks, _ := os.ReadDir(pendingDir(stateDir))
	swept := filepath.Join(dir, "swept")
	st, err := os.Stat(swept)
	// Never swept: the records an older runc-rt may have left are looked at once.
	full := err != nil || time.Since(st.ModTime()) >= recordSweepInterval
	running := map[string]bool{} // record names of containers whose delete still runs
	for _, e := range marks {
		p := filepath.Join(pendingDir(stateDir), e.Name())
		var m pendingMark
		b, err := os.ReadFile(p)
		if err == nil && json.Unmarshal(b, &m) != nil {
			full = true // torn: its container is found among the records
			os.Remove(p)
			continue
		}
		if err != nil || m.Owner.Alive(h.ProcRoot) {
			running[e.Name()] = true
			continue // removed meanwhile, or its delete still runs
		}
		if h.reap(ctx, stateDir, m.Namespace, m.ID, gone) {
			os.Remove(p)
		}
	}
	if !full {
		return
	}
	now := time.Now()
	if err := os.Chtimes(swept, now, now); errors.Is(err, os.ErrNotExist) {
		_ = os.WriteFile(swept, nil, 0o600)
	}
	recs, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, p := range recs {
		if running[filepath.Base(p)] {
			continue
		}
		var r record
		if b, err := os.ReadFile(p); err != nil || json.Unmarshal(b, &r) != nil || r.Namespace == "" || r.ID == "" {
			continue // removed meanwhile, or corrupt: left for its own delete to report
		}
		if r.Init != nil && r.Init.Alive(h.ProcRoot) {
			continue // the container runs: the common case, no more to look at
		}
		h.reap(ctx, stateDir, r.Namespace, r.ID, gone)
	}
}

// reap gives back what container ns/id holds when runc no longer has it and its claim is
// stale. It reports whether nothing is left to do for a pending mark: the container was
// given back, or it is still there and its own commands take over.
func (h Host) reap(ctx context.Context, stateDir, ns, id string, gone func(ns, id string) bool) bool {
	if !gone(ns, id) {
		return true
	}
	var cg *cgroupfix.Manager
	claim, err := cgroupfix.State{Dir: stateDir}.LoadClaim(ns, id)
	if err != nil {
		return false // a corrupt claim may hold something: left for Reconcile to report
	}
	if claim != nil {
		if cg, err = h.cgroups(stateDir); err != nil {
			return false
		}
		if !cg.Stale(claim) {
			return true // its cgroup still has processes: not a leftover
		}
	}
	if err := h.forget(ctx, cg, stateDir, ns, id); err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("give back a container whose runc-rt was killed")
		return false
	}
	log.G(ctx).WithField("namespace", ns).WithField("id", id).Info("gave back a container whose runc-rt was killed")
	return true
}
