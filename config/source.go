package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/containerd/errdefs"
)

// Source says where a container's config comes from, in the order every front door looks:
// the runtime options' ConfigBody (CRI sends the whole options table when it names no
// ConfigPath), else their ConfigPath, else the file $RTSHIM_CONFIG names, else the file at
// Default (DefaultPath), else the built-in defaults. A file that is named must exist; a
// malformed one is an error, never a silent default.
type Source struct {
	Body []byte // runtime options' ConfigBody
	Path string // runtime options' ConfigPath
	Env  string // the value of $RTSHIM_CONFIG
	// Default is the file read when nothing else names one; "" means DefaultPath. rtshim doctor
	// points it below its fake /etc.
	Default string
}

// FromEnv is the source of a front door that has no runtime options: $RTSHIM_CONFIG, else
// DefaultPath.
func FromEnv() Source { return Source{Env: os.Getenv(EnvPath)} }

// Load reads the config and says where it came from: a path, "runtime options ConfigBody",
// or "built-in defaults".
func (s Source) Load() (*Config, string, error) {
	switch {
	case len(s.Body) > 0:
		const name = "runtime options ConfigBody"
		c, err := Parse(s.Body, name)
		return c, name, err
	case s.Path != "":
		c, err := Load(s.Path)
		return c, s.Path, err
	case s.Env != "":
		c, err := Load(s.Env)
		return c, s.Env, err
	}
	p := s.Default
	if p == "" {
		p = DefaultPath
	}
	// Lstat, not ReadFile's ENOENT, decides that there is no file: a dangling symlink at the
	// path is a broken config, and must be an error, not the defaults.
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return Default(), "built-in defaults (no " + p + ")", nil
	}
	c, err := Load(p)
	return c, p, err
}

// Load reads and parses the config file at path. A missing file is ErrNotFound (and
// fs.ErrNotExist): when the operator names a file, it must exist.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: config file %s: %w", errdefs.ErrNotFound, path, err)
	}
	if err != nil {
		// Unreadable (a directory, no permission, I/O error): the operator must fix the host.
		return nil, fmt.Errorf("%w: read config file %q: %w", errdefs.ErrFailedPrecondition, path, err)
	}
	return Parse(data, path)
}
