//go:build linux

package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rtshim/rtshim/internal/harness"
)

// ociImage is a one-layer image for importImages.
type ociImage struct {
	name       string // full reference, e.g. docker.io/library/busybox:1.37
	layer      []byte // an uncompressed tar
	entrypoint []string
	cmd        []string
}

// layerFromDir is an image layer holding dir's tree, owned by root.
func layerFromDir(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		case !info.Mode().IsRegular() && !info.IsDir():
			return nil // no device nodes or sockets in an image
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatalf("layer from %s: %v", dir, err)
	}
	return buf.Bytes()
}

// layerWithFile is an image layer holding one executable file, name, with src's content.
func layerWithFile(t testing.TB, name, src string) []byte {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// importImages writes images as an OCI image layout archive and imports it with
// `ctr images import` into namespace ns of the daemon, under their names, unpacked for the
// default snapshotter, as `ctr -n k8s.io images import` does for a node without a registry.
func importImages(t testing.TB, d *harness.Daemon, ns string, images ...ociImage) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	blob := func(mediaType string, b []byte) ocispec.Descriptor {
		dgst := digest.FromBytes(b)
		add("blobs/sha256/"+dgst.Encoded(), b)
		return ocispec.Descriptor{MediaType: mediaType, Digest: dgst, Size: int64(len(b))}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, img := range images {
		layer := blob(ocispec.MediaTypeImageLayer, img.layer)
		config := blob(ocispec.MediaTypeImageConfig, mustJSON(ocispec.Image{
			Platform: platform,
			Config: ocispec.ImageConfig{
				Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
				Entrypoint: img.entrypoint,
				Cmd:        img.cmd,
			},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
		}))
		manifest := blob(ocispec.MediaTypeImageManifest, mustJSON(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    config,
			Layers:    []ocispec.Descriptor{layer},
		}))
		manifest.Platform = &platform
		// containerd's importer names the image after this annotation.
		manifest.Annotations = map[string]string{"io.containerd.image.name": img.name}
		index.Manifests = append(index.Manifests, manifest)
	}
	add(ocispec.ImageLayoutFile, mustJSON(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}))
	add(ocispec.ImageIndexFile, mustJSON(index))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	archive := writeFile(t, t.TempDir(), "images.tar", buf.String())

	ctx, cancel := context.WithTimeout(context.Background(), env.Timeouts.Ctr)
	defer cancel()
	if _, _, err := d.CtrContext(ctx, ns, "images", "import", archive); err != nil {
		t.Fatal(err)
	}
}
