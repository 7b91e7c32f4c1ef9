// package builds rtshim's .deb from a tree staged by `make install DESTDIR=<root> PREFIX=/usr`
// (`make package` does both), with nfpm as a library: every file of the tree goes in at its
// path and mode, owned by root; the files under etc/ are conffiles.
//
// It is a module of its own so that nfpm's dependencies (go-git, OpenPGP, sprig, ...) never
// enter the root module's go.mod, where minimal version selection would upgrade modules the
// shim links (golang.org/x/net, x/sys, ...) for a build tool's sake.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// description: the synopsis, then the long description (nfpm indents it for the control file;
// an empty line separates paragraphs).
const description = `real-time scheduling for containers
rtshim gives containers real-time scheduling (SCHED_FIFO, SCHED_RR,
SCHED_DEADLINE) on demand: on cgroup v1 hosts with RT group scheduling it
grants each RT container's cgroup, and its ancestors, an RT budget and gives
it back afterwards; it sets the policy before the container's program runs
and lifts the CFS quota that would throttle its other threads.

/usr/bin/containerd-shim-rt-v2 is the containerd shim (runtime type
io.containerd.rt.v2) for containerd 2.0 or later: Kubernetes RuntimeClass,
ctr, Docker 29 or later. containerd 1.x, such as Debian 12's containerd
package (1.6), cannot start it. /usr/bin/runc-rt is a runc-compatible
wrapper for engines that run a runc binary: Docker path runtimes (any
version), Podman, CRI-O. rtshim doctor checks whether a host is ready;
rtshim status lists the RT containers. The host config is
/etc/containerd/rtshim.toml; examples that name these paths are in
/usr/share/doc/rtshim/examples.`

func main() {
	root := flag.String("root", "", "the staged tree (make install DESTDIR=...)")
	out := flag.String("o", "", "the .deb to write")
	version := flag.String("version", "", "the package version (Debian syntax)")
	arch := flag.String("arch", runtime.GOARCH, "the Debian architecture of the binaries")
	flag.Parse()
	if *root == "" || *out == "" || *version == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: package -root DIR -o FILE.deb -version VERSION [-arch ARCH]")
		os.Exit(2)
	}
	if err := build(*root, *out, *version, *arch); err != nil {
		fmt.Fprintf(os.Stderr, "package: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(*out)
}

func build(root, out, version, arch string) error {
	mtime, err := sourceDate()
	if err != nil {
		return err
	}
	contents, err := treeContents(root, mtime)
	if err != nil {
		return err
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "rtshim",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none", // the version is already Debian's: no semver rewriting
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "rtshim developers <rtshim@users.noreply.github.com>",
		Homepage:      "https://github.com/rtshim/rtshim",
		License:       "Apache-2.0",
		Description:   description,
		MTime:         mtime,
		Overridables: nfpm.Overridables{
			// The binaries are static. runc is what the shim and runc-rt run. Neither
			// containerd nor docker.io is suggested: Debian's containerd (1.6 in Debian 12,
			// and docker.io depends on it) cannot start the shim. Podman runs runc-rt.
			Recommends: []string{"runc"},
			Suggests:   []string{"podman"},
			Contents:   contents,
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return err
	}
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

// treeContents lists every regular file under root, at its path below root.
func treeContents(root string, mtime time.Time) (files.Contents, error) {
	var contents files.Contents
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: only regular files can be packaged", path)
		}
		c := &files.Content{
			Source:      path,
			Destination: "/" + filepath.ToSlash(rel),
			FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: fi.Mode().Perm(), MTime: mtime},
		}
		if strings.HasPrefix(rel, "etc/") {
			c.Type = files.TypeConfigNoReplace
		}
		contents = append(contents, c)
		return nil
	})
	if err == nil && len(contents) == 0 {
		err = fmt.Errorf("%s: no files", root)
	}
	return contents, err
}

// sourceDate is $SOURCE_DATE_EPOCH (reproducible builds), or now.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}
