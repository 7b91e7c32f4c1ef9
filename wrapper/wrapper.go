package wrapper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	gorunc "github.com/containerd/go-runc"
	"github.com/sirupsen/logrus"

	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/rtcontainer"
)

// EnvRunc names the real runc; it wins over the config's runc.binary_name.
const EnvRunc = "RTSHIM_RUNC"

// Wrapper runs one runc command line.
type Wrapper struct {
	Host   rtcontainer.Host
	Stderr io.Writer
}

// Main runs args (without the program name) and returns the exit status.
func (w Wrapper) Main(args []string) int {
	inv := Parse(args)
	defer logTo(inv)()
	if os.Getenv("PATH") == "" {
		// Podman runs `runc delete` with no environment at all: look where runc's callers
		// would, rather than fail to find runc and leave the budget behind.
		os.Setenv("PATH", defaultPath)
	}
	// A broken config stops only the commands that need it; kill, delete, state, list and the
	// rest work without one (delete and kill find the container's state dir in its bundle).
	cfg, _, cfgErr := config.FromEnv().Load()
	runc, err := realRunc(cfg)
	if err != nil {
		return w.fail(err)
	}
	if inv.Command == "help" || truthy(inv.Flags["help"]) {
		return w.help(runc, args)
	}
	switch inv.Command {
	case "create", "start", "exec", "run", "update":
		if cfgErr != nil {
			return w.fail(cfgErr)
		}
	}
	switch inv.Command {
	case "create":
		return w.create(inv, cfg, runc)
	case "start":
		return w.start(inv, cfg, runc)
	case "exec":
		return w.exec(inv, cfg, runc)
	case "update":
		return w.update(inv, cfg, runc)
	case "kill":
		return w.kill(inv, cfg, runc)
	case "delete":
		return w.delete(inv, cfg, runc)
	case "run":
		return w.run(inv, cfg, runc)
	}
	return w.handOver(runc, args)
}

// defaultPath is where runc is looked up when the caller passed no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// logTo sends the wrapper's logs where runc sends its own: the --log file, in --log-format.
// Never to stderr, which the engine may have connected to the container's (a runc shim runs
// `runc create` with the container's stdio, and docker logs would show them). Without --log
// only errors matter, and fail() prints those.
func logTo(inv Invocation) func() {
	logger := logrus.StandardLogger()
	logger.SetOutput(io.Discard)
	p := inv.Global["log"]
	if p == "" {
		return func() {}
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return func() {}
	}
	logger.SetOutput(f)
	if inv.Global["log-format"] == "json" {
		logger.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	} else {
		logger.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true, TimestampFormat: time.RFC3339Nano})
	}
	return func() { f.Close() }
}

// realRunc finds the runc to hand commands to, refusing to find runc-rt itself (installed as
// "runc" earlier on PATH, it would call itself forever). Without a config it is $RTSHIM_RUNC,
// else "runc".
func realRunc(cfg *config.Config) (string, error) {
	name := config.Default().Runc.BinaryName
	if cfg != nil {
		name = cfg.Runc.BinaryName
	}
	if env := os.Getenv(EnvRunc); env != "" {
		name = env
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: the real runc %q (%s or runc.binary_name in the rtshim config): %w", errdefs.ErrNotFound, name, EnvRunc, err)
	}
	self, _ := os.Executable()
	if a, b := resolve(p), resolve(self); a == b {
		return "", fmt.Errorf("%w: the real runc %q is runc-rt itself: point %s or runc.binary_name at runc", errdefs.ErrInvalidArgument, p, EnvRunc)
	}
	return p, nil
}

func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// namespace keys the wrapper's claims: runc's --root, which engines set per engine (and Docker
// per daemon), so IDs of different engines never collide.
func namespace(inv Invocation) string {
	root := inv.Global["root"]
	if root == "" {
		root = "/run/runc"
	}
	return "runc:" + root
}

// handOver replaces the wrapper with the real runc: for every command rtshim has no part in,
// the engine talks to runc itself.
func (w Wrapper) handOver(runc string, args []string) int {
	err := syscall.Exec(runc, append([]string{runc}, args...), os.Environ())
	fmt.Fprintf(w.Stderr, "runc-rt: exec %s: %v\n", runc, err)
	return 1
}

// runReal runs the real runc as a child with the wrapper's stdio and inherited fds
// (--preserve-fds passes fds 3 and up), and returns its exit status.
func runReal(runc string, args []string, preserve int) int {
	cmd := exec.Command(runc, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for fd := 3; fd < 3+preserve; fd++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(fd), "preserved-fd-"+strconv.Itoa(fd)))
	}
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "runc-rt: %s: %v\n", runc, err)
	return 1
}

// fail reports err where the engine looks: stderr, and runc's --log file in its format
// (containerd and Docker quote the last error logged there; logTo set that up).
func (w Wrapper) fail(err error) int {
	msg := "runc-rt: " + err.Error()
	fmt.Fprintln(w.Stderr, msg)
	logrus.Error(msg)
	return 1
}

// runtime is the rtcontainer.Runtime of container id: the real runc, with the global flags
// of this command line, through go-runc.
func runtime(runc string, inv Invocation, id string) rtcontainer.Runc {
	return rtcontainer.Runc{ID: id, Runc: &gorunc.Runc{Command: runc, Root: inv.Global["root"],
		SystemdCgroup: truthy(inv.Global["systemd-cgroup"])}}
}

func truthy(v string) bool { return v != "" && !strings.EqualFold(v, "false") }
