package rtcontainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/failpoint"
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
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := recordPath(c.stateDir, c.Namespace, c.ID)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record container %s: %w", c.ID, err)
	}
	return os.Rename(tmp, p)
}

func removeRecord(stateDir, ns, id string) error {
	for _, p := range []string{recordPath(stateDir, ns, id), legacyRecordPath(stateDir, ns, id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
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
