package tuning

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/internal/cpulist"
)

// irqbalance, when it runs, spreads IRQs over every CPU it does not ban, and would move them
// back onto a container's CPUs at its next pass. rtshim does not fight it: it adds the CPUs to
// irqbalance's banned set through the daemon's own control socket (what irqbalance-ui uses:
// "settings cpus <list>"), and puts the set back when the last container is gone. A restarted
// irqbalance forgets the ban until the next container is tuned (see docs/tuning.md).
const kindIrqbalance = "irqbalance"

// Irqbalance is a running irqbalance's banned CPUs.
type Irqbalance interface {
	// Socket is the control socket of the running daemon; "" when none runs.
	Socket() string
	Banned(socket string) (cpulist.Set, error)
	SetBanned(socket string, cpus cpulist.Set) error
}

// SocketIrqbalance finds irqbalance's socket, irqbalance<pid>.sock, in Dir (/run/irqbalance).
type SocketIrqbalance struct{ Dir string }

func (s SocketIrqbalance) Socket() string {
	socks, _ := filepath.Glob(filepath.Join(s.Dir, "irqbalance*.sock"))
	if len(socks) == 0 {
		return ""
	}
	return socks[0]
}

// Banned asks "setup", whose answer ends in "BANNED <mask>".
func (s SocketIrqbalance) Banned(socket string) (cpulist.Set, error) {
	out, err := irqbalanceCommand(socket, "setup", true)
	if err != nil {
		return nil, err
	}
	_, mask, ok := strings.Cut(out, "BANNED ")
	if !ok {
		return nil, fmt.Errorf("irqbalance %s: no BANNED in its setup answer %q", socket, out)
	}
	return cpulist.ParseMask(strings.Fields(mask + " ")[0])
}

func (s SocketIrqbalance) SetBanned(socket string, cpus cpulist.Set) error {
	list := cpus.String()
	if list == "" {
		list = "NULL" // irqbalance's own default again (isolcpus, nohz_full, its environment)
	}
	_, err := irqbalanceCommand(socket, "settings cpus "+list, false)
	return err
}

// irqbalanceCommand sends one command with the caller's credentials, which irqbalance requires
// (root only), and reads the answer until it closes the connection.
func irqbalanceCommand(socket, cmd string, answer bool) (string, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(5 * time.Second))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: socket}); err != nil {
		return "", fmt.Errorf("irqbalance %s: %w", socket, err)
	}
	creds := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
	if err := unix.Sendmsg(fd, []byte(cmd), creds, nil, 0); err != nil {
		return "", fmt.Errorf("irqbalance %s: send %q: %w", socket, cmd, err)
	}
	if !answer {
		return "", nil
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			b.Write(buf[:n])
		}
		if err != nil || n <= 0 {
			if err != nil && b.Len() == 0 {
				return "", fmt.Errorf("irqbalance %s: read answer to %q: %w", socket, cmd, err)
			}
			return b.String(), nil
		}
	}
}

type irqbalanceKnob struct{}

func (m *Manager) irqbalanceTarget() (Target, bool) {
	sock := m.Irqbalance.Socket()
	return Target{Kind: kindIrqbalance, Path: sock, CPU: -1}, sock != ""
}

func (irqbalanceKnob) read(m *Manager, t Target) (string, error) {
	if m.Irqbalance == nil {
		return "", fmt.Errorf("irqbalance not asked")
	}
	s, err := m.Irqbalance.Banned(t.Path)
	return s.String(), err
}

func (irqbalanceKnob) write(m *Manager, t Target, v string) error {
	s, err := cpulist.Parse(v)
	if err == nil {
		err = m.Irqbalance.SetBanned(t.Path, s)
	}
	if err != nil {
		return fmt.Errorf("%w: tell irqbalance to ban CPUs %q: %w", errdefs.ErrFailedPrecondition, v, err)
	}
	return nil
}

// gone: the daemon that was told exited (a new one starts from its own settings).
func (irqbalanceKnob) gone(m *Manager, t Target) bool {
	return m.Irqbalance == nil || m.Irqbalance.Socket() != t.Path
}

func (irqbalanceKnob) desired(m *Manager, _ Target, base string, active []*Holder) (string, bool, error) {
	banned := m.banned(active)
	b, err := cpulist.Parse(base)
	if err != nil {
		return "", false, err
	}
	if banned.Minus(b).Empty() {
		return "", false, nil
	}
	return b.Union(banned).String(), true, nil
}
