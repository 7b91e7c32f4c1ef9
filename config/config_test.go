package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// TestReferenceConfig keeps ../contrib/rtshim.toml, the commented reference of every key, equal
// to Default(): changing a default or adding a key without documenting it fails here.
func TestReferenceConfig(t *testing.T) {
	got, err := Load(filepath.Join("..", "contrib", "rtshim.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("../contrib/rtshim.toml differs from Default():\n got %+v\nwant %+v", got, want)
	}
	data, err := os.ReadFile(filepath.Join("..", "contrib", "rtshim.toml"))
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string][]string{}
	tomlKeys(reflect.TypeOf(Config{}), "", tables)
	for table, keys := range tables {
		for _, k := range keys {
			if _, isTable := tables[join(table, k)]; isTable {
				if !strings.Contains(string(data), "\n["+join(table, k)+"]\n") {
					t.Errorf("reference lacks table [%s]", join(table, k))
				}
			} else if !strings.Contains(string(data), "\n"+k+" = ") {
				t.Errorf("reference does not set %s", join(table, k))
			}
		}
	}
}

func join(table, key string) string {
	if table == "" {
		return key
	}
	return table + "." + key
}

func TestDefaultConfigValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatal("Validate changed the default config: its names are not canonical")
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		mod  func(*Config) // applied to Default() for the wanted result
		errs []string
	}{
		{name: "empty", in: ""},
		{name: "comments only", in: "# nothing\n"},
		{name: "partial table keeps other defaults", in: "[defaults]\npriority = 10\n", mod: func(c *Config) { c.Defaults.Priority = 10 }},
		{name: "names normalised", in: "[defaults]\nmode = \"Grant\"\ncpu_quota = \"KEEP\"\nexec_policy = \"rr\"\n[limits]\nallowed_policies = [\"fifo\", \"Sched_rr\", \"FIFO\"]\n",
			mod: func(c *Config) {
				c.Defaults.Mode, c.Defaults.CPUQuota, c.Defaults.ExecPolicy = "grant", "keep", "SCHED_RR"
				c.Limits.AllowedPolicies = []string{"SCHED_FIFO", "SCHED_RR"}
			}},
		{name: "empty allowed list", in: "[limits]\nallowed_policies = []\n", mod: func(c *Config) { c.Limits.AllowedPolicies = []string{} }},
		{name: "everything", in: `state_dir = "/var/run/rt"
[runc]
binary_name = "/usr/local/bin/runc"
root = "/run/runc-rt"
systemd_cgroup = true
[defaults]
priority = 20
rt_runtime_us = 1000
rt_period_us = 10000
[limits]
max_priority = 30
max_rt_runtime_us = 5000
honor_annotations = false
honor_env = false
`, mod: func(c *Config) {
			c.StateDir, c.Runc = "/var/run/rt", Runc{"/usr/local/bin/runc", "/run/runc-rt", true}
			c.Defaults.Priority, c.Defaults.RTRuntimeUS, c.Defaults.RTPeriodUS = 20, 1000, 10000
			c.Limits.MaxPriority, c.Limits.MaxRTRuntimeUS, c.Limits.HonorAnnotations, c.Limits.HonorEnv = 30, 5000, false, false
		}},
		{name: "unknown key", in: "[defaults]\nprioity = 5\n",
			errs: []string{"invalid argument: /etc/rt.toml: unknown key defaults.prioity (valid keys in [defaults]: cpu_quota, exec_policy, mode, priority, rt_period_us, rt_runtime_us)"}},
		{name: "key in wrong case", in: "[limits]\nMax_Priority = 5\n", errs: []string{"unknown key limits.Max_Priority (valid keys in [limits]: allow_cstates, allow_exclusive_cpus, allow_grant, allow_irq_tuning, allowed_governors, allowed_policies,"}},
		{name: "table in wrong case", in: "[Limits]\nmax_priority = 5\n", errs: []string{"unknown key Limits (valid top-level"}},
		{name: "unknown top-level key", in: "statedir = \"/x\"\n", errs: []string{"unknown key statedir (valid top-level keys: defaults, limits, runc, state_dir)"}},
		{name: "unknown table reported once", in: "[limit]\nmax_priority = 5\n", errs: []string{"unknown key limit (valid top-level"}},
		// Every TOML form of a key is checked (issue 10): dotted keys, a dotted key below a
		// table, a table named in another case, inline tables.
		{name: "dotted key in unknown table", in: "limit.max_priority = 10\n", errs: []string{"unknown key limit (valid top-level"}},
		{name: "dotted key below a table", in: "[limits]\nmax_priorty.x = 10\n", errs: []string{"unknown key limits.max_priorty (valid keys in [limits]"}},
		{name: "dotted key in wrong case", in: "Limits.max_priority = 10\n", errs: []string{"unknown key Limits (valid top-level"}},
		{name: "inline table with typo", in: "limits = {max_priorty = 10}\n", errs: []string{"unknown key limits.max_priorty"}},
		{name: "dotted key, correct", in: "limits.max_priority = 10\ndefaults.priority = 5\n",
			mod: func(c *Config) { c.Limits.MaxPriority, c.Defaults.Priority = 10, 5 }},
		{name: "unknown key and bad value together", in: "[runc]\nroot = \"rel\"\nbinary = \"x\"\n", errs: []string{"unknown key runc.binary", `runc.root="rel": must be an absolute path`}},
		{name: "string for int", in: "[defaults]\npriority = \"50\"\n", errs: []string{"/etc/rt.toml", "defaults.priority", "incompatible types"}},
		{name: "float for int", in: "[defaults]\npriority = 1.5\n", errs: []string{"defaults.priority"}},
		{name: "int for string", in: "state_dir = 5\n", errs: []string{"state_dir"}},
		{name: "int for bool", in: "[limits]\nhonor_env = 1\n", errs: []string{"limits.honor_env"}},
		{name: "string for list", in: "[limits]\nallowed_policies = \"fifo\"\n", errs: []string{"limits.allowed_policies"}},
		{name: "int in list", in: "[limits]\nallowed_policies = [\"fifo\", 1]\n", errs: []string{"limits.allowed_policies"}},
		{name: "value for table", in: "defaults = 5\n", errs: []string{"defaults"}},
		{name: "int overflow", in: "[limits]\nmax_rt_runtime_us = 99999999999999999999\n", errs: []string{"line 2", "out of range"}},
		{name: "syntax error", in: "[defaults\n", errs: []string{"/etc/rt.toml: line ", "to end table name"}},
		{name: "priority 0", in: "[defaults]\npriority = 0\n", errs: []string{"defaults.priority=0: must be from 1 to 99 and at most limits.max_priority (90)"}},
		{name: "priority over max", in: "[defaults]\npriority = 60\n[limits]\nmax_priority = 50\n", errs: []string{"defaults.priority=60", "(50)"}},
		{name: "period 0", in: "[defaults]\nrt_period_us = 0\n", errs: []string{"defaults.rt_period_us=0: must be from 1 to 1000000"}},
		{name: "period too big", in: "[defaults]\nrt_period_us = 1000001\n", errs: []string{"defaults.rt_period_us=1000001"}},
		{name: "runtime over period", in: "[defaults]\nrt_runtime_us = 2000\nrt_period_us = 1000\n", errs: []string{"defaults.rt_runtime_us=2000: must be from 1 to defaults.rt_period_us (1000)"}},
		{name: "runtime over max", in: "[defaults]\nrt_runtime_us = 960000\n", errs: []string{"defaults.rt_runtime_us=960000", "limits.max_rt_runtime_us (400000)"}},
		{name: "runtime negative", in: "[defaults]\nrt_runtime_us = -1\n", errs: []string{"defaults.rt_runtime_us=-1"}},
		{name: "bad quota", in: "[defaults]\ncpu_quota = \"off\"\n", errs: []string{`defaults.cpu_quota="off": must be disable or keep`}},
		{name: "bad mode", in: "[defaults]\nmode = \"\"\n", errs: []string{`defaults.mode="": must be apply or grant`}},
		{name: "bad exec policy", in: "[defaults]\nexec_policy = \"SCHED_FOO\"\n", errs: []string{`defaults.exec_policy="SCHED_FOO": must be one of`}},
		{name: "deadline exec policy", in: "[defaults]\nexec_policy = \"deadline\"\n", errs: []string{`defaults.exec_policy="deadline": SCHED_DEADLINE needs per-process parameters`}},
		{name: "bad allowed policy", in: "[limits]\nallowed_policies = [\"fifo\", \"iso\"]\n", errs: []string{`limits.allowed_policies[1]="iso"`}},
		{name: "max priority 0", in: "[limits]\nmax_priority = 0\n", errs: []string{"limits.max_priority=0: must be from 1 to 99"}},
		{name: "max priority 100", in: "[limits]\nmax_priority = 100\n", errs: []string{"limits.max_priority=100"}},
		{name: "max runtime 0", in: "[limits]\nmax_rt_runtime_us = 0\n", errs: []string{"limits.max_rt_runtime_us=0: must be from 1 to 1000000"}},
		{name: "max runtime too big", in: "[limits]\nmax_rt_runtime_us = 1000001\n", errs: []string{"limits.max_rt_runtime_us=1000001"}},
		{name: "relative state dir", in: "state_dir = \"run/rtshim\"\n", errs: []string{`state_dir="run/rtshim": must be an absolute path`}},
		{name: "empty state dir", in: "state_dir = \"\"\n", errs: []string{`state_dir=""`}},
		{name: "relative runc root", in: "[runc]\nroot = \"runc\"\n", errs: []string{`runc.root="runc"`}},
		{name: "empty binary", in: "[runc]\nbinary_name = \"\"\n", errs: []string{`runc.binary_name="": must name the runc binary`}},
		{name: "relative binary path", in: "[runc]\nbinary_name = \"./runc\"\n", errs: []string{`runc.binary_name="./runc"`}},
		{name: "all problems at once", in: "state_dir = \"x\"\n[defaults]\nmode = \"x\"\npriority = 100\n",
			errs: []string{"defaults.priority=100", "defaults.mode=", "state_dir="}},
		{name: "unicode value", in: "[defaults]\nmode = \"äpply\"\n", errs: []string{`defaults.mode="äpply"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in), "/etc/rt.toml")
			if tc.errs != nil {
				if err == nil || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("want InvalidArgument error, got %+v, %v", got, err)
				}
				for _, s := range tc.errs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			if tc.mod != nil {
				tc.mod(want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	var nilCfg *Config
	if err := nilCfg.Validate(); !errdefs.IsInvalidArgument(err) {
		t.Errorf("nil config: %v", err)
	}
	if err := (&Config{}).Validate(); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "rtshim config: runc.binary_name") {
		t.Errorf("zero config: %v", err)
	}
	c := Default()
	c.Limits.AllowedPolicies = []string{"fifo", "bogus"}
	if err := c.Validate(); err == nil || c.Limits.AllowedPolicies[0] != "fifo" {
		t.Errorf("a list with errors must be reported and left alone: %v, %v", err, c.Limits.AllowedPolicies)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	_, err := Load(missing)
	if !errdefs.IsNotFound(err) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[defaults]\npriority = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), bad+": defaults.priority=0") {
		t.Errorf("bad file: %v", err)
	}
	if _, err := Load(dir); err == nil || errdefs.IsNotFound(err) {
		t.Errorf("directory: %v", err)
	}
}

func TestSourceLoad(t *testing.T) {
	dir := t.TempDir()
	load := func(s Source) (*Config, string, error) {
		t.Helper()
		return s.Load()
	}
	c, name, err := load(Source{Default: filepath.Join(dir, "none.toml")})
	if err != nil || !reflect.DeepEqual(c, Default()) || !strings.Contains(name, "built-in defaults") {
		t.Errorf("no file: %+v, %q, %v", c, name, err)
	}

	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("[defaults]\npriority = 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.toml")
	if err := os.WriteFile(other, []byte("[defaults]\npriority = 8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		src  Source
		prio int
		from string
	}{
		{"default file", Source{Default: good}, 7, good},
		{"env wins over the default file", Source{Env: other, Default: good}, 8, other},
		{"path wins over env", Source{Path: good, Env: other}, 7, good},
		{"body wins over path", Source{Body: []byte("[defaults]\npriority = 9\n"), Path: good}, 9, "runtime options ConfigBody"},
	} {
		c, name, err := load(tc.src)
		if err != nil || c.Defaults.Priority != tc.prio || name != tc.from {
			t.Errorf("%s: priority %v from %q, %v; want %d from %q", tc.name, c, name, err, tc.prio, tc.from)
		}
	}

	// A named file must exist; a dangling symlink at the default path is a broken config, not
	// an absent one.
	if _, _, err := load(Source{Env: filepath.Join(dir, "gone.toml")}); !errdefs.IsNotFound(err) {
		t.Errorf("missing $RTSHIM_CONFIG file: %v", err)
	}
	link := filepath.Join(dir, "link.toml")
	if err := os.Symlink(filepath.Join(dir, "gone.toml"), link); err != nil {
		t.Fatal(err)
	}
	if _, _, err := load(Source{Default: link}); !errdefs.IsNotFound(err) {
		t.Errorf("dangling symlink: %v", err)
	}

	if _, err := os.Lstat(DefaultPath); errors.Is(err, fs.ErrNotExist) {
		if c, _, err := (Source{}).Load(); err != nil || !reflect.DeepEqual(c, Default()) {
			t.Errorf("Source{}.Load(): %+v, %v", c, err)
		}
	}
}
