//go:build linux

package k8stest

import (
	"os"

	"github.com/rtshim/rtshim/internal/harness"
)

// appImage is the name of the test rootfs as an image: the name contrib/kubernetes/pod.yaml
// uses, so that the contrib files run unchanged on a node without a registry.
const appImage = "docker.io/library/busybox:1.37"

// importImages imports the pause image (the rootfs's /bin/pause) and the app image (the whole
// rootfs) into CRI's namespace, as `ctr -n k8s.io images import` does on a node without a
// registry.
func (n *node) importImages() error {
	pause, err := harness.Layer(rootfsDir, "bin/pause")
	if err != nil {
		return err
	}
	app, err := harness.Layer(rootfsDir, "")
	if err != nil {
		return err
	}
	archive, err := harness.OCIArchive(
		harness.OCIImage{Name: pauseImage, Layer: pause, Entrypoint: []string{"/bin/pause"}},
		harness.OCIImage{Name: appImage, Layer: app, Cmd: []string{"sh"}},
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
