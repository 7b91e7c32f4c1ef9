package rtcontainer

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ReadSpec reads a bundle's config.json.
func ReadSpec(p string) (*specs.Spec, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read bundle spec: %w", err)
	}
	return decodeSpec(p, b)
}

func decodeSpec(p string, b []byte) (*specs.Spec, error) {
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("%w: parse %s: %w", errdefs.ErrInvalidArgument, p, err)
	}
	return &spec, nil
}

// WriteSpec replaces a bundle's config.json atomically (a rename), so runc never reads half.
func WriteSpec(p string, spec *specs.Spec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	tmp := p + ".rtshim"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write bundle spec: %w", err)
	}
	return os.Rename(tmp, p)
}
