//go:build linux

package harness

// Local images for CRI tests: a node without a registry imports them, as `ctr -n k8s.io
// images import` does.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// OCIImage is a one-layer image for Daemon.ImportImages.
type OCIImage struct {
	Name       string // full reference, e.g. docker.io/library/busybox:1.37
	Layer      []byte // an uncompressed tar
	Entrypoint []string
	Cmd        []string
}

// LayerFromDir is an image layer holding dir's tree, owned by root.
func LayerFromDir(t testing.TB, dir string) []byte {
	t.Helper()
	b, err := Layer(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Layer is an image layer holding dir's tree (or, when only is set, just that file and its
// directory), owned by root.
func Layer(dir, only string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if only != "" && rel != only && (!d.IsDir() || rel != filepath.Dir(only)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
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
		return nil, fmt.Errorf("layer from %s: %w", dir, err)
	}
	return buf.Bytes(), nil
}

// LayerWithFile is an image layer holding one executable file, name, with src's content.
func LayerWithFile(t testing.TB, name, src string) []byte {
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

// ImportImages writes images as an OCI image layout archive and imports it with
// `ctr images import` into namespace ns of the daemon, under their names, unpacked for the
// default snapshotter, as `ctr -n k8s.io images import` does for a node without a registry.
func (d *Daemon) ImportImages(t testing.TB, ns string, images ...OCIImage) {
	t.Helper()
	b, err := OCIArchive(images...)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "images.tar")
	if err := os.WriteFile(archive, b, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), d.env.Timeouts.Ctr)
	defer cancel()
	args := []string{"images", "import"}
	if d.snapshotter != "" {
		// The daemon's transfer service unpacks only for the snapshotters of its
		// unpack_config (overlayfs by default); ctr's local import for any.
		args = append(args, "--local", "--snapshotter", d.snapshotter)
	}
	args = append(args, archive)
	if _, _, err := d.CtrContext(ctx, ns, args...); err != nil {
		t.Fatal(err)
	}
}

// OCIArchive is an OCI image layout archive holding images, named by the annotation
// containerd's importer reads.
func OCIArchive(images ...OCIImage) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var werr error
	add := func(name string, b []byte) {
		if werr == nil {
			werr = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		}
		if werr == nil {
			_, werr = tw.Write(b)
		}
	}
	blob := func(mediaType string, b []byte) ocispec.Descriptor {
		dgst := digest.FromBytes(b)
		add("blobs/sha256/"+dgst.Encoded(), b)
		return ocispec.Descriptor{MediaType: mediaType, Digest: dgst, Size: int64(len(b))}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil && werr == nil {
			werr = err
		}
		return b
	}
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, img := range images {
		layer := blob(ocispec.MediaTypeImageLayer, img.Layer)
		config := blob(ocispec.MediaTypeImageConfig, mustJSON(ocispec.Image{
			Platform: platform,
			Config: ocispec.ImageConfig{
				Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
				Entrypoint: img.Entrypoint,
				Cmd:        img.Cmd,
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
		manifest.Annotations = map[string]string{"io.containerd.image.name": img.Name}
		index.Manifests = append(index.Manifests, manifest)
	}
	add(ocispec.ImageLayoutFile, mustJSON(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}))
	add(ocispec.ImageIndexFile, mustJSON(index))
	if werr == nil {
		werr = tw.Close()
	}
	return buf.Bytes(), werr
}
