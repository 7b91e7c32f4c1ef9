//go:build linux

package k8stest

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// appImage is the name of the test rootfs as an image: the name contrib/kubernetes/pod.yaml
// uses, so that the contrib files run unchanged on a node without a registry.
const appImage = "docker.io/library/busybox:1.37"

// ociImage is a one-layer image for importImages.
type ociImage struct {
	name       string
	layer      []byte // an uncompressed tar
	entrypoint []string
	cmd        []string
}

// importImages imports the pause image (the rootfs's /bin/pause) and the app image (the whole
// rootfs) into CRI's namespace, as `ctr -n k8s.io images import` does on a node without a
// registry.
func (n *node) importImages() error {
	pause, err := layerFromDir(rootfsDir, "bin/pause")
	if err != nil {
		return err
	}
	app, err := layerFromDir(rootfsDir, "")
	if err != nil {
		return err
	}
	archive, err := ociArchive(
		ociImage{name: pauseImage, layer: pause, entrypoint: []string{"/bin/pause"}},
		ociImage{name: appImage, layer: app, cmd: []string{"sh"}},
	)
	if err != nil {
		return err
	}
	path := n.dir("images.tar")
	if err := os.WriteFile(path, archive, 0o644); err != nil {
		return err
	}
	_, err = n.ctr("images", "import", path)
	return err
}

// layerFromDir is an image layer holding dir's tree (or, when only is set, just that file
// and its directory), owned by root.
func layerFromDir(dir, only string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if only != "" && rel != only && !(d.IsDir() && rel == filepath.Dir(only)) {
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

// ociArchive is an OCI image layout archive holding images, named by the annotation
// containerd's importer reads.
func ociArchive(images ...ociImage) ([]byte, error) {
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
		manifest.Annotations = map[string]string{"io.containerd.image.name": img.name}
		index.Manifests = append(index.Manifests, manifest)
	}
	add(ocispec.ImageLayoutFile, mustJSON(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}))
	add(ocispec.ImageIndexFile, mustJSON(index))
	if werr == nil {
		werr = tw.Close()
	}
	return buf.Bytes(), werr
}
