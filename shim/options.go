package shim

import (
	"fmt"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/rtshim/rtshim/config"
)

// resolveOptions reads the host config the runtime options point at and returns the runc
// options the stock runc service must get instead.
//
//   - runtimeoptions (runtime_type io.containerd.rt.v2 from CRI, Docker or ctr
//     --runtime-config-path): the config comes from ConfigBody, else ConfigPath, else
//     $RTSHIM_CONFIG, else the default file; its [runc] table becomes the runc options.
//   - runc options, or none: passed through unchanged; the config comes from $RTSHIM_CONFIG
//     or the default file.
func resolveOptions(opts *types.Any) (*config.Config, *types.Any, error) {
	src := config.FromEnv()
	if opts == nil || len(opts.GetValue()) == 0 && opts.GetTypeUrl() == "" {
		cfg, _, err := src.Load()
		return cfg, opts, err
	}
	v, err := typeurl.UnmarshalAny(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: runtime options of type %q: %w", errdefs.ErrInvalidArgument, opts.GetTypeUrl(), err)
	}
	switch o := v.(type) {
	case *runcoptions.Options:
		cfg, _, err := src.Load()
		return cfg, opts, err
	case *runtimeoptions.Options:
		src.Body, src.Path = o.ConfigBody, o.ConfigPath
		cfg, _, err := src.Load()
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

// RuncOptions is the config's runc layer as the stock runc shim's options.
func RuncOptions(cfg *config.Config) *runcoptions.Options {
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

// runtimeBinary is the runc binary the stock service runs.
func runtimeBinary(opts *types.Any) string {
	if b := runcOptions(opts).GetBinaryName(); b != "" {
		return b
	}
	return "runc"
}
