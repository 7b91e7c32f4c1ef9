// Package version says which rtshim a binary is: the project's version and commit, stamped at
// build time (make build: -ldflags -X from git describe), and the containerd module it is
// built with, from the binary's build info. All three binaries print it for --version.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	// The containerd module's build info is what --version reports; linking this small package
	// (no dependencies of its own) keeps the module in the build info of binaries that use
	// nothing else of it (runc-rt, rtshim).
	_ "github.com/containerd/containerd/v2/version"
)

// Set with -ldflags "-X github.com/rtshim/rtshim/internal/version.Version=... -X ...Commit=...".
var (
	// Version is the project's version: hack/version.sh's output (the newest v* tag, and how
	// far past it). Empty in a plain go build: the build info's module version stands in.
	Version = ""
	// Commit is the git commit built. Empty in a plain go build: the build info's
	// vcs.revision stands in (when go build stamped it).
	Commit = ""
)

// ContainerdModule is the containerd module whose version Info reports.
const ContainerdModule = "github.com/containerd/containerd/v2"

// Info is what a binary says about its build.
type Info struct {
	Version    string // the project's version, "unknown" if neither stamped nor in the build info
	Commit     string // the git commit, "unknown" if not known
	Containerd string // the containerd module's version, "unknown" if not in the build info
	Go         string // the Go release that built it
}

// Get is this binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuild(bi, Version, Commit)
}

// fromBuild fills Info from the stamped values, falling back to the build info.
func fromBuild(bi *debug.BuildInfo, version, commit string) Info {
	i := Info{Version: version, Commit: commit, Containerd: "unknown", Go: runtime.Version()}
	if bi != nil {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = strings.TrimPrefix(bi.Main.Version, "v")
		}
		if i.Commit == "" {
			i.Commit = setting(bi, "vcs.revision")
			if i.Commit != "" && setting(bi, "vcs.modified") == "true" {
				i.Commit += "-dirty"
			}
		}
		for _, d := range bi.Deps {
			if d.Path != ContainerdModule {
				continue
			}
			i.Containerd = d.Version
			if d.Replace != nil {
				i.Containerd = fmt.Sprintf("%s (replaced by %s %s)", d.Version, d.Replace.Path, d.Replace.Version)
			}
		}
		if bi.GoVersion != "" {
			i.Go = bi.GoVersion
		}
	}
	if i.Version == "" {
		i.Version = "unknown"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
}

func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// Line is everything in Info on one line, naming the binary; runc-rt prints it before runc's own
// --version:
//
//	runc-rt version 0.1.0 (rtshim), commit 0123abcd..., containerd v2.2.9, go1.26.8
func (i Info) Line(binary string) string {
	return fmt.Sprintf("%s version %s (rtshim), commit %s, containerd %s, %s", binary, i.Version, i.Commit, i.Containerd, i.Go)
}

// Text is Info in runc's --version form, one "key: value" per line after the first:
//
//	rtshim version 0.1.0
//	commit: 0123abcd...
//	containerd: v2.2.9
//	go: go1.26.8
func (i Info) Text(binary string) string {
	return fmt.Sprintf("%s version %s\ncommit: %s\ncontainerd: %s\ngo: %s\n", binary, i.Version, i.Commit, i.Containerd, i.Go)
}

// Shim is Info in the form containerd's shim library prints for -v (Version, Revision, Go
// version; the shim's version and commit are rtshim's), plus the containerd module's version.
func (i Info) Shim(binary string) string {
	return fmt.Sprintf("%s:\n  Version:  %s\n  Revision: %s\n  Go version: %s\n  containerd: %s\n\n",
		binary, i.Version, i.Commit, i.Go, i.Containerd)
}
