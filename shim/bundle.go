package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// bundleRecord lets `containerd-shim-rt-v2 delete`, run by containerd after a shim died, find
// the state to release: it has neither the shim's memory nor the runtime options.
type bundleRecord struct {
	Namespace string `json:"namespace"`
	StateDir  string `json:"state_dir"`
}

const bundleRecordFile = "rtshim.json"

func writeBundleRecord(bundle string, rec bundleRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, bundleRecordFile), b, 0o600)
}

func readBundleRecord(bundle string) (*bundleRecord, error) {
	b, err := os.ReadFile(filepath.Join(bundle, bundleRecordFile))
	if err != nil {
		return nil, err
	}
	var rec bundleRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("parse %s: %w", bundleRecordFile, err)
	}
	if !strings.HasPrefix(rec.StateDir, "/") {
		return nil, fmt.Errorf("%s: state_dir %q is not absolute", bundleRecordFile, rec.StateDir)
	}
	return &rec, nil
}
