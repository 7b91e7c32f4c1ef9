package cgroupfix

import (
	"fmt"
	"path"
	"strings"

	"github.com/containerd/errdefs"
)

// ResolvePath turns an OCI linux.cgroupsPath into a cgroup path ("/a/b") for runc's cgroup
// driver: systemd's paths have the form "slice:prefix:name", cgroupfs paths are absolute. A
// path of the other driver's form is refused (runc would misplace the container). The result
// never leaves the hierarchy: ".." components and relative paths are refused rather than
// cleaned away, since a path that needs cleaning was not written by containerd, CRI or Docker.
func ResolvePath(cgroupsPath string, systemd bool) (string, error) {
	invalid := func(why string) error {
		return fmt.Errorf("%w: linux.cgroupsPath=%q: %s", errdefs.ErrInvalidArgument, truncate(cgroupsPath), why)
	}
	if cgroupsPath == "" {
		return "", invalid("empty; rtshim needs the container's cgroup to grant an RT budget")
	}
	if strings.ContainsAny(cgroupsPath, "\x00\n") {
		return "", invalid("contains a NUL or newline")
	}
	systemdForm := !strings.HasPrefix(cgroupsPath, "/") && strings.Count(cgroupsPath, ":") == 2
	switch {
	case systemd && systemdForm:
		return systemdPath(cgroupsPath, invalid)
	case systemd:
		return "", invalid("the runc runtime uses the systemd cgroup driver, which takes \"slice:prefix:name\"")
	case systemdForm:
		return "", invalid("is a systemd \"slice:prefix:name\" path, but the runc runtime uses the cgroupfs driver " +
			"(set SystemdCgroup in the runc options, or systemd_cgroup in rtshim's [runc] table)")
	case !strings.HasPrefix(cgroupsPath, "/"):
		return "", invalid("must be an absolute path (\"/parent/name\") for the cgroupfs driver")
	}
	for _, c := range strings.Split(cgroupsPath, "/") {
		if c == ".." || c == "." {
			return "", invalid("must not contain \".\" or \"..\"")
		}
	}
	p := path.Clean(cgroupsPath)
	if p == "/" {
		return "", invalid("is the root cgroup; a container needs a cgroup of its own")
	}
	return p, nil
}

// systemdPath expands "slice:prefix:name" the way runc's systemd driver names the unit:
// slice "a-b-c.slice" lives at /a.slice/a-b.slice/a-b-c.slice, the unit is prefix-name.scope.
func systemdPath(p string, invalid func(string) error) (string, error) {
	parts := strings.SplitN(p, ":", 3)
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	dir, err := expandSlice(slice)
	if err != nil {
		return "", invalid(err.Error())
	}
	if name == "" || strings.ContainsAny(name, "/") || strings.ContainsAny(prefix, "/") {
		return "", invalid("systemd unit name and prefix must be non-empty and contain no \"/\"")
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if prefix != "" {
			unit = prefix + "-" + name
		}
		unit += ".scope"
	}
	return path.Join(dir, unit), nil
}

func expandSlice(slice string) (string, error) {
	base, ok := strings.CutSuffix(slice, ".slice")
	if !ok || base == "" || strings.Contains(base, "/") || strings.HasPrefix(base, "-") ||
		strings.HasSuffix(base, "-") || strings.Contains(base, "--") {
		return "", fmt.Errorf("invalid systemd slice %q", truncate(slice))
	}
	if base == "-" || slice == "-.slice" {
		return "/", nil
	}
	var b strings.Builder
	prefix := ""
	for _, comp := range strings.Split(base, "-") {
		prefix += comp
		b.WriteString("/" + prefix + ".slice")
		prefix += "-"
	}
	return b.String(), nil
}

// Ancestors returns the cgroups from the root's child down to cg's parent: "/a/b/c" gives
// ["/a", "/a/b"].
func Ancestors(cg string) []string {
	var out []string
	for p := path.Dir(cg); p != "/" && p != "."; p = path.Dir(p) {
		out = append([]string{p}, out...)
	}
	return out
}

func truncate(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}
