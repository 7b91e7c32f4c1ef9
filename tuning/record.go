package tuning

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/statefile"
	"github.com/rtshim/rtshim/oci"
)

// Holder is one container's tuning: written before anything is changed for it, removed after
// everything was given back.
type Holder struct {
	Namespace string     `json:"namespace"`
	ID        string     `json:"id"`
	Tuning    oci.Tuning `json:"tuning"`
	// Leaf is the container's cgroup in the cpuset hierarchy, known once it was created.
	Leaf  string          `json:"leaf,omitempty"`
	Owner cgroupfix.Owner `json:"owner"`
	// Applied: the host was tuned for it (the files' values count it). Releasing: it is being
	// given back (they no longer do); a crash in between leaves it for the next lifecycle.
	Applied   bool `json:"applied,omitempty"`
	Releasing bool `json:"releasing,omitempty"`
}

func (h *Holder) name() string { return h.Namespace + "/" + h.ID }

// active says whether the host's values count this holder.
func (h *Holder) active() bool { return h.Applied && !h.Releasing }

// Baseline is what a file held before rtshim first changed it.
type Baseline struct {
	Target
	Value string `json:"value"`
}

// records is the tuning part of the state dir.
type records struct{ dir string }

func (r records) holderPath(ns, id string) string {
	return filepath.Join(r.dir, "tuning", cgroupfix.RecordName(ns, id)+".json")
}

func (r records) baselinePath(t Target) string {
	return filepath.Join(r.dir, "tuning-baselines", strings.ReplaceAll(url.PathEscape(t.Kind+":"+t.Path), ".", "%2E")+".json")
}

func (r records) saveHolder(h *Holder) error {
	return statefile.WriteJSON(r.holderPath(h.Namespace, h.ID), h)
}

func (r records) deleteHolder(h *Holder) error {
	return statefile.Remove(r.holderPath(h.Namespace, h.ID))
}

// loadHolder returns nil, nil when the container holds no tuning.
func (r records) loadHolder(ns, id string) (*Holder, error) {
	var h Holder
	ok, err := statefile.ReadJSON(r.holderPath(ns, id), &h)
	if !ok || err != nil {
		return nil, err
	}
	return &h, nil
}

// holders lists every holder. A record that cannot be read is an error: what it holds is
// unknown, so no value it might stand for may be given back.
func (r records) holders() ([]*Holder, error) {
	var out []*Holder
	err := r.each("tuning", func(p string) error {
		var h Holder
		if _, err := statefile.ReadJSON(p, &h); err != nil {
			return err
		}
		out = append(out, &h)
		return nil
	})
	return out, err
}

func (r records) baselines() ([]*Baseline, error) {
	var out []*Baseline
	err := r.each("tuning-baselines", func(p string) error {
		var b Baseline
		if _, err := statefile.ReadJSON(p, &b); err != nil {
			return err
		}
		out = append(out, &b)
		return nil
	})
	return out, err
}

func (r records) each(sub string, f func(path string) error) error {
	ents, err := os.ReadDir(filepath.Join(r.dir, sub))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			errs = append(errs, f(filepath.Join(r.dir, sub, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// recordBaseline keeps the first value rtshim saw; it reports whether it wrote the record.
func (r records) recordBaseline(t Target, value string) (bool, error) {
	p := r.baselinePath(t)
	if _, err := os.Stat(p); err == nil {
		return false, nil
	}
	return true, statefile.WriteJSON(p, &Baseline{Target: t, Value: value})
}

func (r records) loadBaseline(t Target) (*Baseline, error) {
	var b Baseline
	ok, err := statefile.ReadJSON(r.baselinePath(t), &b)
	if !ok || err != nil {
		return nil, err
	}
	return &b, nil
}

func (r records) deleteBaseline(t Target) error { return statefile.Remove(r.baselinePath(t)) }

// HasRecords reports whether any container's tuning is recorded in stateDir: a host that never
// tuned anything needs no tuning manager to give something back.
func HasRecords(stateDir string) bool {
	for _, sub := range []string{"tuning", "tuning-baselines"} {
		if ents, err := os.ReadDir(filepath.Join(stateDir, sub)); err == nil && len(ents) > 0 {
			return true
		}
	}
	return false
}

// WriteHolderForTest records h in stateDir as Reserve and Apply leave it, for the tests of
// rtshim status and doctor.
func WriteHolderForTest(stateDir string, h *Holder) error {
	return records{dir: stateDir}.saveHolder(h)
}
