package stack

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Controllers kube-controller-manager runs: what Deployments, PDB status,
// default ServiceAccounts, node taints and garbage collection need.
const controllers = "deployment-controller,replicaset-controller,serviceaccount-controller," +
	"serviceaccount-token-controller,disruption-controller,node-lifecycle-controller," +
	"garbage-collector-controller,namespace-controller,pod-garbage-collector-controller," +
	"taint-eviction-controller,statefulset-controller,daemonset-controller,job-controller"

// insecureHTTP talks to the self-signed loopback endpoints.
var insecureHTTP = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // loopback test servers with self-signed certs
}

// httpOK GETs url (with an optional bearer token) and wants a 200 whose body
// contains want.
func httpOK(ctx context.Context, url, token, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := insecureHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, body)
	}
	if want != "" && !strings.Contains(string(body), want) {
		return fmt.Errorf("GET %s: body lacks %q: %.200s", url, want, body)
	}
	return nil
}

func (s *Stack) addEtcd(ctx context.Context) error {
	bin, err := ToolPath("etcd")
	if err != nil {
		return err
	}
	dataDir := filepath.Join(s.Dir, "etcd")
	var client, peer int
	alloc := func() error {
		p, err := freePorts(2)
		if err != nil {
			return err
		}
		client, peer = p[0], p[1]
		s.EtcdURL = "http://" + hostPort(client)
		return nil
	}
	if err := alloc(); err != nil {
		return err
	}
	c := &component{
		name: Etcd,
		cfg: func() (ProcessConfig, error) {
			peerURL := "http://" + hostPort(peer)
			return ProcessConfig{Name: string(Etcd), Path: bin, LogPath: s.logFile(Etcd), Args: []string{
				"--name=default",
				"--data-dir=" + dataDir,
				"--listen-client-urls=" + s.EtcdURL,
				"--advertise-client-urls=" + s.EtcdURL,
				"--listen-peer-urls=" + peerURL,
				"--initial-advertise-peer-urls=" + peerURL,
				"--initial-cluster=default=" + peerURL,
				// Test data: durability is not worth the fsync latency.
				"--unsafe-no-fsync",
				"--log-level=warn",
			}}, nil
		},
		ready: func(ctx context.Context) error { return httpOK(ctx, s.EtcdURL+"/health", "", `"true"`) },
	}
	return s.register(ctx, c, alloc)
}

// writeKubeSecrets creates the service-account signing key pair and the
// admin token file.
func (s *Stack) writeKubeSecrets(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return err
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	s.Token = hex.EncodeToString(tok)
	return os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(s.Token+",admin,uid-admin,system:masters\n"), 0o600)
}

func (s *Stack) writeKubeconfig() error {
	s.KubeconfigPath = filepath.Join(s.Dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: smartscale
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: smartscale
  context:
    cluster: smartscale
    user: admin
current-context: smartscale
`, s.APIServerURL, s.Token)
	return os.WriteFile(s.KubeconfigPath, []byte(kc), 0o600)
}

func (s *Stack) addAPIServer(ctx context.Context) error {
	bin, err := ToolPath("kube-apiserver")
	if err != nil {
		return err
	}
	dir, err := s.subdir("kube")
	if err != nil {
		return err
	}
	if err := s.writeKubeSecrets(dir); err != nil {
		return err
	}
	var port int
	alloc, err := onePort(&port, func(p int) { s.APIServerURL = "https://" + hostPort(p) })
	if err != nil {
		return err
	}
	c := &component{
		name: APIServer,
		cfg: func() (ProcessConfig, error) {
			return ProcessConfig{Name: string(APIServer), Path: bin, LogPath: s.logFile(APIServer), Args: []string{
				"--etcd-servers=" + s.EtcdURL,
				"--bind-address=127.0.0.1",
				"--advertise-address=127.0.0.1",
				"--secure-port=" + strconv.Itoa(port),
				// The endpoint reconciler refuses a loopback advertise address.
				"--endpoint-reconciler-type=none",
				"--cert-dir=" + filepath.Join(dir, "certs"),
				"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
				"--authorization-mode=RBAC",
				"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
				"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
				"--service-account-issuer=https://kubernetes.default.svc",
				"--service-cluster-ip-range=10.0.0.0/24",
				"--allow-privileged=true",
				"--profiling=false",
			}}, nil
		},
		ready: func(ctx context.Context) error { return httpOK(ctx, s.APIServerURL+"/readyz", s.Token, "ok") },
	}
	if err := s.register(ctx, c, alloc); err != nil {
		return err
	}
	if err := s.writeKubeconfig(); err != nil {
		return err
	}
	s.restConfig = &rest.Config{
		Host:            s.APIServerURL,
		BearerToken:     s.Token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             200,
		Burst:           400,
	}
	s.client, err = kubernetes.NewForConfig(s.restConfig)
	if err != nil {
		return fmt.Errorf("kube client: %w", err)
	}
	return nil
}

// addKubeComponent starts kube-controller-manager or kube-scheduler, which
// take the same kubeconfig and serving flags.
func (s *Stack) addKubeComponent(ctx context.Context, name Component, extra func() []string) error {
	bin, err := ToolPath(string(name))
	if err != nil {
		return err
	}
	var port int
	alloc, err := onePort(&port, nil)
	if err != nil {
		return err
	}
	c := &component{
		name: name,
		cfg: func() (ProcessConfig, error) {
			args := []string{
				"--kubeconfig=" + s.KubeconfigPath,
				"--authentication-kubeconfig=" + s.KubeconfigPath,
				"--authorization-kubeconfig=" + s.KubeconfigPath,
				"--bind-address=127.0.0.1",
				"--secure-port=" + strconv.Itoa(port),
				"--leader-elect=false",
			}
			return ProcessConfig{Name: string(name), Path: bin, LogPath: s.logFile(name), Args: append(args, extra()...)}, nil
		},
		ready: func(ctx context.Context) error {
			return httpOK(ctx, "https://"+hostPort(port)+"/healthz", "", "ok")
		},
	}
	return s.register(ctx, c, alloc)
}

func (s *Stack) addControllerManager(ctx context.Context) error {
	return s.addKubeComponent(ctx, ControllerManager, func() []string {
		return []string{
			"--use-service-account-credentials=false",
			"--service-account-private-key-file=" + filepath.Join(s.Dir, "kube", "sa.key"),
			"--cluster-cidr=10.244.0.0/16",
			"--controllers=" + controllers,
			"--concurrent-deployment-syncs=10",
		}
	})
}

func (s *Stack) addScheduler(ctx context.Context) error {
	return s.addKubeComponent(ctx, Scheduler, func() []string { return nil })
}
