package main

import (
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd runs a single-member etcd inside this process, listening on
// 127.0.0.1 only, with its data under <state-dir>/etcd so that it survives a
// restart of the process.
func startEtcd(stateDir string, clientPort, peerPort int, noFsync bool) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "k8s-kv-test"
	cfg.Dir = filepath.Join(stateDir, "etcd")
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// The metrics listener defaults to the client URLs; keep it there (no
	// extra port).
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"stderr"}
	// fsync protects against a machine crash, not a process crash: a killed or
	// restarted process still finds its writes in the page cache. Tests gain a
	// lot of write latency from skipping it.
	cfg.UnsafeNoFsync = noFsync
	// Room for history: benchmarks rewrite ~1 MiB objects tens of times a
	// second, and history is only freed by the API server's compaction (every
	// minute here, see main.go). The default 2 GiB quota was exceeded by one
	// benchmark run ("mvcc: database space exceeded", and etcd then refuses
	// every write until an operator disarms the alarm). 8 GiB is etcd's
	// suggested maximum; the file only grows as far as the history needs.
	cfg.QuotaBackendBytes = 8 << 30
	// Give the freed pages of a state directory reused across runs back to the
	// file system when the server starts. The setting exists from etcd 3.6 on;
	// the Kubernetes 1.33 build embeds etcd 3.5, which starts without it.
	if f := reflect.ValueOf(cfg).Elem().FieldByName("BootstrapDefragThresholdMegabytes"); f.IsValid() {
		f.SetUint(256)
	}
	// Everything else keeps etcd's defaults, which shape what clients see:
	// MaxRequestBytes 1.5 MiB ("etcdserver: request is too large") as in a
	// production etcd, and no auto-compaction (kube-apiserver compacts itself,
	// --etcd-compaction-interval).

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd failed: %w", err)
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("etcd was not ready after 60s")
	}
}
