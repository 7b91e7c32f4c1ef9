//go:build linux

package vmtest

import (
	"fmt"
	"os"
	"testing"
)

// envGuest is set by the VM's /init: this binary runs inside the VM.
const envGuest = "RTSHIM_VM_GUEST"

func TestMain(m *testing.M) {
	if os.Getenv(envGuest) == "" {
		os.Exit(m.Run())
	}
	d, err := startDaemon()
	if err != nil {
		fmt.Printf("FAIL: start containerd: %v\n", err)
		os.Exit(1)
	}
	guestDaemon = d
	code := m.Run()
	if err := d.stop(); err != nil {
		fmt.Printf("FAIL: stop containerd: %v\n", err)
		code = 1
	}
	if code != 0 {
		d.printLog(300)
	}
	os.Exit(code)
}
