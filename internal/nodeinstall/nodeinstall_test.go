package nodeinstall

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tree is every file and directory under root: relative path → content ("<dir>" for one).
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			out[rel] = "<dir>"
			return nil
		}
		b, err := os.ReadFile(path)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// options is an image payload and an empty node root in temp dirs.
func options(t *testing.T) Options {
	src := t.TempDir()
	for _, b := range Binaries {
		write(t, filepath.Join(src, "bin", b), "binary "+b)
	}
	write(t, filepath.Join(src, "rtshim.toml"), "# rtshim config\n")
	write(t, filepath.Join(src, "containerd-rt.toml"), "version = 3\n# runtimes\n")
	var log strings.Builder
	t.Cleanup(func() { t.Log(log.String()) })
	return Options{HostRoot: t.TempDir(), BinDir: "/usr/local/bin", ConfigDir: "/etc/containerd", Source: src, Log: &log}
}

const mainConfig = "# the node's config\nversion = 3\n\n[plugins.\"io.containerd.cri.v1.runtime\"]\n  restrict_oom_score_adj = true\n"

func TestInstallUninstall(t *testing.T) {
	for _, tc := range []struct {
		name       string
		config     string // containerd's config.toml before; "" for none
		wantImport bool   // config.toml gets an imports line
	}{
		{"config without imports", mainConfig, true},
		{"no config", "", true},
		{"config importing conf.d", "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n", false},
		{"config with other imports", "version = 3\nimports = [\"/etc/other.toml\"]\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options(t)
			write(t, o.host("/usr/local/bin/other-tool"), "someone else's")
			if tc.config != "" {
				write(t, o.host("/etc/containerd/config.toml"), tc.config)
			}
			before := tree(t, o.HostRoot)
			for range 2 { // the second install changes nothing
				if err := Install(o); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range Binaries {
				if got := tree(t, o.HostRoot)["usr/local/bin/"+b]; got != "binary "+b {
					t.Errorf("%s: %q", b, got)
				}
			}
			after := tree(t, o.HostRoot)
			if after["etc/containerd/conf.d/rtshim.toml"] != "version = 3\n# runtimes\n" || after["etc/containerd/rtshim.toml"] != "# rtshim config\n" {
				t.Errorf("drop-in or config not installed: %v", slices.Sorted(maps.Keys(after)))
			}
			cfg := after["etc/containerd/config.toml"]
			if got := strings.Contains(cfg, `imports = ["/etc/containerd/conf.d/*.toml"]`); got != (tc.wantImport || strings.Contains(tc.config, "conf.d")) {
				t.Errorf("config.toml after install:\n%s", cfg)
			}
			if tc.wantImport && tc.config != "" {
				// The line goes right after `version`, before the first table, and nothing else changes.
				want := strings.Replace(tc.config, "version = 3\n", "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"] # added by rtshim-node-install\n", 1)
				if cfg != want {
					t.Errorf("config.toml after install:\n%s\nwant:\n%s", cfg, want)
				}
			}
			if err := Uninstall(o); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, o.HostRoot); !maps.Equal(got, before) {
				t.Errorf("after uninstall:\n%v\nbefore install:\n%v", got, before)
			}
			if err := Uninstall(o); err != nil {
				t.Errorf("second uninstall: %v", err)
			}
		})
	}
}

// A file that was there before (a hand install) is neither overwritten nor removed.
func TestKeepsForeignFiles(t *testing.T) {
	o := options(t)
	write(t, o.host("/etc/containerd/rtshim.toml"), "# the operator's\n")
	write(t, o.host("/usr/local/bin/runc-rt"), "hand-installed")
	write(t, o.host("/etc/containerd/config.toml"), mainConfig)
	before := tree(t, o.HostRoot)
	if err := Install(o); err != nil {
		t.Fatal(err)
	}
	after := tree(t, o.HostRoot)
	if after["etc/containerd/rtshim.toml"] != "# the operator's\n" || after["usr/local/bin/runc-rt"] != "hand-installed" {
		t.Errorf("foreign files overwritten: %q %q", after["etc/containerd/rtshim.toml"], after["usr/local/bin/runc-rt"])
	}
	// The operator edits config.toml meanwhile: uninstall takes only its own line out.
	cfg := o.host("/etc/containerd/config.toml")
	b, _ := os.ReadFile(cfg)
	write(t, cfg, string(b)+"# edited\n")
	before["etc/containerd/config.toml"] += "# edited\n"
	if err := Uninstall(o); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, o.HostRoot); !maps.Equal(got, before) {
		t.Errorf("after uninstall:\n%v\nwant:\n%v", got, before)
	}
}

func TestCorruptRecord(t *testing.T) {
	o := options(t)
	write(t, o.host("/etc/containerd/"+recordName), "{not json")
	if err := Install(o); err == nil || !strings.Contains(err.Error(), recordName) {
		t.Errorf("Install with a corrupt record: %v, want an error naming it", err)
	}
	if err := Uninstall(o); err == nil {
		t.Error("Uninstall with a corrupt record: no error")
	}
}
