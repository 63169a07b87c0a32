package main

// Key material and credentials for the test API server. Everything is generated
// once and kept in the state directory, so a restart (or a test run that reads
// the kubeconfigs) sees the same CA, tokens and service-account key.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pkiPaths names the files kept under <state-dir>/pki.
type pkiPaths struct {
	CACert, CAKey           string
	ServingCert, ServingKey string
	SAKey, SAPub            string
}

func newPKIPaths(stateDir string) pkiPaths {
	dir := filepath.Join(stateDir, "pki")
	return pkiPaths{
		CACert:      filepath.Join(dir, "ca.crt"),
		CAKey:       filepath.Join(dir, "ca.key"),
		ServingCert: filepath.Join(dir, "apiserver.crt"),
		ServingKey:  filepath.Join(dir, "apiserver.key"),
		SAKey:       filepath.Join(dir, "sa.key"),
		SAPub:       filepath.Join(dir, "sa.pub"),
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeFileAtomic writes via a temporary file and a rename so a reader never
// sees a half-written file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
}

// ensurePKI creates the CA, the serving certificate and the service-account key
// pair if they are missing. Existing files are left alone.
func ensurePKI(p pkiPaths) error {
	if !fileExists(p.CACert) || !fileExists(p.CAKey) {
		if err := generateCA(p); err != nil {
			return fmt.Errorf("generate CA: %w", err)
		}
		// A new CA invalidates any serving certificate signed by an old one.
		_ = os.Remove(p.ServingCert)
		_ = os.Remove(p.ServingKey)
	}
	if !fileExists(p.ServingCert) || !fileExists(p.ServingKey) {
		if err := generateServingCert(p); err != nil {
			return fmt.Errorf("generate serving certificate: %w", err)
		}
	}
	if !fileExists(p.SAKey) || !fileExists(p.SAPub) {
		if err := generateServiceAccountKey(p); err != nil {
			return fmt.Errorf("generate service-account key: %w", err)
		}
	}
	return nil
}

func generateCA(p pkiPaths) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "k8s-kv-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(p.CAKey, pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(p.CACert, pemBlock("CERTIFICATE", der), 0o644)
}

func loadCA(p pkiPaths) (*x509.Certificate, any, error) {
	certPEM, err := os.ReadFile(p.CACert)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(p.CAKey)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("CA files are not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func generateServingCert(p pkiPaths) error {
	caCert, caKey, err := loadCA(p)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local",
		},
		// 10.0.0.1 is the first address of --service-cluster-ip-range, the in-cluster
		// "kubernetes" service IP. It is only a name in the certificate: nothing here
		// ever connects to it.
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(p.ServingKey, pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(p.ServingCert, pemBlock("CERTIFICATE", der), 0o644)
}

func generateServiceAccountKey(p pkiPaths) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(p.SAKey, pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(p.SAPub, pemBlock("PUBLIC KEY", pubDER), 0o644)
}

// testUser is one line of the static token file.
type testUser struct {
	Name   string
	Token  string
	Groups []string
}

// The users of the test cluster: an administrator and two users that have no
// rights at all until a test grants them some with a Role and a RoleBinding.
var userSpecs = []struct {
	name   string
	groups []string
}{
	{"admin", []string{"system:masters"}},
	{"alice", nil},
	{"bob", nil},
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// ensureTokens reads <state-dir>/tokens.csv (the --token-auth-file) and adds a
// random token for every user that is missing from it.
// Format of a line: token,user,uid,"group1,group2"
func ensureTokens(path string) ([]testUser, error) {
	existing := map[string]string{} // user -> token
	if data, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			fields := strings.SplitN(strings.TrimSpace(line), ",", 4)
			if len(fields) >= 2 && fields[0] != "" {
				existing[fields[1]] = fields[0]
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}

	var users []testUser
	var b strings.Builder
	for _, spec := range userSpecs {
		tok, ok := existing[spec.name]
		if !ok {
			var err error
			if tok, err = randomToken(); err != nil {
				return nil, err
			}
		}
		users = append(users, testUser{Name: spec.name, Token: tok, Groups: spec.groups})
		fmt.Fprintf(&b, "%s,%s,%s", tok, spec.name, spec.name)
		if len(spec.groups) > 0 {
			fmt.Fprintf(&b, ",%q", strings.Join(spec.groups, ","))
		}
		b.WriteString("\n")
	}
	if err := writeFileAtomic(path, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	return users, nil
}

// runClientCert prints a client certificate and its private key (PEM) for a
// user, signed by the state directory's CA: kube-apiserver trusts that CA for
// client certificates (--client-ca-file), taking the user name from the
// CommonName and the groups from the Organizations, as a kind or kubeadm
// cluster does for its admin. Each call makes a new key and certificate.
func runClientCert(args []string) int {
	fs := flag.NewFlagSet("test-apiserver client-cert", flag.ContinueOnError)
	stateDir := fs.String("state-dir", ".cluster", "state directory whose pki/ca.crt and ca.key sign the certificate")
	user := fs.String("user", "", "user name (the certificate's CommonName)")
	groups := fs.String("groups", "", "comma-separated groups (the certificate's Organizations)")
	validFor := fs.Duration("valid-for", 24*time.Hour, "how long the certificate is valid")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *user == "" {
		return fail("client-cert: --user is required")
	}
	caCert, caKey, err := loadCA(newPKIPaths(*stateDir))
	if err != nil {
		return fail("client-cert: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fail("client-cert: %v", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return fail("client-cert: %v", err)
	}
	var orgs []string
	if *groups != "" {
		orgs = strings.Split(*groups, ",")
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: *user, Organization: orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(*validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fail("client-cert: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fail("client-cert: %v", err)
	}
	os.Stdout.Write(pemBlock("CERTIFICATE", der))
	os.Stdout.Write(pemBlock("PRIVATE KEY", keyDER))
	return 0
}
