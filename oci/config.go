package oci

// DefaultConfigPath is where the shim and the runc wrapper look for the host config when the
// runtime options name none.
const DefaultConfigPath = "/etc/containerd/rtshim.toml"

// Config is the operator's host config. Its commented reference, every key with its default,
// is contrib/rtshim.toml; TestReferenceConfig keeps it equal to DefaultConfig().
type Config struct {
	Runc     RuncConfig     `toml:"runc"`
	Defaults DefaultsConfig `toml:"defaults"`
	Limits   LimitsConfig   `toml:"limits"`
	// StateDir holds the host-wide lock and the records that let budgets be given back after a
	// crash. Every shim on the host must use the same one.
	StateDir string `toml:"state_dir"`
}

// RuncConfig is the runc layer, used when the shim is configured as io.containerd.rt.v2 (with
// io.containerd.runc.v2 + runtime_path, containerd's runc options are used instead).
type RuncConfig struct {
	BinaryName    string `toml:"binary_name"`
	Root          string `toml:"root"`
	SystemdCgroup bool   `toml:"systemd_cgroup"`
}

// DefaultsConfig fills in what a container did not ask for.
type DefaultsConfig struct {
	Priority    int    `toml:"priority"`
	RTRuntimeUS int64  `toml:"rt_runtime_us"`
	RTPeriodUS  int64  `toml:"rt_period_us"`
	CPUQuota    string `toml:"cpu_quota"`
	ExecPolicy  string `toml:"exec_policy"`
	Mode        string `toml:"mode"`
}

// LimitsConfig bounds what a container may ask for.
type LimitsConfig struct {
	AllowedPolicies  []string `toml:"allowed_policies"`
	MaxPriority      int      `toml:"max_priority"`
	MaxRTRuntimeUS   int64    `toml:"max_rt_runtime_us"`
	HonorAnnotations bool     `toml:"honor_annotations"`
	HonorEnv         bool     `toml:"honor_env"`
}

// DefaultConfig is what applies when no config file exists.
func DefaultConfig() *Config {
	return &Config{
		Runc: RuncConfig{BinaryName: "runc"},
		Defaults: DefaultsConfig{
			Priority:    50,
			RTRuntimeUS: 100000,
			RTPeriodUS:  1000000,
			CPUQuota:    string(QuotaDisable),
			ExecPolicy:  string(PolicyOther),
			Mode:        string(ModeApply),
		},
		Limits: LimitsConfig{
			AllowedPolicies:  []string{"SCHED_FIFO", "SCHED_RR", "SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE", "SCHED_DEADLINE"},
			MaxPriority:      99,
			MaxRTRuntimeUS:   950000,
			HonorAnnotations: true,
			HonorEnv:         true,
		},
		StateDir: "/run/rtshim",
	}
}
