package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// repo is the rtshim checkout this module sits in.
const repo = "../.."

// installed is what make install puts under DESTDIR with prefix: path (without the leading
// "/") → a check of the file's content. Every file of docs/ and contrib/ is there, so that a
// page or an example added there cannot be left out of the package.
func installed(t *testing.T, prefix string) map[string]func([]byte) bool {
	t.Helper()
	p := strings.TrimPrefix(prefix, "/")
	doc := p + "/share/doc/rtshim/"
	same := func(file string) func([]byte) bool {
		want, err := os.ReadFile(filepath.Join(repo, file))
		if err != nil {
			t.Fatal(err)
		}
		return func(b []byte) bool { return bytes.Equal(b, want) }
	}
	has := func(s ...string) func([]byte) bool {
		return func(b []byte) bool {
			return !slices.ContainsFunc(s, func(s string) bool { return !bytes.Contains(b, []byte(s)) })
		}
	}
	files := map[string]func([]byte) bool{
		p + "/bin/containerd-shim-rt-v2": has("\x7fELF"),
		p + "/bin/runc-rt":               has("\x7fELF"),
		p + "/bin/rtshim":                has("\x7fELF"),
		"etc/containerd/rtshim.toml":     same("contrib/rtshim.toml"),
		doc + "README.md":                same("README.md"),
		doc + "CHANGELOG.md":             same("CHANGELOG.md"),
		doc + "LICENSE":                  same("LICENSE"),
		doc + "rtshim.txt":               has("NAME\n    rtshim - ", "rtshim doctor"),
		doc + "runc-rt.txt":              has("NAME\n    runc-rt - ", "real runc"),
		doc + "containerd-shim-rt-v2.txt": has("containerd-shim-rt-v2 - ", "io.containerd.rt.v2",
			"Usage of containerd-shim-rt-v2:", "-namespace"),
	}
	// docs/ (less the benchmark report's temp files) and contrib/, whole; the examples in
	// contrib/ with the binaries' paths where this prefix puts them.
	for dir, to := range map[string]string{"docs": doc + "docs/", "contrib": doc + "examples/"} {
		err := filepath.WalkDir(filepath.Join(repo, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, ".tmp") {
				return err
			}
			rel, _ := filepath.Rel(filepath.Join(repo, dir), path)
			files[to+rel] = same(dir + "/" + rel)
			if dir == "contrib" {
				files[to+rel] = example(t, dir+"/"+rel, prefix)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// example checks an installed example: the file of the repository, its /usr/local/bin/ paths
// rewritten to the install's prefix, and, below /usr/local, no binary of ours outside it.
func example(t *testing.T, file, prefix string) func([]byte) bool {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repo, file))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.ReplaceAll(src, []byte("/usr/local/bin/"), []byte(prefix+"/bin/"))
	return func(b []byte) bool {
		if !bytes.Equal(b, want) {
			return false
		}
		for _, bin := range []string{"containerd-shim-rt-v2", "runc-rt", "rtshim"} {
			for _, dir := range []string{"/usr/local/bin/", "/usr/bin/", "/usr/sbin/"} {
				if dir != prefix+"/bin/" && bytes.Contains(b, []byte(dir+bin)) {
					t.Errorf("%s names %s%s, but the binaries are in %s/bin", file, dir, bin, prefix)
					return false
				}
			}
		}
		return true
	}
}

// checkTree compares the regular files under root with want, file by file: content, and mode
// 0755 for bin/, 0644 for the rest.
func checkTree(t *testing.T, root string, want map[string]func([]byte) bool) {
	t.Helper()
	got := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		got[rel] = true
		check, ok := want[rel]
		if !ok {
			t.Errorf("unexpected file %s", rel)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.Contains(rel, "/bin/") {
			mode = 0o755
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want a regular file with %v", rel, fi.Mode(), mode)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !check(b) {
			t.Errorf("%s: wrong content", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel := range want {
		if !got[rel] {
			t.Errorf("missing %s", rel)
		}
	}
}

// stamp is what the binaries must say about themselves: the version and commit make stamps
// (hack/version.sh, git rev-parse HEAD) and the containerd module of the root go.mod.
type stamp struct{ version, commit, containerd string }

func wantStamp(t *testing.T, version string) stamp {
	t.Helper()
	b := stamp{version: version, commit: strings.TrimSpace(run(t, "git", "-C", repo, "rev-parse", "HEAD"))}
	if b.version == "" {
		b.version = strings.TrimSpace(run(t, "bash", filepath.Join(repo, "hack/version.sh")))
	}
	mod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mod)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/containerd/containerd/v2" {
			b.containerd = f[1]
		}
	}
	if b.containerd == "" {
		t.Fatal("go.mod does not require github.com/containerd/containerd/v2")
	}
	return b
}

// runBinaries runs the installed binaries' help and version.
func runBinaries(t *testing.T, bin string, want stamp) {
	t.Helper()
	// runc-rt hands --version to the real runc: a fake one, and no host config.
	fake := t.TempDir()
	runc := filepath.Join(fake, "runc")
	const runcVersion = "runc version 9.9.9\ncommit: v9.9.9-0-g0000000\nspec: 1.2.1\ngo: go1.26.8\nlibseccomp: 2.5.4\n"
	if err := os.WriteFile(runc, []byte("#!/bin/sh\nprintf '"+strings.ReplaceAll(runcVersion, "\n", "\\n")+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fake, "rtshim.toml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "RTSHIM_RUNC="+runc, "RTSHIM_CONFIG="+filepath.Join(fake, "rtshim.toml"))
	shimVersion := "containerd-shim-rt-v2:\n  Version:  " + want.version + "\n  Revision: " + want.commit + "\n"
	for _, c := range []struct {
		args         []string
		want, stderr string // stdout contains want; stderr is stderr exactly, unless "-"
	}{
		{[]string{"runc-rt", "--help"}, "runc's own commands and flags are passed through", "-"},
		{[]string{"rtshim", "--help"}, "rtshim doctor", "-"},
		{[]string{"containerd-shim-rt-v2", "-v"}, shimVersion + "  Go version: ", ""},
		{[]string{"containerd-shim-rt-v2", "--version"}, shimVersion + "  Go version: ", ""},
		{[]string{"containerd-shim-rt-v2", "-v"}, "\n  containerd: " + want.containerd + "\n", ""},
		{[]string{"rtshim", "--version"}, "rtshim version " + want.version + "\ncommit: " + want.commit +
			"\ncontainerd: " + want.containerd + "\ngo: go", ""},
		// runc's output unchanged on stdout, rtshim's line before it on stderr.
		{[]string{"runc-rt", "--version"}, runcVersion, "runc-rt version " + want.version + " (rtshim), commit " + want.commit +
			", containerd " + want.containerd + ", " + runtime.Version() + "\n"},
	} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(filepath.Join(bin, c.args[0]), c.args[1:]...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
		err := cmd.Run()
		if err != nil || !strings.Contains(stdout.String(), c.want) || c.stderr != "-" && stderr.String() != c.stderr {
			t.Errorf("%s: %v\nwant %q in stdout:\n%s\nwant stderr %q:\n%s", strings.Join(c.args, " "), err, c.want, &stdout, c.stderr, &stderr)
		}
	}
	out, _ := exec.Command(filepath.Join(bin, "runc-rt"), "--version").Output()
	if string(out) != "" && !strings.HasPrefix(string(out), "runc version ") {
		t.Errorf("runc-rt --version's stdout must start as runc's does (go-runc parses it): %q", out)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	// A make that runs this test passes its command line (PREFIX=..., DESTDIR=...) to every
	// make below it through MAKEFLAGS: the make install under test must get only ours.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=") || strings.HasPrefix(kv, "MAKELEVEL=")
	})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestInstall: make install with the default PREFIX into a DESTDIR puts exactly the expected
// files there, the binaries run, and a second make install keeps a changed config.
func TestInstall(t *testing.T) {
	dest := t.TempDir()
	run(t, "make", "-C", repo, "--no-print-directory", "install", "DESTDIR="+dest)
	checkTree(t, dest, installed(t, "/usr/local"))
	runBinaries(t, filepath.Join(dest, "usr/local/bin"), wantStamp(t, ""))

	conf := filepath.Join(dest, "etc/containerd/rtshim.toml")
	if err := os.WriteFile(conf, []byte("# the operator's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, "make", "-C", repo, "--no-print-directory", "install", "DESTDIR="+dest)
	if b, _ := os.ReadFile(conf); string(b) != "# the operator's\n" || !strings.Contains(out, "keeping "+conf) {
		t.Errorf("a second make install replaced the config: %q\n%s", b, out)
	}
}

// debPath is the .deb that make test-package built, or skips.
func debPath(t *testing.T) string {
	deb := os.Getenv("RTSHIM_DEB")
	if deb == "" {
		t.Skip("RTSHIM_DEB is not set: run make test-package")
	}
	return deb
}

// TestDeb: the .deb's control fields, its files (those of make install with PREFIX=/usr, owned
// by root), the config as its only conffile; apt-get accepts it for the host.
func TestDeb(t *testing.T) {
	deb := debPath(t)
	fields := run(t, "dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Depends", "Recommends", "Suggests")
	want := "Package: rtshim\nVersion: " + os.Getenv("RTSHIM_PKG_VERSION") + "\nArchitecture: " +
		strings.TrimSpace(run(t, "dpkg", "--print-architecture")) + "\nRecommends: runc\nSuggests: podman\n"
	if fields != want {
		t.Errorf("control fields:\n%s\nwant:\n%s", fields, want)
	}
	// The description names where the package puts things, and nothing of /usr/local.
	desc := run(t, "dpkg-deb", "--field", deb, "Description")
	for _, s := range []string{"/usr/bin/containerd-shim-rt-v2", "/usr/bin/runc-rt", "/usr/share/doc/rtshim/examples", "containerd 2.0 or later"} {
		if !strings.Contains(desc, s) {
			t.Errorf("description does not name %s:\n%s", s, desc)
		}
	}
	if strings.Contains(desc, "/usr/local") {
		t.Errorf("description names /usr/local, where the package installs nothing:\n%s", desc)
	}
	if c := run(t, "dpkg-deb", "--info", deb, "conffiles"); c != "/etc/containerd/rtshim.toml\n" {
		t.Errorf("conffiles: %q, want only /etc/containerd/rtshim.toml", c)
	}
	for line := range strings.Lines(run(t, "dpkg-deb", "--contents", deb)) {
		if f := strings.Fields(line); len(f) < 2 || f[1] != "root/root" {
			t.Errorf("not owned by root/root: %s", line)
		}
	}
	x := t.TempDir()
	run(t, "dpkg-deb", "--extract", deb, x)
	checkTree(t, x, installed(t, "/usr"))
	runBinaries(t, filepath.Join(x, "usr/bin"), wantStamp(t, os.Getenv("RTSHIM_PKG_VERSION")))

	// Against the host's package database, changing nothing.
	abs, err := filepath.Abs(deb)
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "apt-get", "install", "--simulate", "--no-install-recommends", abs)
	if !strings.Contains(out, "\nInst rtshim (") || !strings.Contains(out, "\nConf rtshim (") {
		t.Errorf("apt-get install --simulate %s:\n%s", deb, out)
	}
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "Inst ") || strings.HasPrefix(line, "Conf ") {
			t.Logf("apt-get install --simulate: %s", strings.TrimSpace(line))
		}
	}
}

// TestDpkgInstall installs the .deb for real with dpkg into an empty root (the package has no
// maintainer scripts, which is what makes --root safe): installed, upgraded over an operator's
// changed config (kept), removed (config kept), purged (config gone).
func TestDpkgInstall(t *testing.T) {
	deb := debPath(t)
	if os.Geteuid() != 0 {
		t.Skip("dpkg needs root to install files owned by root")
	}
	root := t.TempDir()
	for _, d := range []string{"info", "updates", "triggers"} {
		if err := os.MkdirAll(filepath.Join(root, "var/lib/dpkg", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"status", "available"} {
		if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := func(args ...string) {
		run(t, "dpkg", append([]string{"--root=" + root, "--log=" + filepath.Join(root, "dpkg.log")}, args...)...)
	}
	status := func() string {
		out, _ := exec.Command("dpkg-query", "--root="+root, "--showformat=${Status}", "--show", "rtshim").Output()
		return string(out)
	}
	conf := filepath.Join(root, "etc/containerd/rtshim.toml")

	dpkg("--install", deb)
	if s := status(); s != "install ok installed" {
		t.Fatalf("after dpkg --install: status %q", s)
	}
	runBinaries(t, filepath.Join(root, "usr/bin"), wantStamp(t, os.Getenv("RTSHIM_PKG_VERSION")))

	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	changed := string(b) + "\n# the operator's\n"
	if err := os.WriteFile(conf, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg("--force-confold", "--install", deb)
	if b, _ := os.ReadFile(conf); string(b) != changed {
		t.Errorf("upgrade replaced the operator's config")
	}

	dpkg("--remove", "rtshim")
	if s := status(); s != "deinstall ok config-files" {
		t.Errorf("after dpkg --remove: status %q", s)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/runc-rt")); !os.IsNotExist(err) {
		t.Errorf("after dpkg --remove: runc-rt still there (%v)", err)
	}
	if b, _ := os.ReadFile(conf); string(b) != changed {
		t.Errorf("dpkg --remove did not keep the config")
	}
	dpkg("--purge", "rtshim")
	if _, err := os.Stat(conf); !os.IsNotExist(err) {
		t.Errorf("after dpkg --purge: %s still there (%v)", conf, err)
	}
}
