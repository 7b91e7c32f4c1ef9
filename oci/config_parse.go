package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/containerd/errdefs"
)

// ParseConfig decodes a TOML host config over DefaultConfig(), so a file only needs the keys
// it changes, then validates it. source (a path, or "runtime options") names the config in
// errors. Unknown keys are errors, not ignored: a misspelt limit silently not applying is how
// an operator ends up with a host that grants more than they meant.
func ParseConfig(data []byte, source string) (*Config, error) {
	c := DefaultConfig()
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s", errdefs.ErrInvalidArgument, source, decodeMessage(err))
	}
	// Unknown keys and bad values are reported together, so one round of fixes suffices.
	if problems := append(unknownKeys(md.Keys()), c.check()...); len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s: %s", errdefs.ErrInvalidArgument, source, strings.Join(problems, "; "))
	}
	return c, nil
}

// decodeMessage keeps the TOML error on one line: ParseError.Error() is short and carries the
// line number, the usage text would not fit in a gRPC status.
func decodeMessage(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)
		if pe.LastKey != "" {
			msg += fmt.Sprintf(" (key %s)", showKey(pe.LastKey))
		}
		return msg
	}
	return err.Error()
}

// LoadConfig reads and parses the config file at path. A missing file is ErrNotFound (and
// fs.ErrNotExist): when the operator names a file, it must exist.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: config file %s: %w", errdefs.ErrNotFound, path, err)
	}
	if err != nil {
		// Unreadable (a directory, no permission, I/O error): the operator must fix the host.
		return nil, fmt.Errorf("%w: read config file %q: %w", errdefs.ErrFailedPrecondition, path, err)
	}
	return ParseConfig(data, path)
}

// LoadDefaultConfig loads DefaultConfigPath, or returns DefaultConfig() if nothing is there.
func LoadDefaultConfig() (*Config, error) { return loadConfigOrDefault(DefaultConfigPath) }

// loadConfigOrDefault uses Lstat, not ReadFile's ENOENT, to decide that there is no file: a
// dangling symlink at the path is a broken config, and must be an error, not the defaults.
func loadConfigOrDefault(path string) (*Config, error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return DefaultConfig(), nil
	}
	return LoadConfig(path)
}

// unknownKeys returns a message for each key not spelt exactly as a Config field's tag, each
// listing what its table accepts. All keys are checked, not only md.Undecoded(): the decoder
// also matches keys case-insensitively ("Max_Priority"), which a strict file must not accept.
// Keys inside an unknown table are skipped: the table's own message covers them.
func unknownKeys(keys []toml.Key) []string {
	tables := map[string][]string{}
	tomlKeys(reflect.TypeOf(Config{}), "", tables)
	var out []string
	for _, k := range keys {
		parent := strings.Join(k[:len(k)-1], ".")
		valid, known := tables[parent]
		if !known || slices.Contains(valid, k[len(k)-1]) {
			continue
		}
		where := "top-level keys"
		if parent != "" {
			where = "keys in [" + parent + "]"
		}
		out = append(out, fmt.Sprintf("unknown key %s (valid %s: %s)", showKey(k.String()), where, strings.Join(valid, ", ")))
	}
	return out
}

// tomlKeys maps each table of t ("" for the top level) to its keys, from the toml tags, so
// the list in error messages follows the struct.
func tomlKeys(t reflect.Type, table string, out map[string][]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[table] = append(out[table], name)
		if f.Type.Kind() == reflect.Struct {
			sub := name
			if table != "" {
				sub = table + "." + name
			}
			tomlKeys(f.Type, sub, out)
		}
	}
	sort.Strings(out[table])
}

// Validate checks every value and normalises the names (policies to "SCHED_X", mode and
// cpu_quota to lower case). It reports all problems at once, so one round of fixes suffices.
func (c *Config) Validate() error {
	if c == nil {
		return fmt.Errorf("%w: rtshim config: missing", errdefs.ErrInvalidArgument)
	}
	if problems := c.check(); len(problems) > 0 {
		return fmt.Errorf("%w: rtshim config: %s", errdefs.ErrInvalidArgument, strings.Join(problems, "; "))
	}
	return nil
}

