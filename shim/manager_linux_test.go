package shim

import (
	"os"
	"path/filepath"
	"testing"
)

func TestShimGroup(t *testing.T) {
	for _, tc := range []struct {
		name, config, want string
	}{
		{"runc group label", `{"ociVersion":"1.2.0","annotations":{"io.containerd.runc.v2.group":"g1","io.kubernetes.cri.sandbox-id":"sb"}}`, "g1"},
		{"CRI sandbox", `{"process":{"args":["/bin/true"]},"annotations":{"io.kubernetes.cri.sandbox-id":"sb"}}`, "sb"},
		{"no annotations", `{"ociVersion":"1.2.0"}`, "ctr"},
		{"not JSON", `{"annotations":`, "ctr"},
		{"no config.json", "", "ctr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.config != "" {
				if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(tc.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			if got := shimGroup("ctr"); got != tc.want {
				t.Errorf("shimGroup = %q, want %q", got, tc.want)
			}
		})
	}
}
