package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
)

// defaultAlertmanagerConfig routes everything to a receiver with no
// integrations: alerts are accepted and visible in the API, sent nowhere.
const defaultAlertmanagerConfig = `route:
  receiver: blackhole
receivers:
- name: blackhole
`

// AlertmanagerConfigPath is the config file all replicas read; a test may
// rewrite it and call ReloadAlertmanagers.
func (s *Stack) AlertmanagerConfigPath() string { return filepath.Join(s.Dir, "alertmanager.yml") }

// amPorts holds each replica's web and cluster (gossip) port.
type amPorts struct{ web, cluster int }

// prepareAlertmanagers writes the config and allocates every replica's
// ports up front, since each replica names the others as peers.
func (s *Stack) prepareAlertmanagers() error {
	cfg := s.opts.AlertmanagerConfig
	if cfg == "" {
		cfg = defaultAlertmanagerConfig
	}
	if err := os.WriteFile(s.AlertmanagerConfigPath(), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("alertmanager config: %w", err)
	}
	n := s.opts.AlertmanagerReplicas
	p, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	s.amPorts = make([]amPorts, n)
	s.AlertmanagerURLs = make([]string, n)
	for i := range n {
		s.amPorts[i] = amPorts{web: p[2*i], cluster: p[2*i+1]}
		s.AlertmanagerURLs[i] = "http://" + hostPort(p[2*i])
	}
	return nil
}

func (s *Stack) addAlertmanager(ctx context.Context, i int) error {
	bin, err := ToolPath("alertmanager")
	if err != nil {
		return err
	}
	name := AlertmanagerReplica(i)
	data := filepath.Join(s.Dir, string(name))
	n := len(s.amPorts)
	ports := s.amPorts[i]
	url := s.AlertmanagerURLs[i]
	c := &component{
		name: name,
		cfg: func() (ProcessConfig, error) {
			args := []string{
				"--config.file=" + s.AlertmanagerConfigPath(),
				"--storage.path=" + data,
				"--web.listen-address=" + hostPort(ports.web),
				// Pins the URL that notification payloads carry.
				"--web.external-url=" + url,
			}
			if n == 1 {
				args = append(args, "--cluster.listen-address=")
			} else {
				args = append(args,
					"--cluster.listen-address="+hostPort(ports.cluster),
					"--cluster.advertise-address="+hostPort(ports.cluster),
					"--cluster.peer-name="+string(name),
					// Loopback gossip settles in milliseconds; do not hold the
					// first notification for the default minute.
					"--cluster.gossip-interval=100ms",
					"--cluster.pushpull-interval=5s",
					"--cluster.settle-timeout=5s",
				)
				for j, p := range s.amPorts {
					if j != i {
						args = append(args, "--cluster.peer="+hostPort(p.cluster))
					}
				}
			}
			return ProcessConfig{Name: string(name), Path: bin, LogPath: s.logFile(name), Args: args}, nil
		},
		ready: func(ctx context.Context) error {
			if err := httpOK(ctx, url+"/-/ready", "", ""); err != nil {
				return err
			}
			if n == 1 {
				return nil
			}
			return clusterFormed(ctx, url, n)
		},
	}
	// Peers know each other's ports, so a port clash is not retried here.
	return s.register(ctx, c, nil)
}

// clusterFormed wants /api/v2/status to list n peers.
func clusterFormed(ctx context.Context, base string, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v2/status", nil)
	if err != nil {
		return err
	}
	resp, err := insecureHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var st struct {
		Cluster struct {
			Status string `json:"status"`
			Peers  []any  `json:"peers"`
		} `json:"cluster"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("alertmanager status: %w", err)
	}
	if len(st.Cluster.Peers) < n {
		return fmt.Errorf("alertmanager cluster %s: %d of %d peers", st.Cluster.Status, len(st.Cluster.Peers), n)
	}
	return nil
}

// ReloadAlertmanagers makes every running replica re-read
// AlertmanagerConfigPath.
func (s *Stack) ReloadAlertmanagers(ctx context.Context) error {
	for i, u := range s.AlertmanagerURLs {
		if p := s.Process(AlertmanagerReplica(i)); p == nil || p.Exited() {
			continue
		}
		if err := postReload(ctx, u); err != nil {
			return err
		}
	}
	return nil
}
