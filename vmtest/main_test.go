//go:build linux

package vmtest

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// envGuest is set by the VM's /init: this binary runs inside the VM.
const envGuest = "RTSHIM_VM_GUEST"

func TestMain(m *testing.M) {
	if os.Getenv(envGuest) == "" {
		os.Exit(m.Run())
	}
	start := time.Now()
	d, err := startDaemon()
	if err != nil {
		fmt.Printf("FAIL: start containerd: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("vmtest: containerd serves after %v\n", time.Since(start).Round(100*time.Millisecond))
	guestDaemon = d
	code := m.Run()
	if code != 0 {
		fmt.Printf("vmtest: containerd log (last 300 lines):\n%s\n", d.LogTail(300))
	}
	if err := d.Close(); err != nil {
		fmt.Printf("FAIL: stop containerd: %v\n", err)
		code = 1
	}
	os.Exit(code)
}
