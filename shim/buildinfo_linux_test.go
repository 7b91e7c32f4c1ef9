package shim

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestGoMainPath: what goMainPath reads from this test binary is what the runtime says.
func TestGoMainPath(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got, err := goMainPath(self)
	if err != nil {
		t.Fatal(err)
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok || got != bi.Path {
		t.Errorf("goMainPath = %q, runtime/debug says %q", got, bi.Path)
	}
	if _, err := goMainPath("/proc/self/status"); err == nil {
		t.Error("a file that is not ELF has no build info")
	}
}

// FuzzParseBuildInfo: any section content gives a path or an error, never a panic.
func FuzzParseBuildInfo(f *testing.F) {
	hdr := []byte(buildInfoMagic + "\x08\x02")
	hdr = append(hdr, make([]byte, buildInfoHeaderSize-len(hdr))...)
	f.Add(append(hdr, 2, 'g', 'o', 60))
	f.Add(hdr)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseBuildInfo(data)
	})
}
