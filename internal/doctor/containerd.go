package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

const (
	runtimeRT   = "io.containerd.rt.v2"
	runtimeRunc = "io.containerd.runc.v2"
	shimBinary  = "containerd-shim-rt-v2"
)

// containerdFile is one containerd config file looked at.
type containerdFile struct {
	Path     string
	Root     string // the file whose imports led here (Path itself for a top-level file)
	Required bool   // named on the command line, or a running daemon's --config: it must exist
	Present  bool
	Err      error
}

// runtimeEntry is one [...containerd.runtimes.<name>] table, wherever it sits: containerd
// 2.x (version 3) keeps them under "io.containerd.cri.v1.runtime", 1.x (version 2) under
// "io.containerd.grpc.v1.cri", and both are read by walking the tree rather than by path.
type runtimeEntry struct {
	File, Table, Name    string
	Root                 string // the top-level config file it comes from (see containerdFile.Root)
	Type, Path           string // runtime_type, runtime_path
	Options              map[string]any
	PodAnnotations       []string
	ContainerAnnotations []string
	shim                 int // index into env.shim of the rtshim config this runtime uses
}

// isRT reports whether containerd would run rtshim for this runtime: by type (resolving to
// containerd-shim-rt-v2) or by an explicit runtime_path to the binary.
func (r runtimeEntry) isRT() bool {
	return r.Type == runtimeRT || strings.HasSuffix(r.Path, shimBinary)
}

// loadContainerd reads the config file of every checked daemon, and the ones named with
// --containerd-config; the default file only if a checked daemon reads it or no checked daemon
// is known to run (then it is what containerd would read once started).
func (e *env) loadContainerd() {
	var paths []string
	if len(e.daemonsReading(e.defaultContainerdConfig())) > 0 || !slices.ContainsFunc(e.targets, func(d *daemon) bool { return d.PID > 0 }) {
		paths = append(paths, e.defaultContainerdConfig())
	}
	paths = append(paths, e.h.ContainerdConfigs...)
	for _, d := range e.targets {
		if d.PID > 0 {
			paths = append(paths, d.Config)
		}
	}
	seen := map[string]bool{}
	for _, p := range paths {
		e.loadContainerdFile(p, p, p != e.defaultContainerdConfig(), seen)
	}
}

func (e *env) loadContainerdFile(file, root string, required bool, seen map[string]bool) {
	if seen[file] {
		return
	}
	seen[file] = true
	cf := &containerdFile{Path: file, Root: root, Required: required}
	e.containerd = append(e.containerd, cf)
	data, err := readConfig(file)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return
	}
	cf.Present = err == nil
	var doc map[string]any
	if err == nil {
		_, err = toml.Decode(string(data), &doc)
	}
	if err != nil {
		cf.Err = err
		return
	}
	walkRuntimes(doc, nil, func(table []string, name string, t map[string]any) {
		r := runtimeEntry{File: file, Root: root, Table: tablePath(table), Name: name}
		r.Type, _ = t["runtime_type"].(string)
		r.Path, _ = t["runtime_path"].(string)
		r.Options, _ = t["options"].(map[string]any)
		r.PodAnnotations = stringList(t["pod_annotations"])
		r.ContainerAnnotations = stringList(t["container_annotations"])
		e.runtimes = append(e.runtimes, r)
	})
	// containerd merges the files named by imports (relative to this file, globs allowed).
	for _, imp := range stringList(doc["imports"]) {
		if !filepath.IsAbs(imp) {
			imp = filepath.Join(filepath.Dir(file), imp)
		}
		matches, _ := filepath.Glob(imp)
		for _, m := range matches {
			e.loadContainerdFile(m, root, false, seen)
		}
	}
}

// maxConfigSize bounds what is read: an imports glob can name anything, /dev/zero included.
const maxConfigSize = 4 << 20

func readConfig(file string) ([]byte, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > maxConfigSize {
		return nil, fmt.Errorf("not a regular file of at most %d bytes", maxConfigSize)
	}
	return os.ReadFile(file)
}

