package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	namespacecontroller "k8s.io/kubernetes/pkg/controller/namespace"
)

// runNamespaceController runs kube-controller-manager's namespace controller
// inside this process once the API server answers, so that deleting a
// namespace removes its objects and the namespace itself, as in a real
// cluster. (Without it a deleted namespace stays Terminating forever.)
//
// No other controller runs: no garbage collector (ownerReferences are not
// followed), no service-account or root-CA publisher (a namespace has no
// "default" ServiceAccount and no kube-root-ca.crt ConfigMap).
func runNamespaceController(ctx context.Context, port int, caFile, adminToken string) {
	cfg := &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", port),
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAFile: caFile},
		QPS:             400,
		Burst:           1000,
		UserAgent:       "k8s-kv-test-cluster/namespace-controller",
	}
	if err := waitReady(ctx, cfg); err != nil {
		klog.ErrorS(err, "namespace controller not started")
		return
	}
	client, err := clientset.NewForConfig(cfg)
	if err != nil {
		klog.ErrorS(err, "namespace controller: client")
		return
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		klog.ErrorS(err, "namespace controller: metadata client")
		return
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	nc := namespacecontroller.NewNamespaceController(
		ctx, client, meta,
		client.Discovery().ServerPreferredNamespacedResources,
		factory.Core().V1().Namespaces(),
		5*time.Minute,
		v1.FinalizerKubernetes,
	)
	factory.Start(ctx.Done())
	klog.InfoS("namespace controller started")
	nc.Run(ctx, 5)
	factory.Shutdown()
}

// waitReady polls /readyz until the server answers 200 or ctx ends.
func waitReady(ctx context.Context, cfg *rest.Config) error {
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
