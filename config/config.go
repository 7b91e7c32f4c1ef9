// Package config is the operator's host config of rtshim (/etc/containerd/rtshim.toml): the
// runc layer, the state dir, and the rules (defaults and limits) every container's request is
// held to. Every front door (the shim, runc-rt, rtshim doctor and status) finds it the same
// way, through Source.
package config

import (
	"github.com/rtshim/rtshim/oci"
)

// DefaultPath is where the config is when the runtime options name none and $RTSHIM_CONFIG
// is not set.
const DefaultPath = "/etc/containerd/rtshim.toml"

// EnvPath names a config file when the runtime options cannot (runc options, as with
// runtime_type io.containerd.runc.v2 + runtime_path; runc-rt). containerd passes its own
// environment to shims, and engines pass theirs to runc-rt.
const EnvPath = "RTSHIM_CONFIG"

// Config is the operator's host config. Its commented reference, every key with its default,
// is contrib/rtshim.toml; TestReferenceConfig keeps it equal to Default().
type Config struct {
	Runc     Runc         `toml:"runc"`
	Defaults oci.Defaults `toml:"defaults"`
	Limits   oci.Limits   `toml:"limits"`
	// StateDir holds the host-wide lock and the records that let budgets be given back after a
	// crash. Every shim on the host must use the same one.
	StateDir string `toml:"state_dir"`
}

// Runc is the runc layer, used when the shim is configured as io.containerd.rt.v2 (with
// io.containerd.runc.v2 + runtime_path, containerd's runc options are used instead) and by
// runc-rt to find the real runc.
type Runc struct {
	BinaryName    string `toml:"binary_name"`
	Root          string `toml:"root"`
	SystemdCgroup bool   `toml:"systemd_cgroup"`
}

// Default is what applies when no config file exists.
func Default() *Config {
	r := oci.DefaultRules()
	return &Config{
		Runc:     Runc{BinaryName: "runc"},
		Defaults: r.Defaults,
		Limits:   r.Limits,
		StateDir: "/run/rtshim",
	}
}

// Rules are the config's defaults and limits, for oci.ParseRequest.
func (c *Config) Rules() *oci.Rules {
	return &oci.Rules{Defaults: c.Defaults, Limits: c.Limits}
}
