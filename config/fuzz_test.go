package config

import (
	"bytes"
	"reflect"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/containerd/errdefs"
)

// FuzzParseConfig: a config file must never panic the shim, and what it accepts must be
// valid and stable (validating again changes nothing, writing it out and reading it back too).
func FuzzParse(f *testing.F) {
	f.Add("")
	f.Add("[defaults]\npriority = 10\nmode = \"Grant\"\n[limits]\nallowed_policies = [\"fifo\", \"RR\", \"fifo\"]\n")
	f.Add("state_dir = \"/run/x\"\n[runc]\nbinary_name = \"/bin/runc\"\nroot = \"/r\"\nsystemd_cgroup = true\n")
	f.Add("[defaults]\nprioity = 5\n")
	f.Add("[defaults]\npriority = \"5\"\n")
	f.Add("[limits]\nmax_rt_runtime_us = 99999999999999999999\n")
	f.Add("[[defaults]]\n")
	f.Add("defaults.priority = 7\nlimits = {max_priority = 8}\n")
	f.Fuzz(func(t *testing.T, data string) {
		c, err := Parse([]byte(data), "fuzz.toml")
		if err != nil {
			if c != nil || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("got %+v, %v", c, err)
			}
			return
		}
		again := *c
		again.Limits.AllowedPolicies = slices.Clone(c.Limits.AllowedPolicies)
		if err := again.Validate(); err != nil || !reflect.DeepEqual(&again, c) {
			t.Fatalf("accepted config not stable under Validate: %+v, %v", again, err)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(c); err != nil {
			t.Fatalf("encode %+v: %v", c, err)
		}
		back, err := Parse(buf.Bytes(), "re-encoded")
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip of %+v: %+v, %v\n%s", c, back, err, buf.String())
		}
	})
}
