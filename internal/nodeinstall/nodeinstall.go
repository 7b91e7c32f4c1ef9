// Package nodeinstall puts rtshim on a Kubernetes node from inside a privileged pod (the
// DaemonSet of contrib/kubernetes/install/), and takes it off again: it copies the binaries and
// the default config onto the node, adds the rt runtimes to containerd's configuration with a
// drop-in file that containerd imports, and records what it added so that Uninstall removes
// exactly that. It never changes or removes a file it did not create, and restarts nothing:
// containerd loads the runtimes when the operator restarts it.
package nodeinstall

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Options say where things are. Node paths (BinDir, ConfigDir) are as the node sees them;
// the installer reaches them under HostRoot, where the pod mounts them.
type Options struct {
	HostRoot  string // where the node's paths are mounted in the pod, e.g. /host
	BinDir    string // node path for the binaries: /usr/local/bin
	ConfigDir string // node path of containerd's config directory: /etc/containerd
	Source    string // the image's payload: bin/<binaries>, rtshim.toml, containerd-rt.toml
	Log       io.Writer
}

// Binaries are the files of Source/bin that go into BinDir.
var Binaries = []string{"containerd-shim-rt-v2", "runc-rt", "rtshim"}

const (
	// dropInName is the drop-in in ConfigDir/conf.d, the directory containerd ≥ 2.1 imports by
	// default; for older daemons the installer adds an import of it to config.toml.
	dropInName = "conf.d/rtshim.toml"
	// recordName, in ConfigDir, lists what Install added.
	recordName = "rtshim-install.json"
)

// record is what Install added, so Uninstall can take exactly that away.
type record struct {
	Files      []string `json:"files"`                 // node paths of files it created
	ImportLine string   `json:"import_line,omitempty"` // the line it added to config.toml
	Dirs       []string `json:"dirs,omitempty"`        // directories it created
}

func (o Options) host(nodePath string) string { return filepath.Join(o.HostRoot, nodePath) }

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Install copies the binaries and the default config (each only where no file is) and the
// containerd drop-in, and makes containerd import it. Running it again updates its own files.
func Install(o Options) error {
	rec, err := o.load()
	if err != nil {
		return err
	}
	copies := map[string]string{ // node path → source
		filepath.Join(o.ConfigDir, "rtshim.toml"): filepath.Join(o.Source, "rtshim.toml"),
		filepath.Join(o.ConfigDir, dropInName):    filepath.Join(o.Source, "containerd-rt.toml"),
	}
	for _, b := range Binaries {
		copies[filepath.Join(o.BinDir, b)] = filepath.Join(o.Source, "bin", b)
	}
	if err := o.mkdirs(&rec, o.ConfigDir); err != nil {
		return err
	}
	for _, dst := range slices.Sorted(maps.Keys(copies)) {
		ours := slices.Contains(rec.Files, dst)
		if _, err := os.Lstat(o.host(dst)); err == nil && !ours {
			o.logf("keeping %s: it was there before (not installed by rtshim-node-install)", dst)
			continue
		}
		if err := o.mkdirs(&rec, filepath.Dir(dst)); err != nil {
			return err
		}
		if !ours {
			rec.Files = append(rec.Files, dst)
		}
		if err := o.save(rec); err != nil {
			return err
		}
		if err := copyFile(copies[dst], o.host(dst)); err != nil {
			return err
		}
		o.logf("installed %s", dst)
	}
	if err := o.addImport(&rec); err != nil {
		return err
	}
	return o.save(rec)
}

