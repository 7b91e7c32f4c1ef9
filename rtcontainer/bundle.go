package rtcontainer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BundleRecord, in the bundle, names the namespace and state dir the container's claim is in:
// what `containerd-shim-rt-v2 delete` (run by containerd after a shim died) and runc-rt's
// delete and kill (with a broken config, or one changed since create) need to give back what the
// container holds. Prepare writes it before anything else of a container that may ask for
// something (oci.MayAsk): one that cannot ask never holds anything; for runc-rt (Detached) of
// every container, so that its kill and delete need not ask runc where the bundle is.
type BundleRecord struct {
	Namespace string `json:"namespace"`
	// ID names the container (rtshim 0.1 wrote none): runc-rt takes the record in its working
	// directory only when it is the container's (see wrapper's stateDir).
	ID       string `json:"id,omitempty"`
	StateDir string `json:"state_dir"`
}

const bundleRecordFile = "rtshim.json"

func writeBundleRecord(bundle string, rec BundleRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, bundleRecordFile), b, 0o600)
}

// ReadBundleRecord reads the bundle's record; fs.ErrNotExist when it has none.
func ReadBundleRecord(bundle string) (*BundleRecord, error) {
	b, err := os.ReadFile(filepath.Join(bundle, bundleRecordFile))
	if err != nil {
		return nil, err
	}
	var rec BundleRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("parse %s: %w", bundleRecordFile, err)
	}
	if !strings.HasPrefix(rec.StateDir, "/") {
		return nil, fmt.Errorf("%s: state_dir %q is not absolute", bundleRecordFile, rec.StateDir)
	}
	return &rec, nil
}
