package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
)

// kubeconfigPath is <state-dir>/kubeconfig for the admin and
// <state-dir>/kubeconfig-<user> for everyone else.
func kubeconfigPath(stateDir, user string) string {
	if user == "admin" {
		return filepath.Join(stateDir, "kubeconfig")
	}
	return filepath.Join(stateDir, "kubeconfig-"+user)
}

// writeKubeconfigs writes one kubeconfig per test user: the CA inline, the
// server on 127.0.0.1, a bearer token and a context in namespace "default".
func writeKubeconfigs(stateDir, caFile string, port int, users []testUser) error {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	caData := base64.StdEncoding.EncodeToString(caPEM)
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	for _, u := range users {
		// JSON is valid YAML, but YAML reads better for people; every value is
		// quoted so tokens and URLs need no further escaping.
		doc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: k8s-kv-test
  cluster:
    server: %q
    certificate-authority-data: %q
users:
- name: %q
  user:
    token: %q
contexts:
- name: %q
  context:
    cluster: k8s-kv-test
    user: %q
    namespace: default
current-context: %q
preferences: {}
`, server, caData, u.Name, u.Token, "k8s-kv-test-"+u.Name, u.Name, "k8s-kv-test-"+u.Name)
		if err := writeFileAtomic(kubeconfigPath(stateDir, u.Name), []byte(doc), 0o600); err != nil {
			return err
		}
	}
	return nil
}