// Uninstall removes every file and directory Install created and the import line it added;
// files it did not create stay. It is a no-op when nothing is installed.
func Uninstall(o Options) error {
	rec, err := o.load()
	if err != nil {
		return err
	}
	if rec.ImportLine != "" {
		if err := o.removeImport(rec.ImportLine); err != nil {
			return err
		}
		rec.ImportLine = ""
	}
	for _, f := range rec.Files {
		if err := os.Remove(o.host(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		o.logf("removed %s", f)
	}
	if err := os.Remove(o.host(filepath.Join(o.ConfigDir, recordName))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	slices.Reverse(rec.Dirs) // deepest first
	for _, d := range rec.Dirs {
		if err := os.Remove(o.host(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			o.logf("keeping directory %s: %v", d, err)
		}
	}
	return nil
}

// mkdirs creates dir (a node path) and its missing parents, recording each.
func (o Options) mkdirs(rec *record, dir string) error {
	if _, err := os.Stat(o.host(dir)); err == nil {
		return nil
	}
	if err := o.mkdirs(rec, filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(o.host(dir), 0o755); err != nil {
		return err
	}
	rec.Dirs = append(rec.Dirs, dir)
	return nil
}

// addImport makes containerd's config.toml import the drop-in, unless it already does. A
// config.toml with its own imports list is not edited: containerd ≥ 2.1 imports conf.d anyway;
// for older daemons the operator adds the path.
func (o Options) addImport(rec *record) error {
	if rec.ImportLine != "" {
		return nil
	}
	path := o.host(filepath.Join(o.ConfigDir, "config.toml"))
	glob := filepath.Join(o.ConfigDir, "conf.d", "*.toml")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// No config: containerd runs on its defaults; a file of just these lines keeps them.
		rec.ImportLine = fmt.Sprintf("imports = [%s]", strconv.Quote(glob))
		rec.Files = append(rec.Files, filepath.Join(o.ConfigDir, "config.toml"))
		o.logf("created %s importing %s", filepath.Join(o.ConfigDir, "config.toml"), glob)
		return writeAtomic(path, []byte("version = 3\n"+rec.ImportLine+"\n"), 0o644)
	}
	if err != nil {
		return err
	}
	var cfg struct {
		Imports []string `toml:"imports"`
	}
	if _, err := toml.Decode(string(b), &cfg); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(o.ConfigDir, "config.toml"), err)
	}
	dropIn := filepath.Join(o.ConfigDir, dropInName)
	for _, imp := range cfg.Imports {
		if ok, _ := filepath.Match(imp, dropIn); ok || imp == dropIn {
			return nil
		}
	}
	if cfg.Imports != nil {
		o.logf("%s has its own imports: containerd >= 2.1 imports %s anyway; for containerd 2.0 add %q to them",
			filepath.Join(o.ConfigDir, "config.toml"), glob, glob)
		return nil
	}
	// A top-level key must come before the first table: right after `version = ...`.
	lines := strings.SplitAfter(string(b), "\n")
	at := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "version") })
	rec.ImportLine = fmt.Sprintf("imports = [%s] # added by rtshim-node-install", strconv.Quote(glob))
	if at >= 0 && !strings.HasSuffix(lines[at], "\n") {
		lines[at] += "\n"
	}
	lines = slices.Insert(lines, at+1, rec.ImportLine+"\n")
	o.logf("added to %s: %s", filepath.Join(o.ConfigDir, "config.toml"), rec.ImportLine)
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return writeAtomic(path, []byte(strings.Join(lines, "")), st.Mode().Perm())
}

// removeImport takes the line addImport added out of config.toml, wherever it is now.
func (o Options) removeImport(line string) error {
	path := o.host(filepath.Join(o.ConfigDir, "config.toml"))
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(b), "\n")
	i := slices.Index(lines, line+"\n")
	if i < 0 {
		o.logf("%s no longer has the line %q; leaving it as it is", filepath.Join(o.ConfigDir, "config.toml"), line)
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	o.logf("removed from %s: %s", filepath.Join(o.ConfigDir, "config.toml"), line)
	return writeAtomic(path, []byte(strings.Join(slices.Delete(lines, i, i+1), "")), st.Mode().Perm())
}

func (o Options) load() (record, error) {
	var rec record
	b, err := os.ReadFile(o.host(filepath.Join(o.ConfigDir, recordName)))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w (remove it to start over)", filepath.Join(o.ConfigDir, recordName), err)
	}
	return rec, nil
}

// save writes the record, before each change is done, so that an interrupted install can be
// uninstalled.
func (o Options) save(rec record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(o.host(filepath.Join(o.ConfigDir, recordName)), append(b, '\n'), 0o644)
}

// copyFile copies src to dst atomically, with src's permissions. It streams: the pod's memory
// limit is small, and the binaries are tens of megabytes.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	tmp := dst + ".rtshim-tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync() // written back before the rename, not left dirty in the pod's memory
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, st.Mode().Perm())
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// writeAtomic writes path through a temp file and a rename: a reader (containerd starting, a
// shim being exec'd) sees the old or the new file, never half of one.
func writeAtomic(path string, b []byte, perm fs.FileMode) error {
	tmp := path + ".rtshim-tmp"
	if err := os.WriteFile(tmp, b, perm); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
