package doctor

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// daemon is one containerd doctor checks: a running process, or (PID 0) the daemon at
// --address whose process is not visible here.
type daemon struct {
	PID     int
	OnPath  bool              // not running: the containerd on PATH, which would be started
	Exe     string            // its binary (/proc/<pid>/exe); "" if unreadable
	Args    []string          // its command line, without the program name
	Config  string            // the config file it reads: --config, else EtcRoot/containerd/config.toml
	Address string            // its gRPC socket: --address, else the config's [grpc] address, else the default
	Env     map[string]string // its environment, which its shims get; nil if unreadable
	// Version is what the daemon says (over its socket) or its binary says (--version); "" if
	// neither answered, with the reasons in VersionErr.
	Version, VersionFrom string
	VersionErr           []string
}

// defaultAddress is containerd's default gRPC socket, below RunRoot.
func (e *env) defaultAddress() string {
	return filepath.Join(e.h.RunRoot, "containerd", "containerd.sock")
}

// defaultContainerdConfig is the file containerd reads without --config.
func (e *env) defaultContainerdConfig() string {
	return filepath.Join(e.h.EtcRoot, "containerd", "config.toml")
}

// findDaemons reads every running containerd: its binary, command line and environment.
func (e *env) findDaemons() []*daemon {
	var out []*daemon
	for _, pid := range e.procs["containerd"] {
		dir := filepath.Join(e.h.ProcRoot, strconv.Itoa(pid))
		d := &daemon{PID: pid, Config: e.defaultContainerdConfig()}
		if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
			d.Exe = strings.TrimSuffix(exe, " (deleted)")
		}
		if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
			d.Args = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")[1:]
		}
		cwd, _ := os.Readlink(filepath.Join(dir, "cwd"))
		abs := func(p string) string {
			if p != "" && !filepath.IsAbs(p) && cwd != "" {
				return filepath.Join(cwd, p)
			}
			return p
		}
		if c := flagValue(d.Args, "config", "c"); c != "" {
			d.Config = abs(c)
		}
		d.Address = abs(flagValue(d.Args, "address", "a"))
		if d.Address == "" {
			d.Address = grpcAddress(d.Config)
		}
		if d.Address == "" {
			d.Address = e.defaultAddress()
		}
		if b, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil {
			d.Env = map[string]string{}
			for _, kv := range strings.Split(string(b), "\x00") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					d.Env[k] = v
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// flagValue is a flag's value on a containerd command line (urfave/cli: --name v, --name=v,
// -name v, -n v, -n=v); "" if absent.
func flagValue(args []string, long, short string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != long && name != short {
			continue
		}
		if hasValue {
			return value
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// grpcAddress is the [grpc] address a containerd config file sets; "" if none or unreadable
// (containerd.runtime reports a file that does not parse).
func grpcAddress(file string) string {
	data, err := readConfig(file)
	if err != nil {
		return ""
	}
	var c struct {
		GRPC struct {
			Address string `toml:"address"`
		} `toml:"grpc"`
	}
	if _, err := toml.Decode(string(data), &c); err != nil {
		return ""
	}
	return c.GRPC.Address
}

// pickTargets is the daemons the checks are about: with --address, the one serving that
// socket (found through the socket's inode, else by its configured address; a daemon with
// PID 0 if no process here serves it); otherwise every running containerd.
func (e *env) pickTargets() []*daemon {
	if e.h.Address == "" {
		return e.daemons
	}
	addr := filepath.Clean(e.h.Address)
	if ino := listeningInode(e.h.ProcRoot, addr); ino != "" {
		for _, d := range e.daemons {
			if holdsSocket(e.h.ProcRoot, d.PID, ino) {
				d.Address = addr
				return []*daemon{d}
			}
		}
	}
	for _, d := range e.daemons {
		if filepath.Clean(d.Address) == addr {
			return []*daemon{d}
		}
	}
	return []*daemon{{Address: addr, Config: e.defaultContainerdConfig()}}
}

// listeningInode is the inode of the listening unix socket bound to path, from
// /proc/net/unix ("Num RefCount Protocol Flags Type St Inode Path"; flag 0x10000 is
// __SO_ACCEPTCON, a listening socket); "" if none.
func listeningInode(procRoot, path string) string {
	f, err := os.Open(filepath.Join(procRoot, "net", "unix"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || filepath.Clean(fields[7]) != path {
			continue
		}
		if flags, err := strconv.ParseUint(fields[3], 16, 32); err == nil && flags&0x10000 != 0 {
			return fields[6]
		}
	}
	return ""
}

// holdsSocket reports whether process pid has the socket with inode ino open.
func holdsSocket(procRoot string, pid int, ino string) bool {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "fd")
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		if t, err := os.Readlink(filepath.Join(dir, ent.Name())); err == nil && t == "socket:["+ino+"]" {
			return true
		}
	}
	return false
}

// describe names a daemon in a finding.
func (d *daemon) describe() string {
	if d.OnPath {
		return "containerd on PATH at " + d.Exe + " (not running)"
	}
	if d.PID == 0 {
		return "containerd at " + d.Address + " (no process here holds that socket: config and environment unknown)"
	}
	exe := d.Exe
	if exe == "" {
		exe = "binary unreadable"
	}
	return fmt.Sprintf("containerd pid %d (%s, config %s, socket %s)", d.PID, exe, d.Config, d.Address)
}
