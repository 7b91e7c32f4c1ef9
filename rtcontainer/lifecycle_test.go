package rtcontainer

import "testing"

func TestSpecAtLeast(t *testing.T) {
	for v, want := range map[string]bool{"1.0.2-dev": false, "1.1.0": true, "1.2.1": true, "2.0": true, "1": false, "x.y": false, "1.0.0": false} {
		if got := specAtLeast(v, 1, 1); got != want {
			t.Errorf("specAtLeast(%q) = %v", v, got)
		}
	}
}
