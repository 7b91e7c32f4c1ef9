//go:build linux

package harness

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func TestLayer(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"bin/pause", "bin/sh", "etc/hosts"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	all, err := Layer(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tarNames(t, all), []string{"bin/", "bin/pause", "bin/sh", "etc/", "etc/hosts"}; !slices.Equal(got, want) {
		t.Errorf("Layer(dir, \"\") = %q, want %q", got, want)
	}
	one, err := Layer(dir, "bin/pause")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tarNames(t, one), []string{"bin/", "bin/pause"}; !slices.Equal(got, want) {
		t.Errorf("Layer(dir, \"bin/pause\") = %q, want %q", got, want)
	}
	if _, err := Layer(filepath.Join(dir, "missing"), ""); err == nil {
		t.Error("Layer of a missing directory: no error")
	}
}

func TestOCIArchive(t *testing.T) {
	b, err := OCIArchive(OCIImage{Name: "example.com/a:1", Layer: []byte("layer"), Cmd: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(b))
	var index ocispec.Index
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no %s in the archive: %v", ocispec.ImageIndexFile, err)
		}
		if h.Name == ocispec.ImageIndexFile {
			if err := json.NewDecoder(tr).Decode(&index); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations["io.containerd.image.name"] != "example.com/a:1" {
		t.Errorf("index manifests = %+v, want one named example.com/a:1", index.Manifests)
	}
}
