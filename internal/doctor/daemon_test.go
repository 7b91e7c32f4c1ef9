package doctor

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	versionapi "github.com/containerd/containerd/api/services/version/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

type fakeVersion struct {
	versionapi.UnimplementedVersionServer
	version string
}

func (f fakeVersion) Version(context.Context, *emptypb.Empty) (*versionapi.VersionResponse, error) {
	return &versionapi.VersionResponse{Version: f.version, Revision: "0123abcd"}, nil
}

// serveVersion serves containerd's version API on a socket and returns its path: a short one
// (/tmp/rtdoc…/c.sock), since a socket path may not exceed 108 bytes.
func serveVersion(t *testing.T, version string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rtdoc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	versionapi.RegisterVersionServer(s, fakeVersion{version: version})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return sock
}

// daemonProc makes pid a running containerd: its binary (answering --version with version)
// at exe, its command line args and its environment.
func (f *fakeHost) daemonProc(pid int, exe, version string, args []string, environ ...string) {
	f.t.Helper()
	dir := fmt.Sprintf("proc/%d", pid)
	f.write(dir+"/comm", "containerd\n")
	f.containerdBinary(exe, version)
	if err := os.Symlink(f.path(exe), f.path(dir+"/exe")); err != nil {
		f.t.Fatal(err)
	}
	f.write(dir+"/cmdline", strings.Join(append([]string{f.path(exe)}, args...), "\x00")+"\x00")
	if len(environ) > 0 {
		f.write(dir+"/environ", strings.Join(environ, "\x00")+"\x00")
	}
}

// listening makes pid hold a listening unix socket bound to sock (inode ino), as
// /proc/net/unix and /proc/<pid>/fd show it.
func (f *fakeHost) listening(pid int, ino, sock string) {
	f.t.Helper()
	f.write("proc/net/unix", "Num       RefCount Protocol Flags    Type St Inode Path\n"+
		"0000000000000000: 00000002 00000000 00010000 0001 01 "+ino+" "+sock+"\n"+
		"0000000000000000: 00000003 00000000 00000000 0001 03 999 "+sock+"\n")
	f.mkdir(fmt.Sprintf("proc/%d/fd", pid))
	if err := os.Symlink("socket:["+ino+"]", f.path(fmt.Sprintf("proc/%d/fd/7", pid))); err != nil {
		f.t.Fatal(err)
	}
}

func TestContainerdVersion(t *testing.T) {
	runFindingCases(t, "containerd.version", []findingCase{
		{"on PATH, not running", nil, OK,
			"containerd on PATH at @/usr/bin/containerd (not running): v2.4.2 (@/usr/bin/containerd --version)"},
		{"Debian's 1.6 on PATH", func(f *fakeHost) { f.containerdBinary("usr/bin/containerd", "1.6.20~ds1") }, Fail,
			"containerd on PATH at @/usr/bin/containerd (not running): 1.6.20~ds1 (@/usr/bin/containerd --version), older than 2.0: it cannot start the shim"},
		{"none at all", func(f *fakeHost) { f.remove("usr/bin/containerd") }, Info, "no containerd running and none on PATH (@/usr/bin)"},
		{"newer than tested", func(f *fakeHost) { f.containerdBinary("usr/bin/containerd", "v2.5.0") }, Info,
			"v2.5.0 (@/usr/bin/containerd --version), newer than the newest tested (2.4)"},
		{"not understood", func(f *fakeHost) { f.containerdBinary("usr/bin/containerd", "tip") }, Warn, `version "tip"`},
		{"running, asked over its socket", func(f *fakeHost) {
			sock := serveVersion(t, "v2.0.14")
			f.daemonProc(99, "opt/c/containerd", "v1.0.0", []string{"--address", sock})
		}, OK, "containerd pid 99 (@/opt/c/containerd, config @/etc/containerd/config.toml, socket /tmp/rtdoc"},
		{"running, socket from its config file", func(f *fakeHost) {
			sock := serveVersion(t, "v2.1.4")
			f.write("private/config.toml", "version = 3\n[grpc]\n  address = \""+sock+"\"\n")
			f.daemonProc(99, "opt/c/containerd", "v1.0.0", []string{"-c", f.path("private/config.toml")})
		}, OK, "/c.sock): v2.1.4 (asked at /tmp/rtdoc"},
		{"running, no socket: its binary", func(f *fakeHost) {
			f.daemonProc(99, "opt/c/containerd", "1.7.27", nil)
		}, Fail, "containerd pid 99 (@/opt/c/containerd, config @/etc/containerd/config.toml, socket @/run/containerd/containerd.sock): " +
			"1.7.27 (@/opt/c/containerd --version), older than 2.0"},
		{"every running daemon", func(f *fakeHost) {
			f.daemonProc(98, "opt/docker/containerd", "1.6.20~ds1", []string{"--config", "/var/run/docker/containerd/containerd.toml"})
			f.daemonProc(99, "opt/c/containerd", "v2.4.2", nil)
		}, Fail, "containerd pid 98 (@/opt/docker/containerd, config /var/run/docker/containerd/containerd.toml, socket @/run/containerd/containerd.sock): " +
			"1.6.20~ds1 (@/opt/docker/containerd --version), older than 2.0: it cannot start the shim; containerd pid 99 (@/opt/c/containerd, " +
			"config @/etc/containerd/config.toml, socket @/run/containerd/containerd.sock): v2.4.2 (@/opt/c/containerd --version)"},
		{"unknown", func(f *fakeHost) {
			f.daemonProc(99, "opt/c/containerd", "v2.4.2", nil)
			f.write("opt/c/containerd", "#!/bin/sh\nexit 3\n")
		}, Warn, "version unknown: asking at @/run/containerd/containerd.sock: stat @/run/containerd/containerd.sock: no such file or directory; " +
			"@/opt/c/containerd --version: exit status 3"},
	})
}

