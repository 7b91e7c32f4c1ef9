package tuning

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeDaemon serves irqbalance's control socket as irqbalance 1.9 does: it reads one command
// with the sender's credentials (refusing senders that are not root), answers "setup" with its
// banned CPUs as a mask, and takes "settings cpus <list>" (or NULL).
func fakeDaemon(t *testing.T, dir string) (sock string, got chan string) {
	sock = filepath.Join(dir, "irqbalance42.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got = make(chan string, 10)
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			f, _ := c.File()
			_ = unix.SetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
			buf, oob := make([]byte, 4096), make([]byte, 256)
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			f.Close()
			if err != nil {
				c.Close()
				continue
			}
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			root := false
			for _, m := range msgs {
				if cred, err := unix.ParseUnixCredentials(&m); err == nil && cred.Uid == 0 {
					root = true
				}
			}
			cmd := string(buf[:n])
			if !root {
				cmd = "denied"
			}
			got <- cmd
			if cmd == "setup" {
				c.Write([]byte("SLEEP 10 IRQ 5 LOAD 0 DIFF 0 CLASS 3 BANNED 00000009"))
			}
			c.Close()
		}
	}()
	return sock, got
}

func TestSocketIrqbalance(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("irqbalance answers root only (SCM_CREDENTIALS uid 0); run as root")
	}
	dir := t.TempDir()
	ib := SocketIrqbalance{Dir: dir}
	if ib.Socket() != "" {
		t.Fatal("a socket without a daemon")
	}
	sock, got := fakeDaemon(t, dir)
	if ib.Socket() != sock {
		t.Fatalf("socket %q, want %q", ib.Socket(), sock)
	}
	banned, err := ib.Banned(sock)
	if err != nil || banned.String() != "0,3" {
		t.Fatalf("banned %q, %v; want 0,3", banned, err)
	}
	if c := <-got; c != "setup" {
		t.Errorf("daemon got %q", c)
	}
	if err := ib.SetBanned(sock, banned.Union([]int{1, 2})); err != nil {
		t.Fatal(err)
	}
	if c := <-got; c != "settings cpus 0-3" {
		t.Errorf("daemon got %q, want settings cpus 0-3", c)
	}
	if err := ib.SetBanned(sock, nil); err != nil {
		t.Fatal(err)
	}
	if c := <-got; !strings.HasSuffix(c, "NULL") {
		t.Errorf("daemon got %q, want settings cpus NULL", c)
	}
}
