package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/containerd/errdefs"

	"github.com/rtshim/rtshim/oci"
)

// Parse decodes a TOML host config over Default(), so a file only needs the keys it changes,
// then validates it. source (a path, or "runtime options ConfigBody") names the config in
// errors. Unknown keys are errors, not ignored, in every TOML form (tables, dotted keys, inline
// tables): a misspelt limit silently not applying is how an operator ends up with a host that
// grants more than they meant.
func Parse(data []byte, source string) (*Config, error) {
	c := Default()
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
			msg += fmt.Sprintf(" (key %s)", oci.ShowKey(pe.LastKey))
		}
		return msg
	}
	return err.Error()
}

// unknownKeys returns a message for each key not spelt exactly as a Config field's tag, each
// listing what its table accepts. Every key is walked from the top: the decoder matches keys
// case-insensitively ("Limits.max_priority" sets Limits.MaxPriority) and md.Undecoded() misses
// those, so only an exact match counts. The first unknown component of a key is reported, once.
func unknownKeys(keys []toml.Key) []string {
	tables := map[string][]string{}
	tomlKeys(reflect.TypeOf(Config{}), "", tables)
	var out []string
	reported := map[string]bool{}
	for _, k := range keys {
		for i := range k {
			parent := strings.Join(k[:i], ".")
			valid, isTable := tables[parent]
			if !isTable {
				break // k[:i] is a value, not a table: the decoder reports that
			}
			if slices.Contains(valid, k[i]) {
				continue
			}
			bad := k[:i+1].String()
			if !reported[bad] {
				reported[bad] = true
				where := "top-level keys"
				if parent != "" {
					where = "keys in [" + parent + "]"
				}
				out = append(out, fmt.Sprintf("unknown key %s (valid %s: %s)", oci.ShowKey(bad), where, strings.Join(valid, ", ")))
			}
			break
		}
	}
	return out
}

// tomlKeys maps each table of t ("" for the top level) to its keys, from the toml tags, so
// the list in error messages follows the struct.
func tomlKeys(t reflect.Type, table string, out map[string][]string) {
	out[table] = out[table][:0:0]
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

func (c *Config) check() []string {
	var p []string
	add := func(key, value, allowed string) { p = append(p, fmt.Sprintf("%s=%s: %s", key, value, allowed)) }
	if c.Runc.BinaryName == "" {
		add("runc.binary_name", `""`, "must name the runc binary (looked up in PATH) or be an absolute path")
	} else if strings.Contains(c.Runc.BinaryName, "/") && !filepath.IsAbs(c.Runc.BinaryName) {
		// A relative path would resolve against the shim's working directory, the bundle.
		add("runc.binary_name", oci.Quote(c.Runc.BinaryName), "must be a name looked up in PATH or an absolute path")
	}
	if c.Runc.Root != "" && !filepath.IsAbs(c.Runc.Root) {
		add("runc.root", oci.Quote(c.Runc.Root), "must be an absolute path, or empty for runc's default")
	}
	r := oci.Rules{Defaults: c.Defaults, Limits: c.Limits}
	p = append(p, r.Check()...)
	c.Defaults, c.Limits = r.Defaults, r.Limits
	if !filepath.IsAbs(c.StateDir) {
		add("state_dir", oci.Quote(c.StateDir), "must be an absolute path, the same for every shim on the host")
	}
	return p
}
