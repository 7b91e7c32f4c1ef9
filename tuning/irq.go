package tuning

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/internal/cpulist"
	"github.com/rtshim/rtshim/oci"
)

// IRQs: every movable interrupt's affinity (/proc/irq/<n>/smp_affinity_list) and the default
// for new ones (/proc/irq/default_smp_affinity, a mask) lose the CPUs of the containers that
// asked for irq-load-balancing. An IRQ the kernel will not move (per-CPU interrupts such as the
// local timer, kernel-managed queue interrupts) refuses the write with EIO: it is skipped.
const (
	kindIRQ        = "irq"
	kindIRQDefault = "irq-default"
	irqRoot        = "/proc/irq"
	irqDefaultPath = irqRoot + "/default_smp_affinity"
)

type irqs struct{}

// irqCPUs is the CPUs a holder takes interrupts off: all of its CPUs, or with housekeeping all
// but the first and its hyper-thread siblings, which keep theirs.
func (m *Manager) irqCPUs(h *Holder) cpulist.Set {
	cpus := h.Tuning.Set()
	if h.Tuning.IRQ == oci.IRQHousekeeping && len(cpus) > 0 {
		cpus = cpus.Minus(m.siblings(cpus[0]))
	}
	return cpus
}

func (m *Manager) banned(active []*Holder) cpulist.Set {
	var out cpulist.Set
	for _, h := range active {
		if h.Tuning.IRQ != "" {
			out = out.Union(m.irqCPUs(h))
		}
	}
	return out
}

// irqTargets: irqbalance first (so it does not move the IRQs back), the default affinity, then
// every IRQ whose affinity includes one of the holder's CPUs.
func (m *Manager) irqTargets(h *Holder) ([]Target, error) {
	var out []Target
	if m.Irqbalance != nil {
		if t, ok := m.irqbalanceTarget(); ok {
			out = append(out, t)
		}
	}
	out = append(out, Target{Kind: kindIRQDefault, Path: irqDefaultPath, CPU: -1})
	mine := m.irqCPUs(h)
	names, err := m.Sys.ReadDir(irqRoot)
	if err != nil {
		return nil, fmt.Errorf("%w: irq-load-balancing: %w", errdefs.ErrFailedPrecondition, err)
	}
	nums := make([]int, 0, len(names))
	for _, n := range names {
		if v, err := strconv.Atoi(n); err == nil {
			nums = append(nums, v)
		}
	}
	for _, n := range cpulist.Of(nums...) {
		t := Target{Kind: kindIRQ, Path: path.Join(irqRoot, strconv.Itoa(n), "smp_affinity_list"), CPU: -1}
		cur, err := m.Sys.ReadFile(t.Path)
		if err != nil {
			continue // freed meanwhile
		}
		if set, err := cpulist.Parse(cur); err == nil && !set.Intersect(mine).Empty() {
			out = append(out, t)
		}
	}
	return out, nil
}

func (irqs) read(m *Manager, t Target) (string, error) { return m.Sys.ReadFile(t.Path) }

func (irqs) write(m *Manager, t Target, v string) error {
	if err := m.Sys.WriteFile(t.Path, v); err != nil {
		return fmt.Errorf("%w: %s: set affinity %s: %w", errdefs.ErrFailedPrecondition, t.Path, v, err)
	}
	return nil
}

func (irqs) gone(m *Manager, t Target) bool { _, err := m.Sys.ReadFile(t.Path); return err != nil }

// desired is the baseline affinity less every banned CPU; an IRQ that would be left with none
// goes to the host's other online CPUs.
func (irqs) desired(m *Manager, t Target, base string, active []*Holder) (string, bool, error) {
	banned := m.banned(active)
	parse, format := cpulist.Parse, func(s cpulist.Set) string { return s.String() }
	if t.Kind == kindIRQDefault {
		width := 32 * (strings.Count(base, ",") + 1)
		parse, format = cpulist.ParseMask, func(s cpulist.Set) string { return s.Mask(width) }
	}
	b, err := parse(base)
	if err != nil {
		return "", false, fmt.Errorf("baseline of %s: %w", t.Path, err)
	}
	if b.Intersect(banned).Empty() {
		return "", false, nil
	}
	want := b.Minus(banned)
	if want.Empty() {
		online, err := m.online()
		if err != nil {
			return "", false, err
		}
		if want = online.Minus(banned); want.Empty() {
			want = b
		}
	}
	return format(want), true, nil
}

// isUnmovable: the kernel refused to move the IRQ (per-CPU or managed: EIO).
func isUnmovable(err error) bool { return errors.Is(err, unix.EIO) }

func irqName(t Target) string { return path.Base(path.Dir(t.Path)) }
