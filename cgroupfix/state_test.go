package cgroupfix

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The lock's holder runs at nice lockNice and gets its own weight back on unlock.
func TestLockBoostsHolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raising a thread's weight needs CAP_SYS_NICE") // make test runs the unit tests as root too
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	nice := func() int {
		p, err := unix.Getpriority(unix.PRIO_PROCESS, 0) // the calling thread; the syscall returns 20-nice
		if err != nil {
			t.Fatal(err)
		}
		return 20 - p
	}
	before := nice()
	unlock, err := State{Dir: t.TempDir()}.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if got := nice(); got != lockNice {
		t.Errorf("nice while holding the lock = %d, want %d", got, lockNice)
	}
	unlock()
	if got := nice(); got != before {
		t.Errorf("nice after unlock = %d, want %d as before", got, before)
	}
}