// Upper bounds from the kernel: sched_rt_period_us and a group's rt_runtime_us are at most 1s
// worth of microseconds per period as rtshim uses them (sched-rt-group.rst).
const maxRTPeriodUS = 1000000

func (c *Config) check() []string {
	var p problems
	if c.Runc.BinaryName == "" {
		p.add("runc.binary_name", `""`, "must name the runc binary (looked up in PATH) or be an absolute path")
	} else if strings.Contains(c.Runc.BinaryName, "/") && !filepath.IsAbs(c.Runc.BinaryName) {
		// A relative path would resolve against the shim's working directory, the bundle.
		p.add("runc.binary_name", quote(c.Runc.BinaryName), "must be a name looked up in PATH or an absolute path")
	}
	if c.Runc.Root != "" && !filepath.IsAbs(c.Runc.Root) {
		p.add("runc.root", quote(c.Runc.Root), "must be an absolute path, or empty for runc's default")
	}
	d, l := &c.Defaults, &c.Limits
	if l.MaxPriority < MinRTPriority || l.MaxPriority > MaxRTPriority {
		p.add("limits.max_priority", fmt.Sprint(l.MaxPriority), "must be from 1 to 99")
	}
	if l.MaxRTRuntimeUS < 1 || l.MaxRTRuntimeUS > maxRTPeriodUS {
		p.add("limits.max_rt_runtime_us", fmt.Sprint(l.MaxRTRuntimeUS), "must be from 1 to 1000000")
	}
	if d.Priority < MinRTPriority || d.Priority > min(MaxRTPriority, l.MaxPriority) {
		p.add("defaults.priority", fmt.Sprint(d.Priority), fmt.Sprintf("must be from 1 to 99 and at most limits.max_priority (%d)", l.MaxPriority))
	}
	if d.RTPeriodUS < 1 || d.RTPeriodUS > maxRTPeriodUS {
		p.add("defaults.rt_period_us", fmt.Sprint(d.RTPeriodUS), "must be from 1 to 1000000")
	}
	if d.RTRuntimeUS < 1 || d.RTRuntimeUS > d.RTPeriodUS || d.RTRuntimeUS > l.MaxRTRuntimeUS {
		p.add("defaults.rt_runtime_us", fmt.Sprint(d.RTRuntimeUS), fmt.Sprintf(
			"must be from 1 to defaults.rt_period_us (%d) and at most limits.max_rt_runtime_us (%d)", d.RTPeriodUS, l.MaxRTRuntimeUS))
	}
	if q, ok := parseQuota(d.CPUQuota); ok {
		d.CPUQuota = string(q)
	} else {
		p.add("defaults.cpu_quota", quote(d.CPUQuota), "must be disable or keep")
	}
	if m, ok := parseMode(d.Mode); ok {
		d.Mode = string(m)
	} else {
		p.add("defaults.mode", quote(d.Mode), "must be apply or grant")
	}
	switch e, ok := parsePolicy(d.ExecPolicy); {
	case !ok:
		p.add("defaults.exec_policy", quote(d.ExecPolicy), policyHelp())
	case e == PolicyDeadline:
		p.add("defaults.exec_policy", quote(d.ExecPolicy), "SCHED_DEADLINE needs per-process parameters; use another policy")
	default:
		d.ExecPolicy = string(e)
	}
	// An empty list is valid: no container may ask for any policy, nor bring its own
	// process.scheduler.
	allowed, bad := make([]string, 0, len(l.AllowedPolicies)), false
	for i, a := range l.AllowedPolicies {
		pol, ok := parsePolicy(a)
		if !ok {
			p.add(fmt.Sprintf("limits.allowed_policies[%d]", i), quote(a), policyHelp())
			bad = true
		} else if !slices.Contains(allowed, string(pol)) {
			allowed = append(allowed, string(pol))
		}
	}
	if !bad && l.AllowedPolicies != nil {
		l.AllowedPolicies = allowed
	}
	if !filepath.IsAbs(c.StateDir) {
		p.add("state_dir", quote(c.StateDir), "must be an absolute path, the same for every shim on the host")
	}
	return p
}

type problems []string

func (p *problems) add(key, value, allowed string) {
	*p = append(*p, fmt.Sprintf("%s=%s: %s", key, value, allowed))
}
