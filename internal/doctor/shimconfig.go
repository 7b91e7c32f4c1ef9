package doctor

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/rtshim/rtshim/config"
)

// shimSource is one rtshim config in use and what loading it gave.
type shimSource struct {
	Name     string // a path, or the runtime options it comes from
	Cfg      *config.Config
	Err      error
	Builtin  bool     // no file: the built-in defaults
	Runtimes []string // the containerd runtimes that use it
}

// ShimConfig is the rtshim config other tools (rtshim status) should read: --config, else
// the one containerd's first rt runtime uses, else the default file. Its errors name the file.
func ShimConfig(h Host) (*config.Config, error) {
	s := load(h).shim[0]
	return s.Cfg, s.Err
}

// shimSources resolves, for each RT runtime, which config the shim would read, the way the
// shim does: with runtime_type io.containerd.rt.v2 CRI sends ConfigPath, or the whole options
// table as ConfigBody; otherwise (no options, or the runc type with runtime_path) the shim
// reads $RTSHIM_CONFIG from containerd's environment, else the default file.
func (e *env) shimSources() []shimSource {
	if e.h.ShimConfig != "" {
		cfg, err := config.Load(e.h.ShimConfig)
		return []shimSource{{Name: e.h.ShimConfig, Cfg: cfg, Err: err}}
	}
	var out []shimSource
	index := map[string]int{}
	add := func(key string, load func() shimSource, runtime string) int {
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, load())
		}
		if runtime != "" {
			out[i].Runtimes = append(out[i].Runtimes, runtime)
		}
		return i
	}
	// Without options the shim reads $RTSHIM_CONFIG of the containerd that runs it, else the
	// default file: one source per distinct file among the daemons that read this runtime.
	addDefault := func(runtime string, daemons []*daemon) int {
		if len(daemons) == 0 {
			daemons = []*daemon{nil}
		}
		first := -1
		for _, d := range daemons {
			i := add("path:"+e.defaultPath(d), func() shimSource { return e.defaultSource(d) }, runtime)
			if first < 0 {
				first = i
			}
		}
		return first
	}
	for i := range e.runtimes {
		r := &e.runtimes[i]
		if !r.isRT() {
			continue
		}
		// Keyed by file, so a ConfigPath naming the default file is one source, not two.
		cp, _ := r.Options["ConfigPath"].(string)
		switch {
		case r.Type == runtimeRT && cp != "":
			r.shim = add("path:"+cp, func() shimSource {
				cfg, err := config.Load(cp)
				return shimSource{Name: cp, Cfg: cfg, Err: err}
			}, r.Name)
		case r.Type == runtimeRT && len(r.Options) > 0:
			r.shim = add("body:"+r.File+":"+r.Table, func() shimSource { return optionsSource(r) }, r.Name)
		default:
			r.shim = addDefault(r.Name, e.daemonsReading(r.Root))
		}
	}
	if len(out) == 0 {
		addDefault("", e.targets)
	}
	return out
}

// daemonsReading is the checked daemons whose config file is file.
func (e *env) daemonsReading(file string) []*daemon {
	var out []*daemon
	for _, d := range e.targets {
		if d.Config == file {
			out = append(out, d)
		}
	}
	return out
}

// optionsSource is the config CRI sends as ConfigBody: the options table, TOML-encoded.
func optionsSource(r *runtimeEntry) shimSource {
	name := fmt.Sprintf("options of runtime %s in %s", r.Name, r.File)
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(r.Options); err != nil {
		return shimSource{Name: name, Err: err}
	}
	cfg, err := config.Parse(buf.Bytes(), name)
	return shimSource{Name: name, Cfg: cfg, Err: err}
}

