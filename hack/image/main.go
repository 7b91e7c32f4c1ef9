// Command image builds the node installer's image (make image) as an OCI image layout archive,
// with go-containerregistry: no Docker daemon, no registry. The image holds the installer
// (its entrypoint), the binaries it installs and the default config files; `ctr -n k8s.io
// images import` (or any OCI tool) loads it.
//
//	go run . -o rtshim-node-installer.tar -name localhost/rtshim/node-installer:latest \
//	    -file /opt/rtshim/bin/rtshim-node-install=_output/bin/rtshim-node-install ...
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// files are -file image-path=source flags.
type files map[string]string

func (f files) String() string { return fmt.Sprint(map[string]string(f)) }
func (f files) Set(s string) error {
	dst, src, ok := strings.Cut(s, "=")
	if !ok || !path.IsAbs(dst) {
		return fmt.Errorf("-file %q: want /path/in/image=source", s)
	}
	f[dst] = src
	return nil
}

func main() {
	out := flag.String("o", "", "output: an OCI image layout as a tar archive")
	name := flag.String("name", "", "image name, e.g. localhost/rtshim/node-installer:latest")
	entrypoint := flag.String("entrypoint", "", "the image's entrypoint (a path in the image)")
	fs := files{}
	flag.Var(fs, "file", "image-path=source (repeatable)")
	flag.Parse()
	if *out == "" || *name == "" || *entrypoint == "" || len(fs) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := build(*out, *name, *entrypoint, fs); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func build(out, name, entrypoint string, fs files) error {
	// The file times are the commit's (SOURCE_DATE_EPOCH), so the same inputs give the same image.
	mtime := time.Unix(0, 0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		mtime = time.Unix(sec, 0)
	}
	layerTar, err := layerOf(fs, mtime)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Created = v1.Time{Time: mtime}
	cfg.Config.Entrypoint = []string{entrypoint}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "rtshim-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	// containerd's importer names the image after io.containerd.image.name, other OCI tools
	// after org.opencontainers.image.ref.name.
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          name,
		"org.opencontainers.image.ref.name": name,
	}), layout.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH})); err != nil {
		return err
	}
	return tarDir(dir, out, mtime)
}

// layerOf is an uncompressed layer holding fs (with their parent directories), owned by root.
func layerOf(fs files, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	dsts := make([]string, 0, len(fs))
	for dst := range fs {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)
	for _, dst := range dsts {
		var parents []string
		for d := path.Dir(dst); d != "/"; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: mtime}); err != nil {
				return nil, err
			}
		}
		b, err := os.ReadFile(fs[dst])
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(fs[dst])
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: strings.TrimPrefix(dst, "/"), Mode: int64(st.Mode().Perm()), Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), tw.Close()
}

// tarDir writes dir's files into the tar archive out.
func tarDir(dir, out string, mtime time.Time) error {
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name, hdr.ModTime = filepath.ToSlash(rel), mtime
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}
