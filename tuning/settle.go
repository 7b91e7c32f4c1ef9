package tuning

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/log"
)

// Target is one host file rtshim may change: Kind says which knob owns it, Path where it is
// (a /proc or /sys path, a cgroup, irqbalance's socket), CPU which CPU it is for (-1: none).
type Target struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
	CPU  int    `json:"cpu"`
}

// knob is one kind of Target.
type knob interface {
	read(m *Manager, t Target) (string, error)
	write(m *Manager, t Target, value string) error
	// desired is what the file must hold for the active holders, given what it held before
	// rtshim (base); held is false when none of them needs it changed.
	desired(m *Manager, t Target, base string, active []*Holder) (value string, held bool, err error)
	// gone reports that the file no longer exists (a removed cgroup, a freed IRQ, an exited
	// irqbalance): there is nothing left to give back.
	gone(m *Manager, t Target) bool
}

// stage orders the knobs: applied in increasing stage, given back in decreasing (a partition
// before the IRQs are moved off its CPUs; the IRQs back before the partition is dissolved).
var stage = map[string]int{kindExclusive: 0, kindPartition: 1, kindV1Exclusive: 1, kindV1LoadBalance: 1,
	kindIrqbalance: 2, kindIRQ: 3, kindIRQDefault: 3, kindLatency: 4, kindGovernor: 5}

func knobOf(kind string) (knob, error) {
	switch kind {
	case kindExclusive, kindPartition:
		return cpusetV2{}, nil
	case kindV1Exclusive, kindV1LoadBalance:
		return cpusetV1{}, nil
	case kindIRQ, kindIRQDefault:
		return irqs{}, nil
	case kindIrqbalance:
		return irqbalanceKnob{}, nil
	case kindLatency:
		return cstates{}, nil
	case kindGovernor:
		return governor{}, nil
	}
	return nil, fmt.Errorf("unknown tuning record kind %q", kind)
}

// applyTarget brings one file to what the active holders need, recording its baseline first.
func (m *Manager) applyTarget(t Target, active []*Holder) error {
	k, err := knobOf(t.Kind)
	if err != nil {
		return err
	}
	cur, err := k.read(m, t)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.Path, err)
	}
	recorded, err := m.rec.recordBaseline(t, cur)
	if err != nil {
		return err
	}
	base := cur
	if b, err := m.rec.loadBaseline(t); err == nil && b != nil {
		base = b.Value
	}
	want, held, err := k.desired(m, t, base, active)
	if err != nil || !held || want == cur {
		if recorded && (err != nil || !held) {
			_ = m.rec.deleteBaseline(t) // nothing changed: nothing to give back
		}
		return err
	}
	if err := k.write(m, t, want); err != nil {
		if recorded {
			_ = m.rec.deleteBaseline(t)
		}
		return err
	}
	return nil
}

// settle brings every file rtshim changed to what the active holders need now, and writes the
// baseline back to every file none of them needs: bottom-up (the reverse of stage, and deeper
// cgroups before their parents). It goes on past errors and returns them all.
func (m *Manager) settle(ctx context.Context) error {
	holders, err := m.rec.holders()
	if err != nil {
		return fmt.Errorf("keep host tuning as it is: %w", err)
	}
	var active []*Holder
	for _, h := range holders {
		if h.active() {
			active = append(active, h)
		}
	}
	bases, err := m.rec.baselines()
	if err != nil {
		return fmt.Errorf("keep host tuning as it is: %w", err)
	}
	sort.SliceStable(bases, func(i, j int) bool {
		a, b := bases[i], bases[j]
		if stage[a.Kind] != stage[b.Kind] {
			return stage[a.Kind] > stage[b.Kind]
		}
		return strings.Count(a.Path, "/") > strings.Count(b.Path, "/")
	})
	var errs []error
	for _, b := range bases {
		if err := m.settleOne(ctx, b, active); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) settleOne(ctx context.Context, b *Baseline, active []*Holder) error {
	k, err := knobOf(b.Kind)
	if err != nil {
		return err
	}
	if k.gone(m, b.Target) {
		return m.rec.deleteBaseline(b.Target)
	}
	want, held, err := k.desired(m, b.Target, b.Value, active)
	if err != nil {
		return err
	}
	if !held {
		want = b.Value
	}
	cur, err := k.read(m, b.Target)
	if err != nil {
		return fmt.Errorf("read %s: %w", b.Path, err)
	}
	if cur != want {
		if err := k.write(m, b.Target, want); err != nil {
			return err
		}
	}
	if held {
		return nil
	}
	log.G(ctx).WithField("file", b.Path).WithField("value", b.Value).Debug("host tuning given back")
	return m.rec.deleteBaseline(b.Target)
}