// defaultSource is what the shim reads when the runtime options name no config: the file in
// $RTSHIM_CONFIG of the containerd d (nil: none known), else the default file below EtcRoot,
// else the built-in defaults.
func (e *env) defaultSource(d *daemon) shimSource {
	env := d.env(config.EnvPath)
	cfg, name, err := config.Source{Env: env, Default: e.defaultPath(nil)}.Load()
	if env != "" {
		name += fmt.Sprintf(" ($%s of containerd pid %d)", config.EnvPath, d.PID)
	}
	builtin := err == nil && env == "" && !exists(e.defaultPath(nil))
	if builtin {
		name = e.defaultPath(nil)
	}
	return shimSource{Name: name, Cfg: cfg, Err: err, Builtin: builtin}
}

// defaultPath is the file the shim run by containerd d reads when the runtime options name
// none: d's $RTSHIM_CONFIG, else the default file.
func (e *env) defaultPath(d *daemon) string {
	if p := d.env(config.EnvPath); p != "" {
		return p
	}
	return filepath.Join(e.h.EtcRoot, strings.TrimPrefix(config.DefaultPath, "/etc/"))
}

// env is a variable of containerd's environment, which its shims get; "" for a nil daemon.
func (d *daemon) env(key string) string {
	if d == nil {
		return ""
	}
	return d.Env[key]
}

// config is the rtshim config other checks use (defaults for budgets, the runc driver).
func (e *env) config() *config.Config {
	if len(e.shim) > 0 && e.shim[0].Cfg != nil {
		return e.shim[0].Cfg
	}
	return config.Default()
}

func (e *env) shimSourceOf(r runtimeEntry) *shimSource {
	if r.shim < len(e.shim) {
		return &e.shim[r.shim]
	}
	return nil
}

func (e *env) shimConfig() Finding {
	f := Finding{ID: "shim.config", Title: "rtshim config"}
	var bad, good []string
	stateDirs := map[string]bool{}
	for _, s := range e.shim {
		used := ""
		if len(s.Runtimes) > 0 {
			used = " (used by runtime " + strings.Join(s.Runtimes, ", ") + ")"
		}
		if s.Err != nil {
			bad = append(bad, s.Err.Error()+used)
			continue
		}
		stateDirs[s.Cfg.StateDir] = true
		good = append(good, s.Name+used+": valid"+ifTrue(s.Builtin, ", no file: built-in defaults")+"; "+summary(s.Cfg))
	}
	f.Saw = strings.Join(append(bad, good...), "; ")
	switch {
	case len(bad) > 0:
		f.Severity = Fail
		f.Why = "The shim refuses every container while its config is malformed: a bad config is an error, never " +
			"a silent default."
		f.Fix = "Fix the keys named above (contrib/rtshim.toml is the commented reference), then check the file with " +
			"rtshim doctor --config <file>."
	case len(stateDirs) > 1:
		f.Severity = Warn
		f.Why = "Every shim on the host must use the same state_dir: it holds the lock that serialises budget changes " +
			"and the records that give budgets back after a crash."
		f.Fix = "Set the same state_dir in every rtshim config."
	default:
		f.Severity = OK
		f.Why = "The shim reads this config for every container: its defaults and limits decide what a container gets."
	}
	return f
}

func summary(c *config.Config) string {
	d, l := c.Defaults, c.Limits
	return fmt.Sprintf("state_dir %s, defaults priority %d, rt_runtime_us %d/%d, mode %s, cpu_quota %s; "+
		"limits max_priority %d, min_nice %d, max_rt_runtime_us %d, max_pod_rt_runtime_us %d, allow_grant %t, honor_env %t, policies %s",
		c.StateDir, d.Priority, d.RTRuntimeUS, d.RTPeriodUS, d.Mode, d.CPUQuota,
		l.MaxPriority, l.MinNice, l.MaxRTRuntimeUS, l.MaxPodRTRuntimeUS, l.AllowGrant, l.HonorEnv, strings.Join(l.AllowedPolicies, ","))
}

func ifTrue(b bool, s string) string {
	if b {
		return s
	}
	return ""
}
