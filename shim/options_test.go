package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/rtshim/rtshim/config"
)

func TestResolveOptions(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "rtshim.toml")
	os.WriteFile(good, []byte("[runc]\nbinary_name = \"/opt/runc\"\nroot = \"/run/rt-runc\"\nsystemd_cgroup = true\n[defaults]\npriority = 70\n"), 0o644)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[defaults]\npriority = 700\n"), 0o644)
	t.Setenv(config.EnvPath, good)

	for _, tc := range []struct {
		name     string
		opts     any
		priority int
		runc     *runcoptions.Options // what the stock service gets
		err      string
	}{
		{"runtimeoptions ConfigPath", &runtimeoptions.Options{ConfigPath: good}, 70,
			&runcoptions.Options{BinaryName: "/opt/runc", Root: "/run/rt-runc", SystemdCgroup: true}, ""},
		{"runtimeoptions ConfigBody wins", &runtimeoptions.Options{ConfigPath: bad, ConfigBody: []byte("[defaults]\npriority = 60\n")}, 60,
			&runcoptions.Options{BinaryName: "runc"}, ""},
		{"runtimeoptions without config: $RTSHIM_CONFIG", &runtimeoptions.Options{}, 70,
			&runcoptions.Options{BinaryName: "/opt/runc", Root: "/run/rt-runc", SystemdCgroup: true}, ""},
		{"runc options pass through", &runcoptions.Options{BinaryName: "crun", SystemdCgroup: true}, 70,
			&runcoptions.Options{BinaryName: "crun", SystemdCgroup: true}, ""},
		{"malformed config", &runtimeoptions.Options{ConfigPath: bad}, 0, nil, "defaults.priority"},
		{"missing config", &runtimeoptions.Options{ConfigPath: filepath.Join(dir, "none.toml")}, 0, nil, "none.toml"},
		{"foreign options", &emptypb.Empty{}, 0, nil, "rtshim accepts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := typeurl.MarshalAnyToProto(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			cfg, out, err := resolveOptions(a)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !(errdefs.IsInvalidArgument(err) || errdefs.IsNotFound(err)) {
					t.Fatalf("want a classified error about %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Defaults.Priority != tc.priority {
				t.Errorf("priority %d, want %d", cfg.Defaults.Priority, tc.priority)
			}
			v, err := typeurl.UnmarshalAny(out)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := v.(*runcoptions.Options)
			if !ok || got.BinaryName != tc.runc.BinaryName || got.Root != tc.runc.Root || got.SystemdCgroup != tc.runc.SystemdCgroup {
				t.Errorf("stock service gets %v, want %v", v, tc.runc)
			}
		})
	}
	t.Run("no options", func(t *testing.T) {
		cfg, out, err := resolveOptions(nil)
		if err != nil || out != nil || cfg.Defaults.Priority != 70 {
			t.Errorf("got %v, %v, %v", cfg, out, err)
		}
	})
}
