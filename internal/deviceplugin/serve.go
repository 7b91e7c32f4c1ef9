package deviceplugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// SocketName is the plugin's socket in the kubelet's device plugin directory.
const SocketName = "rtshim-bandwidth.sock"

// Serve runs the plugin in dir (the kubelet's device plugin directory, holding kubelet.sock)
// until ctx is done: it serves on dir/SocketName, registers with the kubelet, reads the node
// every Interval, and serves and registers again whenever its socket is gone (a restarted
// kubelet removes every plugin's socket, and expects plugins to register anew).
func (p *Plugin) Serve(ctx context.Context, dir string) error {
	sock := filepath.Join(dir, SocketName)
	for {
		p.Refresh(ctx)
		stop, err := p.serveOnce(ctx, dir, sock)
		if err != nil {
			log.G(ctx).WithError(err).Warn("device plugin: serve and register; trying again")
		}
		// Until the socket disappears (kubelet restart) or ctx ends: refresh the figure.
		tick := time.NewTicker(p.Interval)
		for err == nil {
			select {
			case <-ctx.Done():
				tick.Stop()
				stop()
				return nil
			case <-tick.C:
			}
			p.Refresh(ctx)
			if _, serr := os.Stat(sock); serr != nil {
				log.G(ctx).Info("device plugin: socket removed (kubelet restarted?): registering again")
				break
			}
		}
		tick.Stop()
		if stop != nil {
			stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.Interval):
		}
	}
}

// serveOnce starts the gRPC server on sock and registers with the kubelet.
func (p *Plugin) serveOnce(ctx context.Context, dir, sock string) (stop func(), err error) {
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(srv, p)
	go func() { _ = srv.Serve(l) }()
	stop = func() {
		srv.Stop()
		os.Remove(sock)
	}
	if err := register(ctx, filepath.Join(dir, filepath.Base(pluginapi.KubeletSocket)), p.Source.Resource()); err != nil {
		stop()
		return nil, err
	}
	log.G(ctx).WithField("resource", p.Source.Resource()).WithField("socket", sock).Info("device plugin registered with the kubelet")
	return stop, nil
}

func register(ctx context.Context, kubeletSock, resource string) error {
	conn, err := grpc.NewClient("unix://"+kubeletSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to the kubelet at %s: %w", kubeletSock, err)
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(rctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     SocketName,
		ResourceName: resource,
		Options:      &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true},
	})
	if err != nil {
		return fmt.Errorf("register %s with the kubelet at %s: %w", resource, kubeletSock, err)
	}
	return nil
}