func walkRuntimes(m map[string]any, at []string, visit func(table []string, name string, t map[string]any)) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable order in the report
	for _, k := range keys {
		sub, ok := m[k].(map[string]any)
		if !ok {
			continue
		}
		here := append(append([]string{}, at...), k)
		if k == "runtimes" {
			names := make([]string, 0, len(sub))
			for n := range sub {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if t, ok := sub[n].(map[string]any); ok {
					visit(append(here, n), n, t)
				}
			}
			continue
		}
		walkRuntimes(sub, here, visit)
	}
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// tablePath writes a key path the way TOML spells it, quoting keys with dots.
func tablePath(keys []string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		if bareKey.MatchString(k) {
			parts[i] = k
		} else {
			parts[i] = strconv.Quote(k)
		}
	}
	return strings.Join(parts, ".")
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// passesAnnotation is CRI's filter: path.Match against each glob, as containerd does.
func passesAnnotation(globs []string, key string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, key); ok {
			return true
		}
	}
	return false
}

func (e *env) containerdRuntime() Finding {
	f := Finding{ID: "containerd.runtime", Title: "containerd rt runtime"}
	var files, broken []string
	for _, cf := range e.containerd {
		switch {
		case cf.Err != nil:
			broken = append(broken, fmt.Sprintf("%s: %v", cf.Path, cf.Err))
		case cf.Present:
			files = append(files, cf.Path)
		}
	}
	if len(broken) > 0 {
		f.Severity, f.Saw = Fail, "cannot read containerd config: "+strings.Join(broken, "; ")
		f.Why = "containerd does not start with a malformed config, and rtshim doctor cannot tell which runtimes it has."
		f.Fix = "Fix the file at the line named above (containerd config dump shows what containerd reads), or pass " +
			"the right file with --containerd-config."
		return f
	}
	f.Why = "Kubernetes (CRI) can only use runtimes named in containerd's config (a RuntimeClass's handler is the " +
		"table's name), and CRI copies into a container's spec only the annotations its pod_annotations and " +
		"container_annotations globs let through. ctr and Docker can name io.containerd.rt.v2 without any config."
	var rts, filtered []string
	for _, r := range e.runtimes {
		if !r.isRT() {
			continue
		}
		rts = append(rts, fmt.Sprintf("%s (runtime_type %s%s) in %s", r.Name, r.Type, ifSet(", runtime_path ", r.Path), r.File))
		if !passesAnnotation(r.PodAnnotations, "rtshim.io/policy") || !passesAnnotation(r.ContainerAnnotations, "rtshim.io/policy") {
			filtered = append(filtered, r.Table)
		}
	}
	switch {
	case len(rts) == 0:
		f.Severity = Info
		f.Saw = "no runtime with runtime_type " + runtimeRT + " or a runtime_path ending in " + shimBinary
		if len(files) == 0 {
			f.Saw += fmt.Sprintf(": no containerd config file (%s)", e.containerd[0].Path)
		} else {
			f.Saw += " in " + strings.Join(files, ", ")
		}
		f.Fix = "For Kubernetes, merge the runtime table of contrib/containerd/config.toml into containerd's config, " +
			"restart containerd, and create a RuntimeClass with handler: rt."
	case len(filtered) > 0:
		f.Severity = Warn
		f.Saw = "rt runtimes: " + strings.Join(rts, "; ") + "; rtshim.io/ annotations are dropped by CRI for " +
			strings.Join(filtered, ", ")
		f.Fix = `Add pod_annotations = ["rtshim.io/*"] and container_annotations = ["rtshim.io/*"] to those runtime ` +
			"tables and restart containerd."
	default:
		f.Severity = OK
		f.Saw = "rt runtimes: " + strings.Join(rts, "; ") + "; rtshim.io/ annotations pass"
	}
	return f
}

func ifSet(prefix, v string) string {
	if v == "" {
		return ""
	}
	return prefix + v
}
