package shim

import (
	"fmt"
	"os"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/rtshim/rtshim/oci"
)

// EnvConfig names a config file for the shim when the runtime options cannot (runc options,
// as with runtime_type io.containerd.runc.v2 + runtime_path). containerd passes its own
// environment to shims.
const EnvConfig = "RTSHIM_CONFIG"

// resolveOptions reads the host config the runtime options point at and returns the runc
// options the stock runc service must get instead.
//
//   - runtimeoptions (runtime_type io.containerd.rt.v2 from CRI, Docker or ctr
//     --runtime-config-path): the config comes from ConfigBody, else ConfigPath, else the
//     default file; its [runc] table becomes the runc options.
//   - runc options, or none: passed through unchanged; the config comes from $RTSHIM_CONFIG
//     or the default file.
func resolveOptions(opts *types.Any) (*oci.Config, *types.Any, error) {
	if opts == nil || len(opts.GetValue()) == 0 && opts.GetTypeUrl() == "" {
		cfg, err := configFromEnv()
		return cfg, opts, err
	}
	v, err := typeurl.UnmarshalAny(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: runtime options of type %q: %w", errdefs.ErrInvalidArgument, opts.GetTypeUrl(), err)
	}
	switch o := v.(type) {
	case *runcoptions.Options:
		cfg, err := configFromEnv()
		return cfg, opts, err
	case *runtimeoptions.Options:
		cfg, err := configFromRuntimeOptions(o)
		if err != nil {
			return nil, nil, err
		}
		translated, err := typeurl.MarshalAnyToProto(RuncOptions(cfg))
		return cfg, translated, err
	default:
		return nil, nil, fmt.Errorf("%w: runtime options of type %T: rtshim accepts runtimeoptions.v1.Options or runc options",
			errdefs.ErrInvalidArgument, v)
	}
}

func configFromRuntimeOptions(o *runtimeoptions.Options) (*oci.Config, error) {
	switch {
	case len(o.ConfigBody) > 0:
		return oci.ParseConfig(o.ConfigBody, "runtime options ConfigBody")
	case o.ConfigPath != "":
		return oci.LoadConfig(o.ConfigPath)
	}
	return configFromEnv()
}

func configFromEnv() (*oci.Config, error) {
	if p := os.Getenv(EnvConfig); p != "" {
		return oci.LoadConfig(p)
	}
	return oci.LoadDefaultConfig()
}

// RuncOptions is the config's runc layer as the stock runc shim's options.
func RuncOptions(cfg *oci.Config) *runcoptions.Options {
	return &runcoptions.Options{
		BinaryName:    cfg.Runc.BinaryName,
		Root:          cfg.Runc.Root,
		SystemdCgroup: cfg.Runc.SystemdCgroup,
	}
}

// runcOptions are the runc options the stock service gets (translated by resolveOptions);
// nil when there are none.
func runcOptions(opts *types.Any) *runcoptions.Options {
	if opts == nil {
		return nil
	}
	v, err := typeurl.UnmarshalAny(opts)
	if err != nil {
		return nil
	}
	o, _ := v.(*runcoptions.Options)
	return o
}

// systemdCgroup reports whether runc will use the systemd cgroup driver.
func systemdCgroup(opts *types.Any) bool { return runcOptions(opts).GetSystemdCgroup() }

// runtimeBinary is the runc binary the stock service runs.
func runtimeBinary(opts *types.Any) string {
	if b := runcOptions(opts).GetBinaryName(); b != "" {
		return b
	}
	return "runc"
}
