package statefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "r.json")
	var got struct{ N int }
	if ok, err := ReadJSON(p, &got); ok || err != nil {
		t.Fatalf("no record: ok=%v err=%v, want false, nil", ok, err)
	}
	if err := WriteJSON(p, struct{ N int }{7}); err != nil {
		t.Fatal(err)
	}
	if ok, err := ReadJSON(p, &got); !ok || err != nil || got.N != 7 {
		t.Fatalf("read back ok=%v err=%v %+v", ok, err, got)
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := ReadJSON(p, &got); !ok || err == nil || !strings.Contains(err.Error(), "corrupt state record "+p) {
		t.Errorf("corrupt record: ok=%v err=%v", ok, err)
	}
	for range 2 { // the second finds it gone
		if err := Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}
