// Command test-apiserver runs a real kube-apiserver with an embedded etcd in one
// process, for the integration tests of k8s-kv. It listens on 127.0.0.1 only.
//
//	test-apiserver --state-dir .cluster --secure-port 6443 \
//	    --etcd-client-port 2379 --etcd-peer-port 2380 [-- extra kube-apiserver flags]
//	test-apiserver client-cert --state-dir .cluster --user carol [--groups g1,g2]
//
// The state directory keeps the etcd data, the CA and keys (pki/), the static
// token file (tokens.csv) and one kubeconfig per user (kubeconfig,
// kubeconfig-alice, kubeconfig-bob). The client-cert command prints a client
// certificate and key signed by that CA, which the server trusts. SIGTERM or SIGINT shuts down the API
// server gracefully, then etcd; a second signal exits at once.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client-cert" {
		os.Exit(runClientCert(os.Args[2:]))
	}
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("test-apiserver", flag.ContinueOnError)
	stateDir := fs.String("state-dir", ".cluster", "directory for etcd data, keys, tokens and kubeconfigs")
	securePort := fs.Int("secure-port", 6443, "HTTPS port of the API server on 127.0.0.1")
	etcdClientPort := fs.Int("etcd-client-port", 2379, "etcd client port on 127.0.0.1")
	etcdPeerPort := fs.Int("etcd-peer-port", 2380, "etcd peer port on 127.0.0.1")
	etcdNoFsync := fs.Bool("etcd-unsafe-no-fsync", true, "skip fsync in etcd (safe against process crashes, not machine crashes)")
	nsController := fs.Bool("namespace-controller", true, "run the namespace controller so that deleted namespaces are emptied and removed")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	// Whatever follows "--" goes to kube-apiserver unchanged (later flags win).
	extraArgs := fs.Args()

	dir, err := filepath.Abs(*stateDir)
	if err != nil {
		return fail("state dir: %v", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail("state dir: %v", err)
	}
	pki := newPKIPaths(dir)
	if err := ensurePKI(pki); err != nil {
		return fail("%v", err)
	}
	tokenFile := filepath.Join(dir, "tokens.csv")
	users, err := ensureTokens(tokenFile)
	if err != nil {
		return fail("tokens: %v", err)
	}
	if err := writeKubeconfigs(dir, pki.CACert, *securePort, users); err != nil {
		return fail("kubeconfigs: %v", err)
	}

	// Build the command first: it installs the SIGTERM/SIGINT handler (this
	// may happen only once per process) whose context governs everything.
	cmd := app.NewAPIServerCommand()
	ctx := cmd.Context()

	etcd, err := startEtcd(dir, *etcdClientPort, *etcdPeerPort, *etcdNoFsync)
	if err != nil {
		return fail("etcd: %v", err)
	}
	defer etcd.Close()
	fmt.Fprintf(os.Stderr, "test-apiserver: etcd ready on 127.0.0.1:%d\n", *etcdClientPort)
	if ctx.Err() != nil {
		return 0
	}

	args := []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", *etcdClientPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", *securePort),
		"--cert-dir=" + filepath.Dir(pki.CACert),
		"--tls-cert-file=" + pki.ServingCert,
		"--tls-private-key-file=" + pki.ServingKey,
		"--client-ca-file=" + pki.CACert,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + pki.SAPub,
		"--service-account-signing-key-file=" + pki.SAKey,
		"--authorization-mode=RBAC",
		"--token-auth-file=" + tokenFile,
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=true",
		// Compact etcd's history every minute instead of every five: benchmarks
		// write history fast enough to fill etcd's quota within five minutes.
		"--etcd-compaction-interval=1m",
	}
	args = append(args, extraArgs...)
	cmd.SetArgs(args)

	var wg sync.WaitGroup
	ctrlCtx, stopControllers := context.WithCancel(ctx)
	if *nsController {
		wg.Go(func() {
			runNamespaceController(ctrlCtx, *securePort, pki.CACert, users[0].Token)
		})
	}

	code := cli.Run(cmd)
	stopControllers()
	wg.Wait()
	fmt.Fprintf(os.Stderr, "test-apiserver: kube-apiserver exited (code %d), stopping etcd\n", code)
	return code
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "test-apiserver: "+format+"\n", args...)
	return 1
}