// TestAddress: --address picks the daemon serving that socket, whose config file and
// environment the other checks then read, and asks it its version.
func TestAddress(t *testing.T) {
	t.Run("the daemon holding the socket", func(t *testing.T) {
		f := goodHost(t)
		sock := serveVersion(t, "v2.4.2")
		f.daemonProc(98, "opt/docker/containerd", "1.6.20~ds1", nil)
		f.write("private/config.toml", "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.private-rt]\n"+
			"  runtime_type = \"io.containerd.runc.v2\"\n  runtime_path = \""+f.path("opt/rt/"+shimBinary)+"\"\n")
		f.executable("opt/rt/" + shimBinary)
		f.write("opt/rt.toml", "[defaults]\npriority = 70\n")
		f.daemonProc(99, "opt/c/containerd", "v2.4.2", []string{"--config", f.path("private/config.toml")},
			"PATH=/nowhere", "RTSHIM_CONFIG="+f.path("opt/rt.toml"))
		f.listening(99, "4242", sock)
		f.h.Address = sock
		r := Run(f.h)
		for _, want := range []struct {
			id  string
			sev Severity
			saw string
		}{
			{"containerd.version", OK, "containerd pid 99 (@/opt/c/containerd, config @/private/config.toml, socket " + sock + "): v2.4.2 (asked at " +
				sock + "); also running, not checked: containerd pid 98"},
			{"containerd.runtime", Warn, "private-rt (runtime_type io.containerd.runc.v2, runtime_path @/opt/rt/containerd-shim-rt-v2) in @/private/config.toml"},
			// Only the daemon's own config counts: the default file's rt runtime (by name, which
			// its PATH=/nowhere would not find) is not this daemon's.
			{"shim.binary", OK, "runtime private-rt: runtime_path @/opt/rt/containerd-shim-rt-v2 is executable"},
			{"shim.config", OK, "@/opt/rt.toml ($RTSHIM_CONFIG of containerd pid 99) (used by runtime private-rt): valid; state_dir /run/rtshim, defaults priority 70"},
		} {
			got := finding(t, r, want.id)
			if got.Severity != want.sev || !strings.Contains(got.Saw, strings.ReplaceAll(want.saw, "@", f.root)) {
				t.Errorf("%s: got %s %q\nwant %s with %q", want.id, got.Severity, got.Saw, want.sev, want.saw)
			}
		}
	})
	for _, tc := range []findingCase{
		{"matched by its --address", func(f *fakeHost) {
			sock := serveVersion(t, "v2.0.14")
			f.daemonProc(98, "opt/docker/containerd", "1.6.20~ds1", nil)
			f.daemonProc(99, "opt/c/containerd", "v2.4.2", []string{"--address=" + sock})
			f.h.Address = sock
		}, OK, "containerd pid 99 (@/opt/c/containerd, config @/etc/containerd/config.toml, socket /tmp/rtdoc"},
		{"no process holds it", func(f *fakeHost) {
			f.containerdBinary("usr/bin/containerd", "1.6.20~ds1") // not what is asked
			f.h.Address = serveVersion(t, "v2.2.1")
		}, OK, "/c.sock (no process here holds that socket: config and environment unknown): v2.2.1 (asked at /tmp/rtdoc"},
		{"an old daemon", func(f *fakeHost) {
			f.h.Address = serveVersion(t, "1.7.27")
		}, Fail, "1.7.27 (asked at /tmp/rtdoc"},
		{"nothing there", func(f *fakeHost) { f.h.Address = f.path("nope.sock") }, Fail,
			"containerd at @/nope.sock (no process here holds that socket: config and environment unknown): version unknown: asking at @/nope.sock: " +
				"stat @/nope.sock: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := goodHost(t)
			tc.setup(f)
			got := finding(t, Run(f.h), "containerd.version")
			if got.Severity != tc.want || !strings.Contains(got.Saw, strings.ReplaceAll(tc.saw, "@", f.root)) || got.Fix == "" && tc.want == Fail {
				t.Errorf("got %s %q (fix %q)\nwant %s with %q", got.Severity, got.Saw, got.Fix, tc.want, tc.saw)
			}
		})
	}
}

func TestMajorMinor(t *testing.T) {
	for v, want := range map[string][3]int{
		"v2.4.2": {2, 4, 1}, "2.2.9+unknown": {2, 2, 1}, "1.6.20~ds1": {1, 6, 1}, "v2.1.0-rc.1": {2, 1, 1},
		"2.10": {2, 10, 1}, "tip": {0, 0, 0}, "v2": {0, 0, 0}, "": {0, 0, 0},
	} {
		major, minor, ok := majorMinor(v)
		if ok != (want[2] == 1) || ok && (major != want[0] || minor != want[1]) {
			t.Errorf("majorMinor(%q) = %d, %d, %v; want %v", v, major, minor, ok, want)
		}
	}
}

func TestFlagValue(t *testing.T) {
	args := []string{"--log-level", "debug", "-c=/a.toml", "--address", "/s.sock"}
	if got := flagValue(args, "config", "c"); got != "/a.toml" {
		t.Errorf("config: %q", got)
	}
	if got := flagValue(args, "address", "a"); got != "/s.sock" {
		t.Errorf("address: %q", got)
	}
	if got := flagValue([]string{"-config", "/b.toml"}, "config", "c"); got != "/b.toml" {
		t.Errorf("-config: %q", got)
	}
	if got := flagValue([]string{"--", "--config", "x"}, "config", "c"); got != "" {
		t.Errorf("after --: %q", got)
	}
}
